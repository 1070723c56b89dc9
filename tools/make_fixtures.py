#!/usr/bin/python3
"""Generate reference test fixtures for egrc from PyTorch + Hugging Face transformers.

This script is a *record* of how some files under tests/data/ were produced.
The test suite never runs it.  It is deterministic: rerunning it with the same
library versions reproduces the files (bit-for-bit on the same machine; it pins
torch to one thread to avoid thread-count-dependent float reductions).

Produced with:
    /usr/bin/python3 (Debian python3-torch, PyTorch 1.13, CPU)
    transformers 4.40.2, safetensors 0.8.0
    /usr/bin/python3 -m pip install --break-system-packages "transformers==4.40.2" safetensors
    /usr/bin/python3 tools/make_fixtures.py            # from the repository root

It writes exactly these files (and nothing else):

1. tests/data/tiny-llama/{config.json, generation_config.json, model.safetensors,
   reference.safetensors}

   A randomly initialised Llama-family model (LlamaForCausalLM) built from a
   LlamaConfig: vocab 512, hidden 64, intermediate 160, 2 layers, 4 attention
   heads, 2 key/value heads (grouped-query attention, head_dim 16), max
   positions 128, rope_theta 500000.0, rms_norm_eps 1e-5, SiLU MLP, no
   attention/MLP biases, tied input/output embeddings (no lm_head.weight in
   model.safetensors), float32.  bos/eos/pad token ids are null (like the
   tiny-qwen2 / tiny-gpt2 fixtures) so nothing stops generation early.
   Initialisation: torch.manual_seed(0) then the transformers default init
   with initializer_range=0.2 (normal(0, 0.2) for Linear/Embedding, ones for
   RMSNorm; the default 0.02 makes a tied model's greedy output a constant
   repeat of the last token), then every 1-D parameter (the RMSNorm weights)
   gets += 0.1*N(0,1) drawn from torch.Generator().manual_seed(1) in
   named_parameters() order, so norm weights are not all ones.

   reference.safetensors follows the convention of tests/data/tiny-qwen2:
     input_ids  I64 [2,16]   uniform in [0,512), torch.Generator seeded 42
     logits     F32 [2,16,512] = model(input_ids).logits (eager attention, fp32)
     loss       F32 [1]      HF causal-LM loss with labels=input_ids, i.e. mean
                             cross-entropy over the 2*15 shifted positions
     grad.<name> F32         d loss / d param for every model.named_parameters()
                             entry (tied: only model.embed_tokens.weight, whose
                             gradient includes the lm_head contribution)
     greedy     I64 [1,32]   input_ids[0,:8] followed by 24 greedy tokens, each
                             the argmax of the last-position logits of a full
                             (no KV cache) forward over the sequence so far.

2. tests/data/tiny-qwen2/adamw10.safetensors

   A 10-step AdamW training trajectory of the EXISTING tests/data/tiny-qwen2
   model (loaded with Qwen2ForCausalLM.from_pretrained(torch_dtype=float32,
   attn_implementation="eager"); model.eval(), dropout is 0 anyway).
   Protocol (also stored as strings in the file's __metadata__):
     steps s = 0..9; batch size 4, sequence length 16.
     batches[s] I64 [4,16]: tokens uniform in [0,512) drawn as ONE
         torch.randint(0, 512, (10,4,16), generator=torch.Generator().manual_seed(1234)).
     loss(s): model(batches[s], labels=batches[s]).loss, HF shifted mean
         cross-entropy over 4*15 positions, computed before the update of step s.
     lr(s): lr_max=1e-2, min_lr=1e-3, warmup=3, total=10;
         lr(s) = lr_max*(s+1)/warmup                       for s < warmup
         lr(s) = min_lr + 0.5*(1+cos(pi*(s-warmup)/(total-warmup)))*(lr_max-min_lr)  otherwise
         (computed in float64, stored as float32).
     optimizer: torch.optim.AdamW(betas=(0.9,0.95), eps=1e-8, foreach=False)
         with two param groups, in named_parameters() order:
           weight_decay 0.1 for params with dim >= 2,
           weight_decay 0.0 for 1-D params (biases, norm weights).
         Each step: zero grads, forward+backward, total_norm =
         torch.nn.utils.clip_grad_norm_(all params, 1.0) (L2 norm of the
         per-tensor L2 norms, before clipping; every grad is then multiplied by
         min(1, 1.0/(total_norm+1e-6))), set every group's lr = lr(s),
         optimizer.step().
     PyTorch 1.13 AdamW update per tensor (t = 1-based step count):
         p   *= 1 - lr*wd
         m    = 0.9*m + 0.1*g
         v    = 0.95*v + 0.05*g*g
         p   -= (lr/(1-0.9**t)) * m / (sqrt(v)/sqrt(1-0.95**t) + 1e-8)
   Keys:
     batches     I64 [10,4,16]
     losses      F32 [10]
     lrs         F32 [10]
     grad_norms  F32 [10]   total gradient norm before clipping
     final.<name> F32       every parameter after the 10 updates
"""

import hashlib
import json
import math
import os
import struct
import sys

import torch
from safetensors.torch import load_file, save_file

import transformers
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2ForCausalLM

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LLAMA_DIR = os.path.join(ROOT, "tests", "data", "tiny-llama")
QWEN2_DIR = os.path.join(ROOT, "tests", "data", "tiny-qwen2")

VOCAB = 512


def st_header(path):
    """Return the JSON header of a safetensors file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def sort_metadata(path):
    """Rewrite a safetensors header with __metadata__ keys sorted.

    safetensors stores metadata in a hash map, so its key order (and hence the
    file bytes) varies from run to run; sorting makes the output reproducible.
    Tensor entries and data are unchanged (offsets are relative to the data).
    """
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", None)
    if meta is not None:
        header = dict([("__metadata__", dict(sorted(meta.items())))] + list(header.items()))
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        f.write(data)


def greedy(model, prompt, n_new):
    """Manual greedy decode: full forward (no cache) each step, argmax of last logits."""
    ids = prompt.clone()
    margins = []
    with torch.no_grad():
        for _ in range(n_new):
            last = model(ids, use_cache=False).logits[0, -1]
            top2 = torch.topk(last, 2).values
            margins.append((top2[0] - top2[1]).item())
            nxt = torch.argmax(last).view(1, 1)
            ids = torch.cat([ids, nxt], dim=1)
    return ids, min(margins)


def reference(model, input_ids):
    """Logits, loss, grads and greedy continuation in the tiny-qwen2 layout."""
    model.eval()
    model.zero_grad(set_to_none=True)
    out = model(input_ids, labels=input_ids, use_cache=False)
    out.loss.backward()
    ref = {
        "input_ids": input_ids.contiguous(),
        "logits": out.logits.detach().float().contiguous(),
        "loss": out.loss.detach().float().reshape(1).contiguous(),
    }
    for name, p in model.named_parameters():
        ref["grad." + name] = p.grad.detach().float().contiguous()
    model.zero_grad(set_to_none=True)
    g, margin = greedy(model, input_ids[0:1, :8], 24)
    assert g.shape == (1, 32)
    ref["greedy"] = g.contiguous()
    return ref, margin


def make_llama():
    os.makedirs(LLAMA_DIR, exist_ok=True)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rope_theta=500000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        attention_bias=False,
        mlp_bias=False,  # not a LlamaConfig argument in 4.40 (bias-free MLP is implied); recorded for clarity
        hidden_act="silu",
        # 0.2 instead of the default 0.02: with tied embeddings and tiny weights the
        # residual stream is dominated by the token's own embedding and greedy
        # decoding just repeats the last prompt token.  0.2 gives logits with
        # std ~1.6 and a varied greedy continuation.
        initializer_range=0.2,
        torch_dtype="float32",
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).float().eval()
    # Default init leaves every RMSNorm weight at 1.0, which would not catch a
    # loader that ignores norm weights: perturb them, 1-D params in
    # named_parameters() order, by 0.1*N(0,1) from a dedicated generator.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    model.save_pretrained(LLAMA_DIR, safe_serialization=True)

    # Reload from disk so the reference is computed from exactly what was saved.
    model = LlamaForCausalLM.from_pretrained(
        LLAMA_DIR, torch_dtype=torch.float32, attn_implementation="eager").eval()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    gen = torch.Generator().manual_seed(42)
    input_ids = torch.randint(0, VOCAB, (2, 16), generator=gen, dtype=torch.int64)
    ref, margin = reference(model, input_ids)

    # Cross-check the manual greedy loop against HF generate().
    with torch.no_grad():
        hf = model.generate(input_ids[0:1, :8], do_sample=False, max_new_tokens=24,
                            min_new_tokens=24, pad_token_id=0)
    assert torch.equal(hf, ref["greedy"]), (hf, ref["greedy"])

    save_file(ref, os.path.join(LLAMA_DIR, "reference.safetensors"))

    # Verify what was written.
    with open(os.path.join(LLAMA_DIR, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["rope_theta"] == 500000.0 and isinstance(cfg["rope_theta"], float), cfg
    assert cfg["tie_word_embeddings"] is True, cfg
    assert cfg["num_key_value_heads"] == 2 and cfg["intermediate_size"] == 160, cfg
    hdr = st_header(os.path.join(LLAMA_DIR, "model.safetensors"))
    assert "lm_head.weight" not in hdr, sorted(hdr)
    print("tiny-llama: loss %.6f, logits std %.4f, min greedy top1-top2 margin %.4g"
          % (ref["loss"].item(), ref["logits"].std().item(), margin))
    print("tiny-llama greedy:", ref["greedy"].tolist())


def lr_at(s, lr_max=1e-2, min_lr=1e-3, warmup=3, total=10):
    if s < warmup:
        return lr_max * (s + 1) / warmup
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * (s - warmup) / (total - warmup))) * (lr_max - min_lr)


def make_adamw10():
    steps, batch, seq = 10, 4, 16
    model_path = os.path.join(QWEN2_DIR, "model.safetensors")
    model = Qwen2ForCausalLM.from_pretrained(
        QWEN2_DIR, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()  # dropout is 0; eval keeps semantics unambiguous

    gen = torch.Generator().manual_seed(1234)
    batches = torch.randint(0, VOCAB, (steps, batch, seq), generator=gen, dtype=torch.int64)

    named = list(model.named_parameters())
    params = [p for _, p in named]
    decay = [p for _, p in named if p.dim() >= 2]
    no_decay = [p for _, p in named if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=lr_at(0), betas=(0.9, 0.95), eps=1e-8, foreach=False)

    losses, lrs, norms = [], [], []
    for s in range(steps):
        opt.zero_grad(set_to_none=True)
        ids = batches[s]
        loss = model(ids, labels=ids, use_cache=False).loss
        loss.backward()
        total_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        lr = lr_at(s)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        losses.append(loss.item())
        lrs.append(lr)
        norms.append(total_norm.item())
        print("step %d  lr %.6g  loss %.6f  grad_norm %.6f" % (s, lr, loss.item(), total_norm.item()))

    out = {
        "batches": batches.contiguous(),
        "losses": torch.tensor(losses, dtype=torch.float32),
        "lrs": torch.tensor(lrs, dtype=torch.float32),
        "grad_norms": torch.tensor(norms, dtype=torch.float32),
    }
    for name, p in named:
        out["final." + name] = p.detach().float().contiguous()
    metadata = {
        "description": "10-step AdamW trajectory of tests/data/tiny-qwen2 (see tools/make_fixtures.py)",
        "base_model_sha256": sha256(model_path),
        "steps": "10",
        "batch_shape": "[4,16]",
        "batches": "torch.randint(0,512,(10,4,16),generator=torch.Generator().manual_seed(1234)); step s uses batches[s]",
        "loss": "HF causal LM loss, labels=input_ids: mean cross-entropy over B*(T-1) shifted positions, before the update of step s",
        "lr_schedule": "lr_max=1e-2 min_lr=1e-3 warmup=3 total=10; s<warmup: lr_max*(s+1)/warmup; else min_lr+0.5*(1+cos(pi*(s-warmup)/(total-warmup)))*(lr_max-min_lr)",
        "optimizer": "torch.optim.AdamW betas=(0.9,0.95) eps=1e-8 foreach=False; group lr set to lr(s) before optimizer.step()",
        "weight_decay": "0.1 for params with dim>=2, 0.0 for 1-D params (biases, norm weights); decoupled: p*=1-lr*wd",
        "adamw_update": "t=step(1-based); m=b1*m+(1-b1)*g; v=b2*v+(1-b2)*g*g; p-=(lr/(1-b1^t))*m/(sqrt(v)/sqrt(1-b2^t)+eps)",
        "grad_clip": "torch.nn.utils.clip_grad_norm_(params,1.0) each step; grad_norms = total L2 norm before clipping; grads *= min(1,1.0/(norm+1e-6))",
        "dtype": "float32 throughout; model.eval(), attn_implementation=eager",
        "versions": "torch %s, transformers %s" % (torch.__version__, transformers.__version__),
    }
    out_path = os.path.join(QWEN2_DIR, "adamw10.safetensors")
    save_file(out, out_path, metadata=metadata)
    sort_metadata(out_path)
    check = load_file(out_path)
    assert check.keys() == out.keys() and all(torch.equal(check[k], out[k]) for k in out)
    print("adamw10 losses:", [float("%.7g" % x) for x in out["losses"].tolist()])


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print("torch", torch.__version__, "transformers", transformers.__version__, file=sys.stderr)
    make_llama()
    make_adamw10()
    # safetensors writes 0600 files; make them world-readable like the others.
    for path in [os.path.join(LLAMA_DIR, n) for n in os.listdir(LLAMA_DIR)] + [
            os.path.join(QWEN2_DIR, "adamw10.safetensors")]:
        os.chmod(path, 0o644)


if __name__ == "__main__":
    main()
