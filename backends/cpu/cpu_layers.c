/* CPU ops for the per-token layers: embeddings, norms, linear layers, rotary
 * embeddings, activations and residual adds. Shapes follow backend.h. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cpu_backend.h"
#include "cpu_math.h"

/* Column-parallel reductions over rows (weight gradients of norms, bias
 * gradients) use blocks of this many columns per task, so each thread walks
 * rows in order and the sum order is fixed whatever the thread count. */
#define COLUMN_BLOCK 64

/* Up to this many rows, matmul_forward uses matrix-vector products
 * (measured on decode: about 2x faster than sgemm at 4 rows). */
#define SMALL_BATCH_ROWS 4

void cpu_embedding_forward(egrc_backend *be, void *out_, const int32_t *tokens, const int32_t *positions,
                           const void *wte_, const void *wpe_, int N, int C) {
    (void)be;
    float *out = out_;
    const float *wte = wte_, *wpe = wpe_;
#pragma omp parallel for schedule(static) if((size_t)N * C >= CPU_PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        float *row = out + (size_t)n * C;
        const float *tok = wte + (size_t)tokens[n] * C;
        if (wpe) {
            const float *pos = wpe + (size_t)positions[n] * C;
            for (int c = 0; c < C; c++) row[c] = tok[c] + pos[c];
        } else {
            memcpy(row, tok, (size_t)C * sizeof(float));
        }
    }
}

void cpu_embedding_backward(egrc_backend *be, float *dwte, float *dwpe, const void *dout_, const int32_t *tokens,
                            const int32_t *positions, int N, int C) {
    (void)be;
    const float *dout = dout_;
    /* Rows may repeat a token, so this scatter stays serial over rows; it is
     * O(N*C), negligible next to the matmuls. Parallel over column blocks. */
#pragma omp parallel for schedule(static) if((size_t)N * C >= CPU_PARALLEL_MIN_WORK)
    for (int c0 = 0; c0 < C; c0 += COLUMN_BLOCK) {
        int c1 = c0 + COLUMN_BLOCK < C ? c0 + COLUMN_BLOCK : C;
        for (int n = 0; n < N; n++) {
            const float *g = dout + (size_t)n * C;
            float *t = dwte + (size_t)tokens[n] * C;
            for (int c = c0; c < c1; c++) t[c] += g[c];
            if (dwpe) {
                float *p = dwpe + (size_t)positions[n] * C;
                for (int c = c0; c < c1; c++) p[c] += g[c];
            }
        }
    }
}

void cpu_layernorm_forward(egrc_backend *be, void *out_, float *mean, float *rstd, const void *inp_, const void *w_,
                           const void *b_, int N, int C, float eps) {
    (void)be;
    float *out = out_;
    const float *inp = inp_, *w = w_, *b = b_;
#pragma omp parallel for schedule(static) if((size_t)N * C >= CPU_PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double sum = 0.0;
        for (int c = 0; c < C; c++) sum += x[c];
        float m = (float)(sum / C);
        double var = 0.0;
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            var += (double)d * d;
        }
        float s = (float)(1.0 / sqrt(var / C + eps));
        float *y = out + (size_t)n * C;
        for (int c = 0; c < C; c++) y[c] = (x[c] - m) * s * w[c] + (b ? b[c] : 0.0f);
        mean[n] = m;
        rstd[n] = s;
    }
}

/* dw += sum_n dout * norm(x), db += sum_n dout, where norm(x) = (x - mean) * rstd
 * (mean NULL: RMSNorm). Column blocks in parallel, rows in order. */
static void norm_weight_grads(float *dw, float *db, const float *dout, const float *inp, const float *mean,
                              const float *rstd, int N, int C) {
#pragma omp parallel for schedule(static) if((size_t)N * C >= CPU_PARALLEL_MIN_WORK)
    for (int c0 = 0; c0 < C; c0 += COLUMN_BLOCK) {
        int c1 = c0 + COLUMN_BLOCK < C ? c0 + COLUMN_BLOCK : C;
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
            const float m = mean ? mean[n] : 0.0f;
            for (int c = c0; c < c1; c++) dw[c] += g[c] * (x[c] - m) * rstd[n];
            if (db)
                for (int c = c0; c < c1; c++) db[c] += g[c];
        }
    }
}

void cpu_layernorm_backward(egrc_backend *be, void *dinp_, float *dw, float *db, const void *dout_, const void *inp_,
                            const void *w_, const float *mean, const float *rstd, int N, int C) {
    (void)be;
    float *dinp = dinp_;
    const float *dout = dout_, *inp = inp_, *w = w_;
#pragma omp parallel for schedule(static) if((size_t)N * C >= CPU_PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        double sum_dnorm = 0.0, sum_dnorm_norm = 0.0;
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * s;
            float dnorm = g[c] * w[c];
            sum_dnorm += dnorm;
            sum_dnorm_norm += (double)dnorm * norm;
        }
        float mean_dnorm = (float)(sum_dnorm / C), mean_dnorm_norm = (float)(sum_dnorm_norm / C);
        float *dx = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * s;
            dx[c] += (g[c] * w[c] - mean_dnorm - norm * mean_dnorm_norm) * s;
        }
    }
    norm_weight_grads(dw, db, dout, inp, mean, rstd, N, C);
}

void cpu_rmsnorm_forward(egrc_backend *be, void *out_, float *rstd, const void *inp_, const void *w_, int N, int C,
                         float eps) {
    (void)be;
    float *out = out_;
    const float *inp = inp_, *w = w_;
#pragma omp parallel for schedule(static) if((size_t)N * C >= CPU_PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double sum_sq = 0.0;
        for (int c = 0; c < C; c++) sum_sq += (double)x[c] * x[c];
        float s = (float)(1.0 / sqrt(sum_sq / C + eps));
        float *y = out + (size_t)n * C;
        for (int c = 0; c < C; c++) y[c] = w[c] * (x[c] * s);
        rstd[n] = s;
    }
}

void cpu_rmsnorm_backward(egrc_backend *be, void *dinp_, float *dw, const void *dout_, const void *inp_, const void *w_,
                          const float *rstd, int N, int C) {
    (void)be;
    float *dinp = dinp_;
    const float *dout = dout_, *inp = inp_, *w = w_;
#pragma omp parallel for schedule(static) if((size_t)N * C >= CPU_PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
        float s = rstd[n];
        double sum_dnorm_norm = 0.0;
        for (int c = 0; c < C; c++) sum_dnorm_norm += (double)(g[c] * w[c]) * (x[c] * s);
        float mean_dnorm_norm = (float)(sum_dnorm_norm / C);
        float *dx = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) dx[c] += (g[c] * w[c] - x[c] * s * mean_dnorm_norm) * s;
    }
    norm_weight_grads(dw, NULL, dout, inp, NULL, rstd, N, C);
}

void cpu_matmul_forward(egrc_backend *be, void *out_, const void *inp, const void *w, const void *bias_, int N, int C,
                        int OC) {
    (void)be;
    float *out = out_;
    const float *bias = bias_;
    if (N <= SMALL_BATCH_ROWS) {
        /* Decode steps multiply a handful of rows: a GEMM would spend most of
         * its time packing the weight matrix, matrix-vector products do not. */
        for (int n = 0; n < N; n++) {
            float *row = out + (size_t)n * OC;
            if (bias) memcpy(row, bias, (size_t)OC * sizeof(float));
            cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, C, 1.0f, w, C, (const float *)inp + (size_t)n * C, 1,
                        bias ? 1.0f : 0.0f, row, 1);
        }
        return;
    }
    float beta = 0.0f;
    if (bias) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, w, C, beta, out, OC);
}

void cpu_matmul_backward(egrc_backend *be, void *dinp, float *dw, float *dbias, const void *dout_, const void *inp,
                         const void *w, int N, int C, int OC) {
    (void)be;
    const float *dout = dout_;
    if (dinp) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, w, C, 0.0f, dinp, C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (dbias) {
#pragma omp parallel for schedule(static) if((size_t)N * OC >= CPU_PARALLEL_MIN_WORK)
        for (int o0 = 0; o0 < OC; o0 += COLUMN_BLOCK) {
            int o1 = o0 + COLUMN_BLOCK < OC ? o0 + COLUMN_BLOCK : OC;
            for (int n = 0; n < N; n++) {
                const float *g = dout + (size_t)n * OC;
                for (int o = o0; o < o1; o++) dbias[o] += g[o];
            }
        }
    }
}

/* Rotates the q and k heads of each row by the row's position; sign = -1
 * applies the inverse rotation, which is the backward pass of a rotation. The
 * angle is computed in fp32 exactly as Hugging Face does (inv_freq in fp32,
 * position * inv_freq in fp32), so long positions match it too. */
static void rope_rotate(float *qkv, const int32_t *positions, int N, int H, int KV, int D, float theta, float sign) {
    int half = D / 2;
    int rotated_heads = H + KV; /* q heads then k heads; v is left alone */
    int row_width = (H + 2 * KV) * D;
#pragma omp parallel for schedule(static) if((size_t)N * (H + KV) * D >= CPU_PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        float cos_table[512], sin_table[512]; /* D/2 <= 512 is checked at model load */
        for (int i = 0; i < half; i++) {
            float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)D);
            float angle = (float)positions[n] * inv_freq;
            cos_table[i] = cosf(angle);
            sin_table[i] = sign * sinf(angle);
        }
        float *row = qkv + (size_t)n * row_width;
        for (int h = 0; h < rotated_heads; h++) {
            float *x = row + (size_t)h * D;
            for (int i = 0; i < half; i++) {
                float a = x[i], b = x[i + half];
                x[i] = a * cos_table[i] - b * sin_table[i];
                x[i + half] = b * cos_table[i] + a * sin_table[i];
            }
        }
    }
}

void cpu_rope_forward(egrc_backend *be, void *qkv, const int32_t *positions, int N, int H, int KV, int D, float theta) {
    (void)be;
    rope_rotate(qkv, positions, N, H, KV, D, theta, 1.0f);
}

void cpu_rope_backward(egrc_backend *be, void *dqkv, const int32_t *positions, int N, int H, int KV, int D,
                       float theta) {
    (void)be;
    rope_rotate(dqkv, positions, N, H, KV, D, theta, -1.0f);
}

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

void cpu_gelu_forward(egrc_backend *be, void *out_, const void *inp_, size_t n) {
    (void)be;
    float *out = out_;
    const float *inp = inp_;
#pragma omp parallel for schedule(static) if(n >= CPU_PARALLEL_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + cpu_tanhf(GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
}

void cpu_gelu_backward(egrc_backend *be, void *dinp_, const void *inp_, const void *dout_, size_t n) {
    (void)be;
    float *dinp = dinp_;
    const float *inp = inp_, *dout = dout_;
#pragma omp parallel for schedule(static) if(n >= CPU_PARALLEL_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float t = cpu_tanhf(GELU_SCALE * (x + 0.044715f * x * x * x));
        float sech2 = 1.0f - t * t;
        float local = 0.5f * (1.0f + t) + 0.5f * x * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = local * dout[i];
    }
}

void cpu_swiglu_forward(egrc_backend *be, void *out_, const void *gate_up_, int N, int hidden) {
    (void)be;
    float *out = out_;
    const float *gate_up = gate_up_;
#pragma omp parallel for schedule(static) if((size_t)N * hidden >= CPU_PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *gate = gate_up + (size_t)n * 2 * hidden, *up = gate + hidden;
        float *y = out + (size_t)n * hidden;
        for (int i = 0; i < hidden; i++) {
            float g = gate[i];
            y[i] = g * cpu_sigmoidf(g) * up[i];
        }
    }
}

void cpu_swiglu_backward(egrc_backend *be, void *dgate_up_, const void *dout_, const void *gate_up_, int N, int hidden) {
    (void)be;
    float *dgate_up = dgate_up_;
    const float *dout = dout_, *gate_up = gate_up_;
#pragma omp parallel for schedule(static) if((size_t)N * hidden >= CPU_PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *gate = gate_up + (size_t)n * 2 * hidden, *up = gate + hidden, *g = dout + (size_t)n * hidden;
        float *dgate = dgate_up + (size_t)n * 2 * hidden, *dup = dgate + hidden;
        for (int i = 0; i < hidden; i++) {
            float sig = cpu_sigmoidf(gate[i]);
            float silu = gate[i] * sig;
            dup[i] = g[i] * silu;
            dgate[i] = g[i] * up[i] * sig * (1.0f + gate[i] * (1.0f - sig));
        }
    }
}

void cpu_add(egrc_backend *be, void *dst_, const void *src_, size_t n) {
    (void)be;
    float *dst = dst_;
    const float *src = src_;
#pragma omp parallel for schedule(static) if(n >= CPU_PARALLEL_MIN_WORK)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}
