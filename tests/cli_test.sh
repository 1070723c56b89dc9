#!/usr/bin/env bash
# Command-line behaviour: exit codes (0 ok, 1 runtime failure, 2 usage or bad
# input) and that messages name what is wrong. Usage: cli_test.sh EGRC DATA_DIR
set -u
egrc=$1
data=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=tests/expect.sh
. "$(dirname "$0")/expect.sh"

expect 0 "usage: egrc COMMAND" -- "$egrc" --help
expect 0 "^egrc [0-9]+\.[0-9]+\.[0-9]+" -- "$egrc" version
expect 2 "unknown command 'frobnicate'" -- "$egrc" frobnicate
expect 2 "usage: egrc COMMAND" -- "$egrc"
expect 0 "cpu +1 device" -- "$egrc" backends
# without a GPU: either the plugin was not built, or it finds no driver/device
expect 0 "cuda +(not available: .*libegrc-backend-cuda.so|no driver: |0 devices)" -- "$egrc" backends
check "egrc backends does not list ze until it exists" bash -c '! "$0" backends | grep -q "^ze "' "$egrc"
expect 1 "no oneAPI Level Zero backend yet" -- "$egrc" bench train --model gpt2-tiny --backend ze
expect 1 "egrc has no backend of that name" -- "$egrc" bench train --model gpt2-tiny --backend nosuch

expect 0 "^44 351 303 337 268 1635$" -- "$egrc" tokenize "$data/tokenizer/tokenizer.json" "Hello world"
expect 2 "usage: egrc tokenize" -- "$egrc" tokenize "$data/tokenizer/tokenizer.json"
# many texts, one JSON string a line: the same ids as one call each, a bad line named
check "tokenize - gives one id line per JSON string, as single calls do" \
  bash -c 'diff <(printf "%s\n" "\"Hello world\"" "\"a\\nb\"" | "$0" tokenize "$1" -) \
                <("$0" tokenize "$1" "Hello world"; "$0" tokenize "$1" "$(printf "a\nb")")' "$egrc" "$data/tokenizer/tokenizer.json"
expect 2 "stdin:2: expected a JSON string" -- bash -c 'printf "\"ok\"\nplain text\n" | "$0" tokenize "$1" -' "$egrc" "$data/tokenizer/tokenizer.json"
expect 2 "tokenizer_missing_model.json.*model" -- "$egrc" tokenize "$data/tokenizer/tokenizer_missing_model.json" hi
expect 2 "nope.json" -- "$egrc" tokenize "$work/nope.json" hi

expect 2 "usage: egrc parity" -- "$egrc" parity "$data/tiny-gpt2"
expect 2 "config.json" -- "$egrc" parity "$work/missing" "$data/tiny-gpt2/reference.safetensors"
expect 2 "missing.safetensors: cannot open" -- "$egrc" parity "$data/tiny-gpt2" "$work/missing.safetensors"
expect 1 "backend 'cuda': .*(libegrc-backend-cuda.so|driver|device)" -- "$egrc" parity "$data/tiny-gpt2" "$data/tiny-gpt2/reference.safetensors" --backend cuda
expect 0 "PASS: 0 checks failed" -- "$egrc" parity "$data/tiny-gpt2" "$data/tiny-gpt2/reference.safetensors"

# Parity must be able to fail: set one weight to 4.0 and it reports FAIL, exit 1.
cp -r "$data/tiny-gpt2" "$work/perturbed"
chmod -R u+w "$work/perturbed"
size=$(stat -c %s "$work/perturbed/model.safetensors")
printf '\x00\x00\x80\x40' | dd of="$work/perturbed/model.safetensors" bs=1 seek=$((size - 4000)) conv=notrunc 2>/dev/null
expect 1 "FAIL" -- "$egrc" parity "$work/perturbed" "$data/tiny-gpt2/reference.safetensors"
# A header that lies about its length is refused with the file's name.
cp -r "$data/tiny-gpt2" "$work/lying"
chmod -R u+w "$work/lying"
printf '\xff\xff\xff\x00' | dd of="$work/lying/model.safetensors" bs=1 seek=0 conv=notrunc 2>/dev/null
expect 2 "model.safetensors" -- "$egrc" parity "$work/lying" "$data/tiny-gpt2/reference.safetensors"

expect 2 "unknown model preset 'nope'" -- "$egrc" bench train --model nope
expect 2 "--model NAME\|DIR is required" -- "$egrc" bench train
expect 2 "--batch expects an integer" -- "$egrc" bench train --model gpt2-tiny --batch abc
expect 2 "unknown flag '--bogus'" -- "$egrc" bench train --model gpt2-tiny --bogus 1
expect 2 "usage: egrc bench train" -- "$egrc" bench
expect 0 "tokens/s.*GEMM GFLOP/s" -- "$egrc" bench train --model gpt2-tiny --batch 2 --seq 16 --steps 2
expect 0 "tokens/s" -- "$egrc" bench train --model "$data/tiny-qwen2" --batch 2 --seq 16 --steps 1
expect 0 "MFU against 0.5 TFLOP/s .--peak-tflops" -- "$egrc" bench train --model gpt2-tiny --batch 2 --seq 16 \
    --steps 1 --peak-tflops 0.5
expect 0 "pass --peak-tflops" -- "$egrc" bench train --model gpt2-tiny --batch 2 --seq 16 --steps 1
expect 2 "--peak-tflops expects a positive number" -- "$egrc" bench train --model gpt2-tiny --peak-tflops -3
# GPU settings are checked when the backend opens (gpuemu: the GPU plugins' host glue, where it was built)
if [ -f "$(dirname "$egrc")/libegrc-backend-gpuemu.so" ]; then
  expect 1 "EGRC_GPU_ATTENTION=simd: expected auto" -- env EGRC_GPU_ATTENTION=simd "$egrc" bench train --model gpt2-tiny \
    --backend gpuemu
  expect 1 "EGRC_GPU_GRAPHS=yes: expected 1" -- env EGRC_GPU_GRAPHS=yes "$egrc" bench train --model gpt2-tiny \
    --backend gpuemu
  expect 0 "tokens/s" -- env EGRC_GPU_ATTENTION=simt "$egrc" bench train --model gpt2-tiny --batch 1 --seq 16 \
    --steps 1 --backend gpuemu
fi
expect 0 "weight GB/s +memory GB/s +weight/memory +MFU" -- "$egrc" bench generate --model gpt2-tiny --batch 2 --new-tokens 4 --peak-tflops 3
check "bench generate measures the host memory it reads" \
  bash -c '"$0" bench generate --model gpt2-tiny --batch 2 --new-tokens 4 | tail -1 | awk "{ exit !(\$7 > 0.5 && \$8 > 0) }"' "$egrc"

expect 0 "^correct$" -- "$egrc" grade --gold '\frac{1}{2}' --pred 'so $\boxed{0.5}$'
expect 0 "^incorrect$" -- "$egrc" grade --gold 18 --pred '#### 19'
expect 2 "usage: egrc grade" -- "$egrc" grade --gold 1

finish cli_test
