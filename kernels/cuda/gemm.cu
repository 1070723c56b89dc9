/* The project's own GEMM: the linear layers' product where no vendor BLAS is
 * used (the HIP plugin on a ROCm install without rocBLAS, which Debian 12
 * does not package) or where EGRC_GPU_GEMM=tiled asks for it (to test it
 * against cuBLASLt and the CPU on an NVIDIA GPU).
 *
 * Column-major, as the BLAS calls it stands in for:
 *   D(m,n) = op(A)(m,k) op(B)(k,n) + beta*D (+ bias(m) on every column).
 * A block computes a 64x64 tile of D; its 256 threads each own a 4x4 grid of
 * it, rows tx + 16r and columns ty + 16c, so that neighbouring threads write
 * neighbouring rows of a column (the contiguous direction). Tiles of op(A)
 * and op(B), 16 deep, are staged in shared memory, each loaded along its
 * contiguous direction in memory whatever the transposition. Loads are
 * scalar: weights sit at any element offset of the parameter buffer, so no
 * pointer is assumed aligned beyond its element size. Each output sums k in
 * order with one fp32 accumulator: deterministic, though over long sums
 * (weight gradients over many tokens) it rounds a little more than a
 * blocked BLAS.
 *
 * Element types: the operands and the bias are read as TI and widened to
 * fp32 in shared memory; D is TO. Instantiated for fp32 -> fp32, bf16 ->
 * bf16 (activations in bf16 mode) and bf16 -> fp32 (weight gradients, which
 * stay fp32). The product of two bf16 values is exact in fp32, so bf16
 * inputs lose nothing beyond their own rounding.
 *
 * A simple kernel, not a fast one: no tensor cores, no double buffering. */
#include "common.cuh"

#define GEMM_TILE 64                            /* rows and columns of D per block */
#define GEMM_DEPTH 16                           /* k per shared-memory stage */
#define GEMM_SIDE 16                            /* threads per side of the block */
#define GEMM_PER_THREAD (GEMM_TILE / GEMM_SIDE) /* rows (and columns) of D per thread */
#define GEMM_THREADS (GEMM_SIDE * GEMM_SIDE)
/* Elements each thread stages per operand and stage. */
#define GEMM_LOADS (GEMM_TILE * GEMM_DEPTH / GEMM_THREADS)

/* Stages rows [row0, row0 + GEMM_TILE) x depths [depth0, depth0 + GEMM_DEPTH)
 * of an operand into tile[depth][row], zero outside (rows, depth). The element
 * (row, depth) is X(row, depth) of the column-major X, or X(depth, row) when
 * TRANSPOSED; consecutive threads read consecutive addresses either way. */
template <bool TRANSPOSED, typename TI>
__device__ __forceinline__ void load_tile(float (*tile)[GEMM_TILE + 1], const TI *X, size_t ld, int row0, int rows,
                                          int depth0, int depth) {
    for (int p = 0; p < GEMM_LOADS; p++) {
        const int e = threadIdx.x + p * GEMM_THREADS;
        /* Transposed: depth is contiguous in memory; otherwise rows are. */
        const int r = TRANSPOSED ? e / GEMM_DEPTH : e % GEMM_TILE;
        const int d = TRANSPOSED ? e % GEMM_DEPTH : e / GEMM_TILE;
        const int row = row0 + r, kk = depth0 + d;
        float x = 0.0f;
        if (row < rows && kk < depth) x = act_load(TRANSPOSED ? X + (size_t)row * ld + kk : X + (size_t)kk * ld + row);
        tile[d][r] = x;
    }
}

template <bool TRANS_A, bool TRANS_B, typename TI, typename TO>
__global__ void __launch_bounds__(GEMM_THREADS)
    gemm_kernel(int m, int n, int k, const TI *A, int lda, const TI *B, int ldb, TO *D, int ldd, float beta,
                const TI *bias) {
    /* +1: loading along depth (transposed operands) would otherwise hit one bank. */
    __shared__ float As[GEMM_DEPTH][GEMM_TILE + 1], Bs[GEMM_DEPTH][GEMM_TILE + 1];
    const int tx = threadIdx.x % GEMM_SIDE, ty = threadIdx.x / GEMM_SIDE;
    const int i0 = blockIdx.x * GEMM_TILE, j0 = blockIdx.y * GEMM_TILE;
    float acc[GEMM_PER_THREAD][GEMM_PER_THREAD];
    for (int r = 0; r < GEMM_PER_THREAD; r++)
        for (int c = 0; c < GEMM_PER_THREAD; c++) acc[r][c] = 0.0f;
    for (int k0 = 0; k0 < k; k0 += GEMM_DEPTH) {
        __syncthreads(); /* the previous stage is consumed */
        load_tile<TRANS_A>(As, A, (size_t)lda, i0, m, k0, k);
        /* op(B)(k, j) is element (j, k) of op(B)^T: B's tile is transposed
         * exactly when BLAS would not transpose B. */
        load_tile<!TRANS_B>(Bs, B, (size_t)ldb, j0, n, k0, k);
        __syncthreads();
        for (int d = 0; d < GEMM_DEPTH; d++) {
            float a[GEMM_PER_THREAD], b[GEMM_PER_THREAD];
            for (int r = 0; r < GEMM_PER_THREAD; r++) a[r] = As[d][tx + r * GEMM_SIDE];
            for (int c = 0; c < GEMM_PER_THREAD; c++) b[c] = Bs[d][ty + c * GEMM_SIDE];
            for (int r = 0; r < GEMM_PER_THREAD; r++)
                for (int c = 0; c < GEMM_PER_THREAD; c++) acc[r][c] = fmaf(a[r], b[c], acc[r][c]);
        }
    }
    for (int c = 0; c < GEMM_PER_THREAD; c++) {
        const int j = j0 + ty + c * GEMM_SIDE;
        if (j >= n) break;
        for (int r = 0; r < GEMM_PER_THREAD; r++) {
            const int i = i0 + tx + r * GEMM_SIDE;
            if (i >= m) break;
            TO *d = D + (size_t)j * ldd + i;
            float v = acc[r][c];
            if (bias) v += act_load(bias + i);
            if (beta != 0.0f) v += beta * act_load(d);
            act_store(d, v);
        }
    }
}

template <bool TRANS_A, bool TRANS_B, typename TI, typename TO>
static cudaError_t gemm_launch(cudaStream_t stream, int m, int n, int k, const void *A, int lda, const void *B,
                               int ldb, void *D, int ldd, float beta, const void *bias) {
    /* n (tokens, or output features) stays far below the 65535 * 64 columns gridDim.y allows. */
    const dim3 grid(ceil_div(m, GEMM_TILE), ceil_div(n, GEMM_TILE));
    gemm_kernel<TRANS_A, TRANS_B, TI, TO><<<grid, GEMM_THREADS, 0, stream>>>(
        m, n, k, (const TI *)A, lda, (const TI *)B, ldb, (TO *)D, ldd, beta, (const TI *)bias);
    return cudaGetLastError();
}

template <typename TI, typename TO>
static cudaError_t gemm_types(cudaStream_t stream, int trans_a, int trans_b, int m, int n, int k, const void *A,
                              int lda, const void *B, int ldb, void *D, int ldd, float beta, const void *bias) {
    if (trans_a && trans_b)
        return gemm_launch<true, true, TI, TO>(stream, m, n, k, A, lda, B, ldb, D, ldd, beta, bias);
    if (trans_a) return gemm_launch<true, false, TI, TO>(stream, m, n, k, A, lda, B, ldb, D, ldd, beta, bias);
    if (trans_b) return gemm_launch<false, true, TI, TO>(stream, m, n, k, A, lda, B, ldb, D, ldd, beta, bias);
    return gemm_launch<false, false, TI, TO>(stream, m, n, k, A, lda, B, ldb, D, ldd, beta, bias);
}

cudaError_t egrc_gpu_gemm(cudaStream_t stream, egrc_gpu_dtype ab, egrc_gpu_dtype d, int trans_a, int trans_b, int m,
                          int n, int k, const void *A, int lda, const void *B, int ldb, void *D, int ldd, float beta,
                          const void *bias) {
    if (m <= 0 || n <= 0) return cudaSuccess; /* an empty grid is a launch error */
    if (ab == EGRC_GPU_F32 && d == EGRC_GPU_F32)
        return gemm_types<float, float>(stream, trans_a, trans_b, m, n, k, A, lda, B, ldb, D, ldd, beta, bias);
    if (ab == EGRC_GPU_BF16 && d == EGRC_GPU_BF16)
        return gemm_types<egrc_bf16, egrc_bf16>(stream, trans_a, trans_b, m, n, k, A, lda, B, ldb, D, ldd, beta,
                                                bias);
    if (ab == EGRC_GPU_BF16 && d == EGRC_GPU_F32)
        return gemm_types<egrc_bf16, float>(stream, trans_a, trans_b, m, n, k, A, lda, B, ldb, D, ldd, beta, bias);
    return cudaErrorInvalidValue;
}
