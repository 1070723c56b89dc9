/* The gpuemu emulator's own test (backends/gpuemu): small kernels, in CUDA
 * syntax and rewritten like kernels/cuda, that show it catches what it
 * claims to.
 *
 * Without arguments it runs the checks that must pass: a read of shared
 * memory that lacks its __syncthreads sees NaN and the barrier cures it;
 * warp shuffles and ballots; the CUB sort; stream capture records launches
 * (arguments by value), copies and sets without running them and replays
 * them; calls a capture forbids fail and invalidate it; the emulated
 * cuBLASLt computes a transposed GEMM with bias exactly, refuses what
 * cuBLASLt refuses, and is recorded by a capture.
 *
 * With an argument it runs one kernel that breaks a rule and must die with
 * a message (tests/gpuemu/CMakeLists.txt matches it): deadlock,
 * barrier_divergence, exit_at_barrier, partial_warp, block_shape,
 * shared_optin, out_of_bounds, host_pointer, freed_memory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cub/device/device_radix_sort.cuh>
#include <cublasLt.h>
#include <cuda_runtime.h>

static int failures = 0;

#define CHECK(condition)                                                          \
    do {                                                                          \
        if (!(condition)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
            failures++;                                                           \
        }                                                                         \
    } while (0)

#define CUDA_OK(call) CHECK((call) == cudaSuccess)

/* ---------------- kernels ---------------- */

/* Thread 0 publishes a value through shared memory; the others read it,
 * after the barrier only when `synchronised`. */
__global__ void publish_kernel(float *out, bool synchronised) {
    __shared__ float published;
    if (threadIdx.x == 0) published = 42.0f;
    if (synchronised) __syncthreads();
    out[threadIdx.x] = published;
}

__global__ void warp_kernel(float *sums, unsigned *ballots, int *rotated) {
    float v = (float)threadIdx.x;
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    sums[threadIdx.x] = v;
    ballots[threadIdx.x] = __ballot_sync(0xffffffffu, threadIdx.x % 3 == 0);
    rotated[threadIdx.x] = __shfl_sync(0xffffffffu, (int)threadIdx.x, (threadIdx.x + 1) % 32);
}

__global__ void add_kernel(float *data, float value, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) data[i] += value;
}

__global__ void deadlock_kernel(float *out) {
    float v = (float)threadIdx.x;
    if (threadIdx.x < 16) v = __shfl_sync(0xffffffffu, v, 0); /* lanes 16-31 never come */
    __syncthreads();
    out[threadIdx.x] = v;
}

__global__ void divergent_barrier_kernel(float *out) {
    if (threadIdx.x % 2) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1.0f;
}

__global__ void exit_at_barrier_kernel(float *out) {
    if (threadIdx.x >= 16) return;
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

__global__ void partial_warp_kernel(float *out) {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (float)threadIdx.x, 1);
}

__global__ void dynamic_shared_kernel(float *out) {
    extern __shared__ float dynamic[];
    dynamic[threadIdx.x] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = dynamic[0];
}

__global__ void write_kernel(float *out, int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = 1.0f;
}

/* ---------------- checks that pass ---------------- */

static float *device_floats(int n) {
    float *p = nullptr;
    CUDA_OK(cudaMalloc((void **)&p, (size_t)n * sizeof(float)));
    return p;
}

static void check_missing_barrier(void) {
    float *out = device_floats(64), host[64];
    for (int synchronised = 0; synchronised < 2; synchronised++) {
        publish_kernel<<<1, 64>>>(out, synchronised != 0);
        CUDA_OK(cudaMemcpy(host, out, sizeof host, cudaMemcpyDeviceToHost));
        int stale = 0;
        for (int i = 0; i < 64; i++) stale += isnan(host[i]);
        /* Without the barrier the block runs its threads from the last, so
         * every thread but 0 reads before thread 0 writes. */
        if (synchronised) CHECK(stale == 0 && host[63] == 42.0f);
        else CHECK(stale == 63);
    }
    CUDA_OK(cudaFree(out));
}

static void check_warp_collectives(void) {
    float *sums = device_floats(32);
    unsigned *ballots = nullptr;
    int *rotated = nullptr;
    CUDA_OK(cudaMalloc((void **)&ballots, 32 * sizeof(unsigned)));
    CUDA_OK(cudaMalloc((void **)&rotated, 32 * sizeof(int)));
    warp_kernel<<<1, 32>>>(sums, ballots, rotated);
    float host_sums[32];
    unsigned host_ballots[32];
    int host_rotated[32];
    CUDA_OK(cudaMemcpy(host_sums, sums, sizeof host_sums, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(host_ballots, ballots, sizeof host_ballots, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(host_rotated, rotated, sizeof host_rotated, cudaMemcpyDeviceToHost));
    unsigned every_third = 0;
    for (int i = 0; i < 32; i += 3) every_third |= 1u << i;
    for (int i = 0; i < 32; i++) {
        CHECK(host_sums[i] == 496.0f);
        CHECK(host_ballots[i] == every_third);
        CHECK(host_rotated[i] == (i + 1) % 32);
    }
    CUDA_OK(cudaFree(sums));
    CUDA_OK(cudaFree(ballots));
    CUDA_OK(cudaFree(rotated));
}

static void check_sort(void) {
    enum { N = 9 };
    const int keys[N] = {5, -1, 3, 5, 0, 3, -1, 7, 5};
    int *d = nullptr;
    CUDA_OK(cudaMalloc((void **)&d, 4 * N * sizeof(int)));
    int *keys_in = d, *keys_out = d + N, *values_in = d + 2 * N, *values_out = d + 3 * N;
    int values[N];
    for (int i = 0; i < N; i++) values[i] = i;
    CUDA_OK(cudaMemcpy(keys_in, keys, sizeof keys, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(values_in, values, sizeof values, cudaMemcpyHostToDevice));
    size_t temp_bytes = 0;
    const int n = N;
    CUDA_OK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_in, keys_out, values_in, values_out, n));
    void *temp = nullptr;
    CUDA_OK(cudaMalloc(&temp, temp_bytes));
    size_t too_small = temp_bytes - 1;
    CHECK(cub::DeviceRadixSort::SortPairs(temp, too_small, keys_in, keys_out, values_in, values_out, n) ==
          cudaErrorInvalidValue);
    CUDA_OK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, values_in, values_out, n));
    int sorted_keys[N], sorted_values[N];
    CUDA_OK(cudaMemcpy(sorted_keys, keys_out, sizeof sorted_keys, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(sorted_values, values_out, sizeof sorted_values, cudaMemcpyDeviceToHost));
    const int want_keys[N] = {-1, -1, 0, 3, 3, 5, 5, 5, 7}, want_values[N] = {1, 6, 4, 2, 5, 0, 3, 8, 7};
    CHECK(memcmp(sorted_keys, want_keys, sizeof want_keys) == 0);
    CHECK(memcmp(sorted_values, want_values, sizeof want_values) == 0); /* stable */
    CUDA_OK(cudaFree(temp));
    CUDA_OK(cudaFree(d));
}

/* Capture records, does not run, and replays by value. */
static void check_capture(void) {
    enum { N = 40 };
    cudaStream_t stream;
    CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    float *data = device_floats(N), *pinned = nullptr, host[N];
    CUDA_OK(cudaMallocHost((void **)&pinned, N * sizeof(float)));
    CUDA_OK(cudaMemsetAsync(data, 0, N * sizeof(float), stream));

    float value = 1.0f;
    int n = N;
    CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    cudaStreamCaptureStatus status;
    CUDA_OK(cudaStreamIsCapturing(stream, &status));
    CHECK(status == cudaStreamCaptureStatusActive);
    add_kernel<<<2, 32, 0, stream>>>(data, value, n);
    CUDA_OK(cudaGetLastError());
    value = 100.0f; /* the launch above keeps 1 */
    n = 0;
    CUDA_OK(cudaMemcpyAsync(pinned, data, N * sizeof(float), cudaMemcpyDeviceToHost, stream));
    cudaGraph_t graph;
    CUDA_OK(cudaStreamEndCapture(stream, &graph));
    CUDA_OK(cudaStreamIsCapturing(stream, &status));
    CHECK(status == cudaStreamCaptureStatusNone);
    CUDA_OK(cudaMemcpy(host, data, sizeof host, cudaMemcpyDeviceToHost));
    CHECK(host[0] == 0.0f && host[N - 1] == 0.0f); /* nothing ran */

    cudaGraphExec_t exec;
    CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_OK(cudaGraphDestroy(graph)); /* the executable graph stands alone */
    for (int launch = 1; launch <= 3; launch++) {
        CUDA_OK(cudaGraphLaunch(exec, stream));
        CUDA_OK(cudaStreamSynchronize(stream));
        CHECK(pinned[0] == (float)launch && pinned[N - 1] == (float)launch);
    }
    CUDA_OK(cudaGraphExecDestroy(exec));
    CUDA_OK(cudaFreeHost(pinned));
    CUDA_OK(cudaFree(data));
    CUDA_OK(cudaStreamDestroy(stream));
}

/* Each call a capture forbids fails, and the capture ends invalidated. */
static void check_capture_rejects(void) {
    cudaStream_t stream;
    CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    float *data = device_floats(8), host[8] = {0};
    void *p = nullptr;
    int forbidden = 0;
    for (;; forbidden++) {
        CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
        cudaError_t error;
        switch (forbidden) {
        case 0: error = cudaMalloc(&p, 64); break;
        case 1: error = cudaFree(data); break;
        case 2: error = cudaMemcpy(host, data, sizeof host, cudaMemcpyDeviceToHost); break;
        case 3: error = cudaMemset(data, 0, sizeof host); break;
        case 4: error = cudaStreamSynchronize(stream); break;
        case 5: error = cudaDeviceSynchronize(); break;
        case 6: error = cudaMemcpyAsync(host, data, sizeof host, cudaMemcpyDeviceToHost, stream); break; /* pageable */
        case 7: error = cudaMallocAsync(&p, 64, stream); break; /* a memory node: not emulated */
        default: error = cudaErrorNotSupported; break;
        }
        if (error == cudaErrorNotSupported) {
            cudaGraph_t graph;
            CHECK(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
            CUDA_OK(cudaGraphDestroy(graph));
            break;
        }
        CHECK(error == cudaErrorStreamCaptureUnsupported);
        cudaStreamCaptureStatus status;
        CUDA_OK(cudaStreamIsCapturing(stream, &status));
        CHECK(status == cudaStreamCaptureStatusInvalidated);
        add_kernel<<<1, 32, 0, stream>>>(data, 1.0f, 8); /* joins a capture that already failed */
        CHECK(cudaGetLastError() == cudaErrorStreamCaptureInvalidated);
        cudaGraph_t graph = nullptr;
        CHECK(cudaStreamEndCapture(stream, &graph) == cudaErrorStreamCaptureInvalidated && graph == nullptr);
    }
    CHECK(forbidden == 8);
    /* A relaxed capture allows cudaMalloc. */
    CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
    CUDA_OK(cudaMalloc(&p, 64));
    cudaGraph_t graph;
    CUDA_OK(cudaStreamEndCapture(stream, &graph));
    CUDA_OK(cudaGraphDestroy(graph));
    CUDA_OK(cudaFree(p));
    CUDA_OK(cudaFree(data));
    CUDA_OK(cudaStreamDestroy(stream));
}

/* ---------------- rules broken: each must die ---------------- */

#define LT_OK(call) CHECK((call) == CUBLAS_STATUS_SUCCESS)

/* D(3x2) = op(A) B + C + bias with A stored transposed (4x3, ld 5), C = D in
 * place; small integers, so fp32 gives the exact sums. */
static void check_cublaslt(void) {
    enum { M = 3, N = 2, K = 4, LDA = 5 };
    float host_a[LDA * M], host_b[K * N], host_d[M * N], bias_host[M] = {100.0f, 200.0f, 300.0f};
    for (int i = 0; i < LDA * M; i++) host_a[i] = (float)(i % 7 - 3);
    for (int i = 0; i < K * N; i++) host_b[i] = (float)(i % 5 - 2);
    for (int i = 0; i < M * N; i++) host_d[i] = (float)(i + 1);
    float want[M * N];
    for (int j = 0; j < N; j++)
        for (int i = 0; i < M; i++) {
            float sum = 0.0f;
            for (int l = 0; l < K; l++) sum += host_a[l + i * LDA] * host_b[l + j * K];
            want[i + j * M] = sum + host_d[i + j * M] + bias_host[i];
        }
    float *a = device_floats(LDA * M), *b = device_floats(K * N), *d = device_floats(M * N), *bias = device_floats(M);
    CUDA_OK(cudaMemcpy(a, host_a, sizeof host_a, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(b, host_b, sizeof host_b, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(d, host_d, sizeof host_d, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(bias, bias_host, sizeof bias_host, cudaMemcpyHostToDevice));

    cublasLtHandle_t lt;
    LT_OK(cublasLtCreate(&lt));
    cublasLtMatmulDesc_t desc;
    LT_OK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const int32_t transpose = CUBLAS_OP_T;
    const uint32_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose));
    LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
    LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    const int64_t wide_transpose = CUBLAS_OP_T; /* the documented int32_t, given in 8 bytes */
    CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &wide_transpose, sizeof wide_transpose) ==
          CUBLAS_STATUS_INVALID_VALUE);
    cublasLtMatrixLayout_t la, lb, ld, short_ld;
    LT_OK(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, K, M, LDA));
    LT_OK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, K, N, K));
    LT_OK(cublasLtMatrixLayoutCreate(&ld, CUDA_R_32F, M, N, M));
    LT_OK(cublasLtMatrixLayoutCreate(&short_ld, CUDA_R_32F, M, N, M - 1));
    cublasLtMatmulPreference_t pref;
    LT_OK(cublasLtMatmulPreferenceCreate(&pref));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    LT_OK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 1, &result, &found));
    CHECK(found == 1);
    CHECK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, short_ld, short_ld, pref, 1, &result, &found) ==
          CUBLAS_STATUS_INVALID_VALUE);
    LT_OK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 1, &result, &found));

    /* Captured: runs at each replay, not at the capture. */
    cudaStream_t stream;
    CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    const float one = 1.0f;
    CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    LT_OK(cublasLtMatmul(lt, desc, &one, a, la, b, lb, &one, d, ld, d, ld, &result.algo, nullptr, 0, stream));
    cudaGraph_t graph;
    CUDA_OK(cudaStreamEndCapture(stream, &graph));
    float got[M * N];
    CUDA_OK(cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost));
    CHECK(memcmp(got, host_d, sizeof got) == 0);
    cudaGraphExec_t exec;
    CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    CUDA_OK(cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost));
    CHECK(memcmp(got, want, sizeof got) == 0);

    /* An algorithm serves only its own problem; pointers keep the promise
     * (256 bytes by default), the bias that of the pointer the heuristic saw. */
    cublasLtMatrixLayout_t lb_wide;
    LT_OK(cublasLtMatrixLayoutCreate(&lb_wide, CUDA_R_32F, K, N, K + 1));
    float *b_wide = device_floats((K + 1) * N);
    CHECK(cublasLtMatmul(lt, desc, &one, a, la, b_wide, lb_wide, &one, d, ld, d, ld, &result.algo, nullptr, 0,
                         stream) == CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasLtMatmul(lt, desc, &one, a, la, b + 1, lb, &one, d, ld, d, ld, &result.algo, nullptr, 0, stream) ==
          CUBLAS_STATUS_NOT_SUPPORTED);
    float *bias_16 = bias + 4; /* 16 bytes past the 256-byte aligned bias */
    LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_16, sizeof bias_16));
    CHECK(cublasLtMatmul(lt, desc, &one, a, la, b, lb, &one, d, ld, d, ld, &result.algo, nullptr, 0, stream) ==
          CUBLAS_STATUS_NOT_SUPPORTED);

    /* bf16 operands promised only 2-byte alignment: no algorithm. */
    cublasLtMatrixLayout_t la16, lb16;
    LT_OK(cublasLtMatrixLayoutCreate(&la16, CUDA_R_16BF, K, M, LDA));
    LT_OK(cublasLtMatrixLayoutCreate(&lb16, CUDA_R_16BF, K, N, K));
    const uint32_t two_bytes = 2;
    LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &two_bytes,
                                               sizeof two_bytes));
    const uint32_t no_epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &no_epilogue, sizeof no_epilogue));
    CHECK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la16, lb16, ld, ld, pref, 1, &result, &found) ==
              CUBLAS_STATUS_NOT_SUPPORTED &&
          found == 0);

    CUDA_OK(cudaGraphExecDestroy(exec));
    CUDA_OK(cudaGraphDestroy(graph));
    CUDA_OK(cudaStreamDestroy(stream));
    cublasLtMatrixLayout_t layouts[] = {la, lb, ld, short_ld, lb_wide, la16, lb16};
    for (cublasLtMatrixLayout_t layout : layouts) LT_OK(cublasLtMatrixLayoutDestroy(layout));
    LT_OK(cublasLtMatmulPreferenceDestroy(pref));
    LT_OK(cublasLtMatmulDescDestroy(desc));
    LT_OK(cublasLtDestroy(lt));
    float *buffers[] = {a, b, d, bias, b_wide};
    for (float *buffer : buffers) CUDA_OK(cudaFree(buffer));
}

static int break_rule(const char *rule) {
    float *out = device_floats(64);
    if (strcmp(rule, "deadlock") == 0) deadlock_kernel<<<1, 32>>>(out);
    else if (strcmp(rule, "barrier_divergence") == 0) divergent_barrier_kernel<<<1, 64>>>(out);
    else if (strcmp(rule, "exit_at_barrier") == 0) exit_at_barrier_kernel<<<1, 32>>>(out);
    else if (strcmp(rule, "partial_warp") == 0) partial_warp_kernel<<<1, 48>>>(out);
    else if (strcmp(rule, "block_shape") == 0) write_kernel<<<1, 2048>>>(out, 64);
    else if (strcmp(rule, "shared_optin") == 0) dynamic_shared_kernel<<<1, 64, 64 * 1024>>>(out);
    else if (strcmp(rule, "out_of_bounds") == 0) write_kernel<<<1, 64>>>(out, 64 + 1024);
    else if (strcmp(rule, "host_pointer") == 0) {
        static float host[64];
        write_kernel<<<1, 64>>>(host, 64);
    } else if (strcmp(rule, "freed_memory") == 0) {
        CUDA_OK(cudaFree(out));
        write_kernel<<<1, 64>>>(out, 64);
    } else {
        fprintf(stderr, "unknown rule %s\n", rule);
        return 2;
    }
    fprintf(stderr, "the emulator let %s pass\n", rule);
    return 1;
}

int main(int argc, char **argv) {
    if (argc > 1) return break_rule(argv[1]);
    check_missing_barrier();
    check_warp_collectives();
    check_sort();
    check_capture();
    check_capture_rejects();
    check_cublaslt();
    if (failures) fprintf(stderr, "test_emulator: %d checks failed\n", failures);
    else printf("test_emulator: ok\n");
    return failures ? 1 : 0;
}
