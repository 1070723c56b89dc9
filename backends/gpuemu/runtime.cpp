/* The gpuemu runtime: the CUDA runtime API of include/cuda_runtime_api.h and
 * the device built-ins of include/cuda_runtime.h, on the CPU, so that the
 * real kernels (kernels/cuda) and host glue (backends/gpu) run in CI.
 *
 * What it models, and checks where CUDA leaves a bug silent or undefined:
 *
 * Kernels. Blocks run one after another; a block's threads are fibers
 * on the calling thread, switched only at barriers and warp
 * collectives, from the last thread to the first in even blocks (the first
 * block is often the only one) and in index order in odd ones, so that a
 * read which lacks a barrier sees the value before the write in one order
 * or the other. Shared memory, static and dynamic, is filled with
 * NaN bytes before each block. It dies, naming the kernel, its launch, the
 * block and the thread, on: a block shape or grid beyond CUDA's limits,
 * dynamic shared memory beyond the device's opt-in limit or beyond 48 KiB
 * without cudaFuncSetAttribute, a pointer argument outside device memory,
 * barriers reached at different lines, after a thread of the block exited
 * or while one exits, deadlock, warp collectives (shuffles, ballots,
 * __syncwarp) at different lines in one warp or naming lanes that exited or
 * do not exist, and memory faults (each allocation ends at a guard page;
 * freed memory stays mapped without access for a while, so a late use
 * faults too).
 *
 * Memory. Device memory is host memory (mmap'd, filled with 0xff bytes, NaN
 * as floats, on allocation: CUDA does not clear it either). Copies and sets
 * are checked against the allocations they touch and the direction named.
 *
 * Streams run their work synchronously, at the call, in issue order; events
 * record host time. Stream capture records launches (their arguments by
 * value), copies, sets and the CUB sort as graph nodes without running them,
 * and cudaGraphLaunch replays them. As in CUDA, calls that a capture forbids
 * fail with cudaErrorStreamCaptureUnsupported and invalidate it (reported on
 * stderr): allocation and freeing, synchronous copies and sets, synchronising
 * a stream or the device (relaxed captures allow the allocations and the
 * synchronous copies and sets). So do copies from or to pageable host
 * memory, which a graph cannot hold. Stream-ordered allocation during a
 * capture (CUDA's memory nodes) is not emulated and fails the same way,
 * saying so.
 *
 * What it does not model: timing, concurrency between blocks or streams,
 * the GPU's memory model (every write is visible at once), bf16 or
 * fast-math instructions (the CPU's fp32 math runs instead).
 *
 * Faults, injected so that the glue's error path runs in tests:
 * EGRC_GPUEMU_FAULT=NAME[:N] makes the Nth call (default the first) of NAME
 * fail as CUDA reports such failures. NAME is a piece of stream work (a
 * kernel by its name without template arguments, e.g. add_kernel; the
 * emulated cublasLtMatmul; cudaMemcpyAsync, cudaMemsetAsync) or an
 * allocation (cudaMalloc, cudaMallocAsync), and N counts its calls from the
 * process's first, a graph's replays included. Stream work then faults with
 * an illegal address: it does not run, and neither does any work after it
 * (the context is lost); the next synchronising call (a stream, event or
 * device synchronisation, a synchronous copy or set) returns
 * cudaErrorIllegalAddress, and so does every call after that (CUDA's sticky
 * error: cudaGetLastError does not clear it). With CUDA_LAUNCH_BLOCKING=1,
 * as in CUDA, the faulting call reports it itself. An allocation fails
 * with cudaErrorMemoryAllocation, which is not sticky.
 *
 * Single-threaded: the first host thread to call it owns it; a call from
 * another thread dies. Environment: EGRC_GPUEMU_SHARED_LIMIT sets the shared
 * memory a block may opt into (default 227 KiB, an H100's), e.g. 65536 for
 * an AMD block; EGRC_GPUEMU_FAULT and CUDA_LAUNCH_BLOCKING above. */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <string>
#include <vector>

#include "cuda_runtime.h"

namespace egrc_emu {

uint3 thread_idx, block_idx;
dim3 block_dim, grid_dim;

namespace {

constexpr int warp_lanes = 32;
constexpr int max_block_threads = 1024;
constexpr size_t default_shared_bytes = 48 * 1024;
constexpr size_t default_shared_optin = 227 * 1024;
constexpr size_t fiber_stack_bytes = 256 * 1024;
/* Freed device memory stays mapped without access, up to this much address
 * space and this many blocks (each is a mapping, and the kernel limits
 * those to about 65536), so that a use after free faults instead of reading
 * a new buffer. */
constexpr size_t quarantine_bytes = (size_t)64 << 30;
constexpr size_t quarantine_blocks = 8192;

/* ---------------- reporting ---------------- */

struct kernel_run {
    const launch_site *where = nullptr;
    int thread = -1; /* the running fiber's linear index, -1 in the scheduler */
};
kernel_run running;

void print_kernel_context() {
    if (!running.where) return;
    fprintf(stderr, "\n  in kernel %s, launched at %s:%d by %s, grid (%u,%u,%u) x block (%u,%u,%u), block (%u,%u,%u)",
            running.where->kernel, running.where->file, running.where->line, running.where->launcher, grid_dim.x, grid_dim.y, grid_dim.z,
            block_dim.x, block_dim.y, block_dim.z, block_idx.x, block_idx.y, block_idx.z);
    if (running.thread >= 0) fprintf(stderr, ", thread (%u,%u,%u)", thread_idx.x, thread_idx.y, thread_idx.z);
}

/* Ends the process with a failure status, keeping what it printed. Not abort:
 * ctest counts a signal as a failure even where a test expects the death. */
[[noreturn]] void exit_now() {
    fflush(stdout);
    fflush(stderr);
    _exit(EXIT_FAILURE);
}

[[noreturn]] __attribute__((format(printf, 1, 2))) void die(const char *fmt, ...) {
    fputs("gpuemu: ", stderr);
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    print_kernel_context();
    fputc('\n', stderr);
    exit_now();
}

__attribute__((format(printf, 1, 2))) void report(const char *fmt, ...) {
    fputs("gpuemu: ", stderr);
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
}

cudaError_t last_error = cudaSuccess;

cudaError_t fail(cudaError_t error) {
    last_error = error;
    return error;
}

/* ---------------- injected faults (EGRC_GPUEMU_FAULT) ---------------- */

std::string fault_name;            /* empty: no fault to inject */
unsigned long long fault_call = 0; /* which call of fault_name fails, from 1 */
unsigned long long fault_calls_seen = 0;
bool launch_blocking = false; /* CUDA_LAUNCH_BLOCKING=1 */
/* A fault stream work met that no synchronising call has reported yet, and
 * the sticky error every call returns once one has. */
bool fault_pending = false;
cudaError_t sticky_error = cudaSuccess;

/* A misspelt name or a count past the run would inject nothing, silently. */
void report_fault_not_injected() {
    if (fault_calls_seen < fault_call)
        report("EGRC_GPUEMU_FAULT: no fault was injected: %s ran %llu times, not %llu (in bf16 mode attention runs "
               "the tc_* kernels; CUDA_LAUNCH_BLOCKING and EGRC_GPU_GEMM=tiled change what runs too)",
               fault_name.c_str(), fault_calls_seen, fault_call);
}

void read_fault_setting() {
    const char *blocking = getenv("CUDA_LAUNCH_BLOCKING");
    launch_blocking = blocking && strcmp(blocking, "1") == 0;
    const char *setting = getenv("EGRC_GPUEMU_FAULT");
    if (!setting || !*setting) return;
    const char *colon = strchr(setting, ':');
    fault_name.assign(setting, colon ? (size_t)(colon - setting) : strlen(setting));
    fault_call = 1;
    if (colon) {
        char *end;
        fault_call = strtoull(colon + 1, &end, 10);
        if (*end || end == colon + 1 || fault_call == 0) fault_name.clear();
    }
    if (fault_name.empty())
        die("EGRC_GPUEMU_FAULT=%s: expected NAME or NAME:N, NAME a kernel (e.g. add_kernel), cublasLtMatmul, "
            "cudaMemcpyAsync, cudaMemsetAsync, cudaMalloc or cudaMallocAsync, N >= 1 the call of it that fails",
            setting);
    atexit(report_fault_not_injected);
}

/* Counts a call of `name`; true for the one EGRC_GPUEMU_FAULT names. */
bool injected(const std::string &name) {
    return !fault_name.empty() && name == fault_name && ++fault_calls_seen == fault_call;
}

/* A synchronising call: reports a pending fault, which sticks from then on. */
cudaError_t synchronise() {
    if (fault_pending) {
        fault_pending = false;
        sticky_error = cudaErrorIllegalAddress;
    }
    return sticky_error == cudaSuccess ? cudaSuccess : fail(sticky_error);
}

/* ---------------- the owning thread, limits, signals ---------------- */

pthread_t owner;
bool initialised = false;
size_t shared_optin = default_shared_optin;
size_t page_bytes = 4096;
size_t total_memory = (size_t)16 << 30;
struct sigaction previous_segv;
char signal_stack[64 * 1024];

bool in_range(const void *p, const char *begin, size_t bytes) {
    return (const char *)p >= begin && (const char *)p < begin + bytes;
}

void on_segv(int sig, siginfo_t *info, void *context);

void enter(const char *call) {
    if (!initialised) {
        initialised = true;
        owner = pthread_self();
        page_bytes = (size_t)sysconf(_SC_PAGESIZE);
        const long pages = sysconf(_SC_PHYS_PAGES);
        if (pages > 0) total_memory = (size_t)pages * page_bytes;
        read_fault_setting();
        const char *limit = getenv("EGRC_GPUEMU_SHARED_LIMIT");
        if (limit && *limit) {
            char *end;
            const unsigned long long value = strtoull(limit, &end, 10);
            if (*end || value < default_shared_bytes || value > ((size_t)1 << 20))
                die("EGRC_GPUEMU_SHARED_LIMIT=%s: expected bytes, from 49152 to 1048576", limit);
            shared_optin = (size_t)value;
        }
        stack_t alternate = {};
        alternate.ss_sp = signal_stack;
        alternate.ss_size = sizeof signal_stack;
        sigaltstack(&alternate, nullptr);
        struct sigaction action = {};
        action.sa_sigaction = on_segv;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        sigaction(SIGSEGV, &action, &previous_segv);
    } else if (!pthread_equal(owner, pthread_self())) {
        die("%s called from a second host thread: the emulator is single-threaded", call);
    }
}

/* ---------------- memory ---------------- */

enum class memory_kind { device, pinned_host };

struct allocation {
    size_t bytes; /* as requested */
    char *mapping;
    size_t mapping_bytes;
    memory_kind kind;
};

std::map<uintptr_t, allocation> allocations; /* by start address */
struct freed_block {
    uintptr_t start;
    allocation block;
};
std::deque<freed_block> quarantine;                /* oldest first */
std::map<uintptr_t, const freed_block *> quarantine_by_mapping; /* by mapping address */
size_t quarantined = 0, device_in_use = 0;

/* The live allocation holding p, or null. Its start goes to *start. */
const allocation *find_allocation(const void *p, uintptr_t *start) {
    auto it = allocations.upper_bound((uintptr_t)p);
    if (it == allocations.begin()) return nullptr;
    --it;
    if ((uintptr_t)p >= it->first + (it->second.bytes ? it->second.bytes : 1)) return nullptr;
    *start = it->first;
    return &it->second;
}

const freed_block *find_freed(const void *p) {
    auto it = quarantine_by_mapping.upper_bound((uintptr_t)p);
    if (it == quarantine_by_mapping.begin()) return nullptr;
    --it;
    return in_range(p, it->second->block.mapping, it->second->block.mapping_bytes) ? it->second : nullptr;
}

/* bytes of memory, 256-byte aligned (as cudaMalloc's), ending at a guard
 * page. */
void *map_block(size_t bytes, memory_kind kind) {
    const size_t rounded = (bytes + 255) / 256 * 256;
    const size_t mapping_bytes = (rounded + page_bytes - 1) / page_bytes * page_bytes + page_bytes;
    void *mapping = mmap(nullptr, mapping_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                         -1, 0);
    if (mapping == MAP_FAILED) return nullptr;
    char *guard = (char *)mapping + mapping_bytes - page_bytes;
    mprotect(guard, page_bytes, PROT_NONE);
    char *start = guard - rounded;
    memset(start, 0xff, rounded);
    allocations[(uintptr_t)start] = allocation{bytes, (char *)mapping, mapping_bytes, kind};
    if (kind == memory_kind::device) device_in_use += mapping_bytes;
    return start;
}

cudaError_t unmap_block(const char *call, void *ptr, memory_kind kind) {
    if (!ptr) return cudaSuccess;
    auto it = allocations.find((uintptr_t)ptr);
    if (it == allocations.end() || it->second.kind != kind) {
        report("%s(%p): not the start of a live %s allocation%s", call, ptr,
               kind == memory_kind::device ? "device" : "pinned host", find_freed(ptr) ? " (freed already)" : "");
        return fail(cudaErrorInvalidValue);
    }
    const allocation block = it->second;
    allocations.erase(it);
    if (kind == memory_kind::device) device_in_use -= block.mapping_bytes;
    mprotect(block.mapping, block.mapping_bytes, PROT_NONE);
    madvise(block.mapping, block.mapping_bytes, MADV_DONTNEED);
    quarantine.push_back({(uintptr_t)ptr, block});
    quarantine_by_mapping[(uintptr_t)block.mapping] = &quarantine.back();
    quarantined += block.mapping_bytes;
    while (quarantined > quarantine_bytes || quarantine.size() > quarantine_blocks) {
        const allocation &oldest = quarantine.front().block;
        quarantine_by_mapping.erase((uintptr_t)oldest.mapping);
        munmap(oldest.mapping, oldest.mapping_bytes);
        quarantined -= oldest.mapping_bytes;
        quarantine.pop_front();
    }
    return cudaSuccess;
}

bool is_device(const void *p) {
    uintptr_t start;
    const allocation *a = find_allocation(p, &start);
    return a && a->kind == memory_kind::device;
}

bool is_pinned(const void *p) {
    uintptr_t start;
    const allocation *a = find_allocation(p, &start);
    return a && a->kind == memory_kind::pinned_host;
}

/* Dies unless [p, p + bytes) stays inside the allocation holding p (any
 * range of pageable host memory passes unless device memory is required). */
void check_range(const char *call, const char *what, const void *p, size_t bytes, bool device_required) {
    uintptr_t start;
    const allocation *a = find_allocation(p, &start);
    if (!a) {
        if (const freed_block *f = find_freed(p))
            die("%s: %s %p lies in a device allocation of %zu bytes that was freed", call, what, p, f->block.bytes);
        if (device_required) die("%s: %s %p is not device memory", call, what, p);
        return;
    }
    if (device_required && a->kind != memory_kind::device)
        die("%s: %s %p is pinned host memory, not device memory", call, what, p);
    const size_t offset = (uintptr_t)p - start;
    if (bytes > a->bytes - offset)
        die("%s: %s [%p, +%zu bytes) runs %zu bytes past the end of its %zu-byte allocation", call, what, p, bytes,
            bytes - (a->bytes - offset), a->bytes);
}

/* ---------------- fiber contexts ---------------- */

/* A fiber's saved context: where its stack pointer was when it last
 * switched away. On x86-64 a switch is a few instructions of our own: the
 * registers the ABI makes the callee save, less the floating-point control
 * words, which no kernel changes. glibc's swapcontext also saves the signal
 * mask with a system call each time, which made the emulated tests five
 * times slower. Elsewhere the fibers are ucontext's. */
#if defined(__x86_64__)

struct fiber_context {
    void *sp = nullptr;
};

extern "C" void egrc_emu_switch_stack(void **save_sp, void *load_sp);
asm(R"(
    .text
    .p2align 4
    .globl egrc_emu_switch_stack
    .hidden egrc_emu_switch_stack
    .type egrc_emu_switch_stack, @function
egrc_emu_switch_stack:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size egrc_emu_switch_stack, .-egrc_emu_switch_stack
)");

void switch_context(fiber_context &from, const fiber_context &to) { egrc_emu_switch_stack(&from.sp, to.sp); }

/* Prepares c so that switching to it calls entry (which never returns) on
 * the given stack: the frame egrc_emu_switch_stack pops, returning into
 * entry as if entry had been called (the stack 16-byte aligned at the call). */
void make_context(fiber_context &c, char *stack, size_t bytes, void (*entry)()) {
    void **sp = (void **)(((uintptr_t)(stack + bytes)) & ~(uintptr_t)15);
    *--sp = nullptr;        /* entry's return address: it never returns */
    *--sp = (void *)entry;  /* what the switch returns to */
    for (int i = 0; i < 6; i++) *--sp = nullptr; /* rbp, rbx, r12-r15 */
    c.sp = sp;
}

#else

struct fiber_context {
    ucontext_t context;
};

void switch_context(fiber_context &from, const fiber_context &to) { swapcontext(&from.context, &to.context); }

void make_context(fiber_context &c, char *stack, size_t bytes, void (*entry)()) {
    getcontext(&c.context);
    c.context.uc_stack.ss_sp = stack;
    c.context.uc_stack.ss_size = bytes;
    c.context.uc_link = nullptr; /* entry never returns */
    makecontext(&c.context, entry, 0);
}

#endif

/* ---------------- fibers and blocks ---------------- */

enum class fiber_state { runnable, at_barrier, at_warp, exited };

struct fiber {
    fiber_context context;
    char *stack = nullptr; /* fiber_stack_bytes above a guard page */
    fiber_state state = fiber_state::exited;
    uint64_t waits_for = 0; /* the generation whose end resumes it */
    uint3 index = {0, 0, 0};
};

struct warp_state {
    unsigned lanes = 0;     /* lanes that exist (a partial last warp has fewer) */
    unsigned live = 0;      /* lanes that have not exited */
    unsigned arrived = 0;   /* lanes waiting in the current collective */
    unsigned mask = 0;      /* the current collective's mask */
    const char *op = "", *file = "";
    int line = 0;
    uint64_t generation = 0;
    uint64_t values[2][warp_lanes] = {}; /* by generation parity */
};

struct block_state {
    int threads = 0, live = 0, arrived = 0;
    bool reverse = false; /* fibers run from the last to the first */
    uint64_t generation = 0;
    const char *file = "";
    int line = 0;
    warp_state warps[max_block_threads / warp_lanes];
};

fiber fibers[max_block_threads];
block_state block;
fiber_context scheduler;
const std::function<void()> *kernel_body = nullptr;
/* Static shared variables: the block each was last filled for, and the bytes
 * the current block has declared. */
uint64_t block_serial = 0;
std::unordered_map<void *, uint64_t> shared_filled_for;
size_t block_static_shared = 0;
std::vector<unsigned char> dynamic_shared_bytes;
size_t dynamic_shared_size = 0;

char *fiber_stack(int t) {
    if (!fibers[t].stack) {
        void *mapping = mmap(nullptr, fiber_stack_bytes + page_bytes, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mapping == MAP_FAILED) die("cannot map a fiber stack");
        mprotect(mapping, page_bytes, PROT_NONE);
        fibers[t].stack = (char *)mapping + page_bytes;
    }
    return fibers[t].stack;
}


void thread_exited() {
    const int t = running.thread;
    warp_state &w = block.warps[t / warp_lanes];
    const unsigned bit = 1u << (t % warp_lanes);
    fibers[t].state = fiber_state::exited;
    block.live--;
    w.live &= ~bit;
    if (block.arrived > 0)
        die("thread exits while %d other threads of its block wait at __syncthreads (%s:%d): every thread must "
            "reach the barrier",
            block.arrived, block.file, block.line);
    if (w.arrived && (w.mask & bit))
        die("lane %d exits while lanes %#x of its warp wait for it at %s (%s:%d)", t % warp_lanes, w.arrived, w.op,
            w.file, w.line);
}

bool blocked(const fiber &f, int t) {
    if (f.state == fiber_state::at_barrier) return block.generation == f.waits_for;
    if (f.state == fiber_state::at_warp) return block.warps[t / warp_lanes].generation == f.waits_for;
    return false;
}

/* The fiber to run after thread t stops: the next one, in the block's order
 * and round the circle, that has not exited and is not blocked; -1 if none. */
int next_runnable(int t) {
    const int n = block.threads;
    const int position = block.reverse ? n - 1 - t : t;
    for (int step = 1; step <= n; step++) {
        const int p = (position + step) % n, candidate = block.reverse ? n - 1 - p : p;
        const fiber &f = fibers[candidate];
        if (f.state != fiber_state::exited && !blocked(f, candidate)) return candidate;
    }
    return -1;
}

/* Stops the running fiber (blocked or exited) and runs the next runnable one
 * directly, without a detour through the scheduler, which gets control back
 * only when no fiber can run: the block is done, or deadlocked. */
void switch_away() {
    fiber &self = fibers[running.thread];
    const int next = next_runnable(running.thread);
    if (next < 0) {
        switch_context(self.context, scheduler);
        return;
    }
    fiber &f = fibers[next];
    f.state = fiber_state::runnable;
    running.thread = next;
    thread_idx = f.index;
    switch_context(self.context, f.context);
}

void fiber_main() {
    (*kernel_body)();
    thread_exited();
    switch_away(); /* for good: an exited fiber is never resumed */
}

[[noreturn]] void die_deadlocked() {
    std::string waits;
    int shown = 0;
    for (int t = 0; t < block.threads && shown < 4; t++) {
        const fiber &f = fibers[t];
        if (f.state == fiber_state::exited) continue;
        const warp_state &w = block.warps[t / warp_lanes];
        char line[256];
        if (f.state == fiber_state::at_barrier)
            snprintf(line, sizeof line, "\n  thread %d waits at __syncthreads (%s:%d)", t, block.file, block.line);
        else
            snprintf(line, sizeof line, "\n  thread %d waits at %s (%s:%d) for lanes %#x", t, w.op, w.file, w.line,
                     w.mask & ~w.arrived);
        waits += line;
        shown++;
    }
    running.thread = -1;
    die("deadlock: %d of the block's threads wait and none can proceed%s", block.live, waits.c_str());
}

void run_block(bool reverse) {
    const int n = block.threads;
    block.live = n;
    block.arrived = 0;
    for (int w = 0; w < (n + warp_lanes - 1) / warp_lanes; w++) {
        warp_state &ws = block.warps[w];
        const int lanes = n - w * warp_lanes < warp_lanes ? n - w * warp_lanes : warp_lanes;
        ws.lanes = ws.live = lanes == warp_lanes ? 0xffffffffu : (1u << lanes) - 1;
        ws.arrived = 0;
    }
    for (int t = 0; t < n; t++) {
        fiber &f = fibers[t];
        f.index = {t % block_dim.x, t / block_dim.x % block_dim.y, t / (block_dim.x * block_dim.y)};
        f.state = fiber_state::runnable;
        make_context(f.context, fiber_stack(t), fiber_stack_bytes, fiber_main);
    }
    block.reverse = reverse;
    const int first = reverse ? n - 1 : 0;
    running.thread = first;
    thread_idx = fibers[first].index;
    switch_context(scheduler, fibers[first].context);
    running.thread = -1;
    if (block.live > 0) die_deadlocked();
}

/* ---------------- launches ---------------- */

std::map<const void *, int> dynamic_shared_optins; /* kernel -> bytes allowed by cudaFuncSetAttribute */

struct kernel_launch {
    launch_site where;
    const void *kernel;
    dim3 grid, block;
    size_t shared;
    std::function<void()> body;
    std::vector<const void *> pointers;
};

void run_kernel(const kernel_launch &k) {
    running.where = &k.where;
    grid_dim = k.grid;
    block_dim = k.block;
    block_idx = {0, 0, 0};
    for (size_t i = 0; i < k.pointers.size(); i++) {
        if (!k.pointers[i]) continue;
        char what[64];
        snprintf(what, sizeof what, "pointer argument %zu", i + 1);
        check_range(k.where.kernel, what, k.pointers[i], 1, false);
        if (!is_device(k.pointers[i]) && !is_pinned(k.pointers[i]))
            die("pointer argument %zu (%p) is host memory, which a kernel cannot read", i + 1, k.pointers[i]);
    }
    /* 16 bytes of slack keep the buffer aligned as CUDA's (at least 16). */
    dynamic_shared_bytes.assign(k.shared + 16, 0xff);
    dynamic_shared_size = k.shared;
    kernel_body = &k.body;
    unsigned long long index = 0;
    for (unsigned z = 0; z < k.grid.z; z++)
        for (unsigned y = 0; y < k.grid.y; y++)
            for (unsigned x = 0; x < k.grid.x; x++, index++) {
                block_idx = {x, y, z};
                block_serial++;
                block_static_shared = 0;
                memset(dynamic_shared_bytes.data(), 0xff, dynamic_shared_bytes.size());
                run_block(index % 2 == 0);
            }
    kernel_body = nullptr;
    running.where = nullptr;
}

void check_launch(const kernel_launch &k) {
    running.where = &k.where;
    grid_dim = k.grid;
    block_dim = k.block;
    block_idx = {0, 0, 0};
    const unsigned long long threads = (unsigned long long)k.block.x * k.block.y * k.block.z;
    if (threads == 0 || threads > max_block_threads || k.block.x > 1024 || k.block.y > 1024 || k.block.z > 64)
        die("invalid block shape: at most 1024 threads, (1024, 1024, 64) per dimension, none empty");
    if (k.grid.x == 0 || k.grid.y == 0 || k.grid.z == 0 || k.grid.x > 0x7fffffffu || k.grid.y > 65535 ||
        k.grid.z > 65535)
        die("invalid grid: from 1 to (2^31 - 1, 65535, 65535) blocks");
    if (k.shared > shared_optin)
        die("%zu bytes of dynamic shared memory: more than the %zu a block may have", k.shared, shared_optin);
    if (k.shared > default_shared_bytes) {
        auto it = dynamic_shared_optins.find(k.kernel);
        if (it == dynamic_shared_optins.end() || (size_t)it->second < k.shared)
            die("%zu bytes of dynamic shared memory without cudaFuncSetAttribute("
                "cudaFuncAttributeMaxDynamicSharedMemorySize) allowing them (CUDA's default is 48 KiB)",
                k.shared);
    }
    running.where = nullptr;
}

/* ---------------- streams, events, graphs ---------------- */

/* A unit of stream work: run now, or recorded by a capture and replayed.
 * `name` is what EGRC_GPUEMU_FAULT calls it. */
struct node {
    std::string what, name;
    std::function<void()> run;
};

/* Runs stream work unless the context is lost, or loses it here when this
 * is the call EGRC_GPUEMU_FAULT names. */
void run_node(const node &n) {
    if (fault_pending || sticky_error != cudaSuccess) return;
    if (injected(n.name)) {
        fault_pending = true;
        if (launch_blocking) synchronise();
        return;
    }
    n.run();
}

struct stream_state {
    unsigned flags = 0;
    bool capturing = false, invalidated = false;
    cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
    std::vector<node> captured;
};

struct event_state {
    unsigned flags = 0;
    bool recorded = false;
    struct timespec when = {0, 0};
};

struct graph_state {
    std::vector<node> nodes;
};

struct graph_exec_state {
    std::shared_ptr<const std::vector<node>> nodes;
};

stream_state legacy_stream;
std::set<stream_state *> streams;
std::set<event_state *> events;
std::set<graph_state *> graphs;
std::set<graph_exec_state *> graph_execs;

const char *mode_name(cudaStreamCaptureMode mode) {
    return mode == cudaStreamCaptureModeGlobal        ? "global"
           : mode == cudaStreamCaptureModeThreadLocal ? "thread-local"
                                                      : "relaxed";
}

/* The stream a handle names, or null for an unknown handle. */
stream_state *stream_of(cudaStream_t stream) {
    if (!stream || stream == cudaStreamLegacy || stream == cudaStreamPerThread) return &legacy_stream;
    stream_state *s = reinterpret_cast<stream_state *>(stream);
    return streams.count(s) ? s : nullptr;
}

void invalidate(stream_state *s, const char *call, const char *why) {
    report("%s during the capture of stream %p (%s mode): %s; the capture is invalidated", call, (void *)s,
           mode_name(s->mode), why);
    s->invalidated = true;
    s->captured.clear();
}

/* Fails `call` if a capture forbids it: any capture (relaxed ones
 * included, unless allowed_in_relaxed), invalidating it as CUDA does. */
cudaError_t refuse_if_capturing(const char *call, bool allowed_in_relaxed) {
    std::vector<stream_state *> all(streams.begin(), streams.end());
    all.push_back(&legacy_stream);
    for (stream_state *s : all) {
        if (!s->capturing || s->invalidated) continue;
        if (allowed_in_relaxed && s->mode == cudaStreamCaptureModeRelaxed) continue;
        invalidate(s, call, "CUDA forbids this call while a stream captures (cudaErrorStreamCaptureUnsupported)");
        return fail(cudaErrorStreamCaptureUnsupported);
    }
    return cudaSuccess;
}

/* Runs the work now, or records it in the stream's capture. */
cudaError_t enqueue(cudaStream_t stream, node work) {
    if (sticky_error != cudaSuccess) return fail(sticky_error);
    stream_state *s = stream_of(stream);
    if (!s) {
        report("%s: unknown stream %p", work.what.c_str(), (void *)stream);
        return fail(cudaErrorInvalidResourceHandle);
    }
    if (s->capturing) {
        if (s->invalidated) return fail(cudaErrorStreamCaptureInvalidated);
        s->captured.push_back(std::move(work));
        return cudaSuccess;
    }
    if (s == &legacy_stream)
        for (stream_state *other : streams)
            if (other->capturing && !other->invalidated && !(other->flags & cudaStreamNonBlocking) &&
                other->mode != cudaStreamCaptureModeRelaxed) {
                invalidate(other, work.what.c_str(),
                           "work on the legacy default stream would join a capturing blocking stream "
                           "(cudaErrorStreamCaptureImplicit)");
                return fail(cudaErrorStreamCaptureImplicit);
            }
    run_node(work);
    return sticky_error == cudaSuccess ? cudaSuccess : fail(sticky_error);
}

const char *kind_name(cudaMemcpyKind kind) {
    switch (kind) {
    case cudaMemcpyHostToHost: return "cudaMemcpyHostToHost";
    case cudaMemcpyHostToDevice: return "cudaMemcpyHostToDevice";
    case cudaMemcpyDeviceToHost: return "cudaMemcpyDeviceToHost";
    case cudaMemcpyDeviceToDevice: return "cudaMemcpyDeviceToDevice";
    default: return "cudaMemcpyDefault";
    }
}

/* Checks a copy's ranges and direction; dies on a mismatch. */
void check_copy(const char *call, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) die("%s: invalid cudaMemcpyKind %d", call, (int)kind);
    check_range(call, "destination", dst, bytes, false);
    check_range(call, "source", src, bytes, false);
    const bool dst_device = is_device(dst), src_device = is_device(src);
    const bool dst_ok = kind == cudaMemcpyDefault || dst_device == (kind == cudaMemcpyHostToDevice ||
                                                                    kind == cudaMemcpyDeviceToDevice);
    const bool src_ok = kind == cudaMemcpyDefault || src_device == (kind == cudaMemcpyDeviceToHost ||
                                                                    kind == cudaMemcpyDeviceToDevice);
    if (!dst_ok || !src_ok)
        die("%s(%p <- %p, %zu bytes, %s): the destination is %s memory and the source %s memory", call, dst, src,
            bytes, kind_name(kind), dst_device ? "device" : "host", src_device ? "device" : "host");
    if ((const char *)dst < (const char *)src + bytes && (const char *)src < (const char *)dst + bytes &&
        dst != src)
        die("%s: source and destination overlap", call);
}

cudaError_t copy(const char *call, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                 cudaStream_t stream) {
    if (!bytes) return cudaSuccess;
    check_copy(call, dst, src, bytes, kind);
    stream_state *s = stream_of(stream);
    if (s && s->capturing && !s->invalidated) {
        const bool pageable = (!is_device(dst) && !is_pinned(dst)) || (!is_device(src) && !is_pinned(src));
        if (pageable) {
            invalidate(s, call,
                       "a graph cannot copy from or to pageable host memory (use cudaMallocHost memory); "
                       "cudaErrorStreamCaptureUnsupported");
            return fail(cudaErrorStreamCaptureUnsupported);
        }
    }
    char what[64];
    snprintf(what, sizeof what, "%s (%s)", call, kind_name(kind));
    return enqueue(stream, node{what, call, [=]() {
                                    check_copy(call, dst, src, bytes, kind);
                                    memmove(dst, src, bytes);
                                }});
}

cudaError_t set(const char *call, void *ptr, int value, size_t bytes, cudaStream_t stream) {
    if (!bytes) return cudaSuccess;
    check_range(call, "destination", ptr, bytes, true);
    return enqueue(stream, node{call, call, [=]() {
                                    check_range(call, "destination", ptr, bytes, true);
                                    memset(ptr, value, bytes);
                                }});
}

void replay(const std::vector<node> &nodes) {
    for (const node &n : nodes) run_node(n);
}

/* Faults: a guard page, a fiber's stack guard, freed memory, or elsewhere
 * while a kernel runs are reported with the kernel; any other fault goes to
 * the handler that was there before. */
void on_segv(int sig, siginfo_t *info, void *context) {
    const void *address = info->si_addr;
    const char *what = nullptr;
    char detail[160] = "";
    for (const auto &entry : allocations) {
        const allocation &a = entry.second;
        if (in_range(address, a.mapping, a.mapping_bytes)) {
            snprintf(detail, sizeof detail, " (%zd bytes past the end of an allocation of %zu bytes at %p)",
                     (const char *)address - (const char *)entry.first - (ssize_t)a.bytes, a.bytes,
                     (void *)entry.first);
            what = "an access beyond the end of device memory";
        }
    }
    if (!what && find_freed(address)) what = "an access to freed device memory";
    for (int t = 0; !what && t < max_block_threads; t++)
        if (fibers[t].stack && in_range(address, fibers[t].stack - page_bytes, page_bytes))
            what = "a fiber's stack overflowed (a kernel's locals are too large for the emulator)";
    if (!what && running.where) what = "a memory fault";
    if (!what) {
        sigaction(SIGSEGV, &previous_segv, nullptr);
        (void)sig;
        (void)context;
        return; /* the fault repeats under the previous handler */
    }
    fprintf(stderr, "gpuemu: %s at %p%s", what, address, detail);
    print_kernel_context();
    fputc('\n', stderr);
    exit_now();
}

} // namespace

void fail(const char *message) { die("%s", message); }

/* ---------------- device built-ins ---------------- */

void *dynamic_shared_memory() {
    /* Without any, a use faults (and is reported as a fault in the kernel). */
    return dynamic_shared_size ? dynamic_shared_bytes.data() : nullptr;
}

void shared_variable(void *address, size_t bytes) {
    if (running.thread < 0) die("a __shared__ variable declared outside a kernel");
    uint64_t &filled_for = shared_filled_for[address];
    if (filled_for == block_serial) return;
    filled_for = block_serial;
    memset(address, 0xff, bytes);
    block_static_shared += bytes;
    if (block_static_shared > default_shared_bytes)
        die("%zu bytes of static __shared__ variables: more than the 48 KiB CUDA allows", block_static_shared);
    if (block_static_shared + dynamic_shared_size > shared_optin)
        die("%zu bytes of static and %zu of dynamic shared memory: more than the %zu a block may have",
            block_static_shared, dynamic_shared_size, shared_optin);
}

void sync_block(const char *file, int line) {
    fiber &f = fibers[running.thread];
    if (block.live != block.threads)
        die("__syncthreads (%s:%d) after %d threads of the block exited: CUDA requires every thread to reach "
            "it (its result is undefined otherwise)",
            file, line, block.threads - block.live);
    if (block.arrived == 0) {
        block.file = file;
        block.line = line;
    } else if (block.line != line || (block.file != file && strcmp(block.file, file) != 0)) {
        die("barrier divergence: this thread is at __syncthreads (%s:%d) while %d threads of its block wait at "
            "__syncthreads (%s:%d)",
            file, line, block.arrived, block.file, block.line);
    }
    if (++block.arrived == block.live) {
        block.arrived = 0;
        block.generation++;
        return;
    }
    f.state = fiber_state::at_barrier;
    f.waits_for = block.generation;
    switch_away();
}

const uint64_t *warp_collective(const char *op, unsigned mask, uint64_t value, const char *file, int line) {
    const int t = running.thread;
    if (t < 0) die("%s called outside a kernel", op);
    const int lane = t % warp_lanes;
    const unsigned bit = 1u << lane;
    warp_state &w = block.warps[t / warp_lanes];
    if (!(mask & bit)) die("%s (%s:%d) with mask %#x, which leaves out the calling lane %d", op, file, line, mask, lane);
    if (mask & ~w.lanes)
        die("%s (%s:%d) in a partial warp: mask %#x names lanes %#x past the block's %d threads", op, file, line, mask,
            mask & ~w.lanes, block.threads);
    if (mask & ~w.live)
        die("%s (%s:%d) with mask %#x: lanes %#x have exited", op, file, line, mask, mask & ~w.live);
    if (w.arrived == 0) {
        w.op = op;
        w.file = file;
        w.line = line;
        w.mask = mask;
    } else if (w.mask != mask || w.line != line || (w.file != file && strcmp(w.file, file) != 0)) {
        die("warp divergence: lane %d is at %s (%s:%d, mask %#x) while lanes %#x wait at %s (%s:%d, mask %#x)", lane,
            op, file, line, mask, w.arrived, w.op, w.file, w.line, w.mask);
    }
    const uint64_t generation = w.generation;
    w.values[generation & 1][lane] = value;
    w.arrived |= bit;
    if (w.arrived == mask) {
        w.arrived = 0;
        w.generation++;
    } else {
        fibers[t].state = fiber_state::at_warp;
        fibers[t].waits_for = generation;
        switch_away();
    }
    return w.values[generation & 1];
}

int shuffle_source(shuffle_kind kind, unsigned mask, int arg, int width, const char *file, int line) {
    const int lane = running.thread % warp_lanes;
    if (width <= 0 || width > warp_lanes || (width & (width - 1)))
        die("shuffle (%s:%d) with width %d: a power of two up to 32", file, line, width);
    const int base = lane & ~(width - 1);
    int source = lane;
    switch (kind) {
    case shuffle_idx: source = base + (arg & (width - 1)); break;
    case shuffle_xor: source = (lane ^ arg) < base + width && (lane ^ arg) >= base ? lane ^ arg : lane; break;
    case shuffle_up: source = lane - arg >= base ? lane - arg : lane; break;
    case shuffle_down: source = lane + arg < base + width ? lane + arg : lane; break;
    }
    if (!(mask & (1u << source)))
        die("shuffle (%s:%d) with mask %#x reads lane %d, outside the mask", file, line, mask, source);
    return source;
}

unsigned ballot(unsigned mask, bool predicate, const char *file, int line) {
    const uint64_t *lanes = warp_collective("a ballot", mask, predicate ? 1 : 0, file, line);
    unsigned result = 0;
    for (int i = 0; i < warp_lanes; i++)
        if ((mask & (1u << i)) && lanes[i]) result |= 1u << i;
    return result;
}

unsigned active_mask() {
    if (running.thread < 0) die("__activemask called outside a kernel");
    return block.warps[running.thread / warp_lanes].live;
}

void launch_kernel(const launch_site &where, const void *kernel, dim3 grid, dim3 block_shape, size_t shared,
                   cudaStream_t stream, std::function<void()> body, std::vector<const void *> pointers) {
    enter(where.kernel);
    if (running.where) die("kernel %s launched from inside a kernel (dynamic parallelism is not emulated)", where.kernel);
    auto launch = std::make_shared<kernel_launch>(
        kernel_launch{where, kernel, grid, block_shape, shared, std::move(body), std::move(pointers)});
    check_launch(*launch);
    block.threads = (int)(block_shape.x * block_shape.y * block_shape.z);
    char what[256];
    snprintf(what, sizeof what, "kernel %s (%s:%d)", where.kernel, where.file, where.line);
    const std::string name(where.kernel, strcspn(where.kernel, "<")); /* without template arguments */
    enqueue(stream, node{what, name, [launch]() {
                             block.threads = (int)(launch->block.x * launch->block.y * launch->block.z);
                             run_kernel(*launch);
                         }});
}

cudaError_t enqueue_host_work(cudaStream_t stream, const char *name, std::function<void()> work) {
    enter(name);
    return enqueue(stream, node{name, name, std::move(work)});
}

void check_device_range(const char *call, const char *what, const void *ptr, size_t bytes) {
    if (bytes) check_range(call, what, ptr, bytes, true);
}

void check_disjoint(const char *call, const void *a, size_t a_bytes, const void *b, size_t b_bytes) {
    if ((const char *)a < (const char *)b + b_bytes && (const char *)b < (const char *)a + a_bytes)
        die("%s: an output range [%p, +%zu) overlaps an input range [%p, +%zu)", call, b, b_bytes, a, a_bytes);
}

} // namespace egrc_emu

/* ---------------- the runtime API ---------------- */

using namespace egrc_emu;

extern "C" {

const char *cudaGetErrorName(cudaError_t error) {
    switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureUnmatched: return "cudaErrorStreamCaptureUnmatched";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t error) {
    switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
        return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched: return "capture was not initiated in this stream";
    case cudaErrorStreamCaptureImplicit:
        return "operation would make the legacy stream depend on a capturing blocking stream";
    }
    return "unknown error";
}

cudaError_t cudaGetLastError(void) {
    if (sticky_error != cudaSuccess) return sticky_error; /* a lost context is never cleared */
    const cudaError_t error = last_error;
    last_error = cudaSuccess;
    return error;
}

cudaError_t cudaPeekAtLastError(void) { return sticky_error != cudaSuccess ? sticky_error : last_error; }

cudaError_t cudaGetDeviceCount(int *count) {
    enter("cudaGetDeviceCount");
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *version) {
    *version = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *version) {
    *version = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    enter("cudaSetDevice");
    return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDevice(int *device) {
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
    enter("cudaGetDeviceProperties");
    if (device != 0) return fail(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "egrc CPU emulation of the GPU kernels");
    prop->totalGlobalMem = total_memory;
    prop->sharedMemPerBlock = default_shared_bytes;
    prop->sharedMemPerBlockOptin = shared_optin;
    prop->sharedMemPerMultiprocessor = shared_optin + 1024;
    prop->regsPerBlock = 65536;
    prop->warpSize = warp_lanes;
    prop->maxThreadsPerBlock = max_block_threads;
    prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 0x7fffffff;
    prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
    prop->multiProcessorCount = 1; /* blocks run one at a time */
    prop->major = 9;               /* the limits above are sm_90's */
    prop->minor = 0;
    prop->memoryPoolsSupported = 1;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device) {
    struct cudaDeviceProp prop;
    const cudaError_t status = cudaGetDeviceProperties(&prop, device);
    if (status != cudaSuccess) return status;
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = prop.maxThreadsPerBlock; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = (int)prop.sharedMemPerBlock; break;
    case cudaDevAttrWarpSize: *value = prop.warpSize; break;
    case cudaDevAttrMultiProcessorCount: *value = prop.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *value = prop.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = prop.minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = (int)prop.sharedMemPerBlockOptin; break;
    case cudaDevAttrMemoryPoolsSupported: *value = prop.memoryPoolsSupported; break;
    default: return fail(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    enter("cudaDeviceSynchronize");
    const cudaError_t status = refuse_if_capturing("cudaDeviceSynchronize", false);
    return status != cudaSuccess ? status : synchronise();
}

cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value) {
    enter("cudaFuncSetAttribute");
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || (size_t)value > shared_optin)
        return fail(cudaErrorInvalidValue);
    dynamic_shared_optins[func] = value;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **ptr, size_t bytes) {
    enter("cudaMalloc");
    *ptr = nullptr;
    if (sticky_error != cudaSuccess) return fail(sticky_error);
    cudaError_t status = refuse_if_capturing("cudaMalloc", true);
    if (status != cudaSuccess) return status;
    if (injected("cudaMalloc")) return fail(cudaErrorMemoryAllocation);
    if (!bytes) return cudaSuccess;
    *ptr = map_block(bytes, memory_kind::device);
    return *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFree(void *ptr) {
    enter("cudaFree");
    if (sticky_error != cudaSuccess) return fail(sticky_error);
    const cudaError_t status = refuse_if_capturing("cudaFree", false);
    if (status != cudaSuccess) return status;
    return unmap_block("cudaFree", ptr, memory_kind::device);
}

cudaError_t cudaMallocAsync(void **ptr, size_t bytes, cudaStream_t stream) {
    enter("cudaMallocAsync");
    *ptr = nullptr;
    if (sticky_error != cudaSuccess) return fail(sticky_error);
    stream_state *s = stream_of(stream);
    if (!s) return fail(cudaErrorInvalidResourceHandle);
    if (s->capturing) {
        if (!s->invalidated)
            invalidate(s, "cudaMallocAsync",
                       "CUDA would record a memory node, which the emulator does not implement: allocate before "
                       "the capture, or extend backends/gpuemu/runtime.cpp");
        return fail(cudaErrorStreamCaptureUnsupported);
    }
    if (injected("cudaMallocAsync")) return fail(cudaErrorMemoryAllocation);
    if (!bytes) return cudaSuccess;
    *ptr = map_block(bytes, memory_kind::device);
    return *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeAsync(void *ptr, cudaStream_t stream) {
    enter("cudaFreeAsync");
    if (sticky_error != cudaSuccess) return fail(sticky_error);
    stream_state *s = stream_of(stream);
    if (!s) return fail(cudaErrorInvalidResourceHandle);
    if (s->capturing) {
        if (!s->invalidated)
            invalidate(s, "cudaFreeAsync",
                       "CUDA would record a memory node, which the emulator does not implement: free after the "
                       "capture, or extend backends/gpuemu/runtime.cpp");
        return fail(cudaErrorStreamCaptureUnsupported);
    }
    return unmap_block("cudaFreeAsync", ptr, memory_kind::device);
}

cudaError_t cudaMallocHost(void **ptr, size_t bytes) {
    enter("cudaMallocHost");
    *ptr = nullptr;
    const cudaError_t status = refuse_if_capturing("cudaMallocHost", true);
    if (status != cudaSuccess) return status;
    *ptr = map_block(bytes ? bytes : 1, memory_kind::pinned_host);
    return *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaHostAlloc(void **ptr, size_t bytes, unsigned int flags) {
    (void)flags;
    return cudaMallocHost(ptr, bytes);
}

cudaError_t cudaFreeHost(void *ptr) {
    enter("cudaFreeHost");
    const cudaError_t status = refuse_if_capturing("cudaFreeHost", false);
    if (status != cudaSuccess) return status;
    return unmap_block("cudaFreeHost", ptr, memory_kind::pinned_host);
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    enter("cudaMemGetInfo");
    *total_bytes = total_memory;
    *free_bytes = device_in_use < total_memory ? total_memory - device_in_use : 0;
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind) {
    enter("cudaMemcpy");
    const cudaError_t status = refuse_if_capturing("cudaMemcpy (synchronous)", true);
    if (status != cudaSuccess) return status;
    const cudaError_t copied = copy("cudaMemcpy", dst, src, bytes, kind, 0);
    return copied != cudaSuccess ? copied : synchronise();
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                            cudaStream_t stream) {
    enter("cudaMemcpyAsync");
    return copy("cudaMemcpyAsync", dst, src, bytes, kind, stream);
}

cudaError_t cudaMemset(void *ptr, int value, size_t bytes) {
    enter("cudaMemset");
    const cudaError_t status = refuse_if_capturing("cudaMemset (synchronous)", true);
    if (status != cudaSuccess) return status;
    const cudaError_t done = set("cudaMemset", ptr, value, bytes, 0);
    return done != cudaSuccess ? done : synchronise();
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t bytes, cudaStream_t stream) {
    enter("cudaMemsetAsync");
    return set("cudaMemsetAsync", ptr, value, bytes, stream);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags) {
    enter("cudaStreamCreateWithFlags");
    stream_state *s = new stream_state;
    s->flags = flags;
    streams.insert(s);
    *stream = reinterpret_cast<cudaStream_t>(s);
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    enter("cudaStreamDestroy");
    stream_state *s = stream_of(stream);
    if (!s || s == &legacy_stream) return fail(cudaErrorInvalidResourceHandle);
    if (s->capturing) {
        report("cudaStreamDestroy(%p): the stream is still capturing (no cudaStreamEndCapture)", (void *)stream);
        return fail(cudaErrorStreamCaptureUnmatched);
    }
    streams.erase(s);
    delete s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    enter("cudaStreamSynchronize");
    stream_state *s = stream_of(stream);
    if (!s) return fail(cudaErrorInvalidResourceHandle);
    if (s->capturing) {
        if (!s->invalidated) invalidate(s, "cudaStreamSynchronize", "a capturing stream cannot be synchronized");
        return fail(cudaErrorStreamCaptureUnsupported);
    }
    const cudaError_t status = refuse_if_capturing("cudaStreamSynchronize", true);
    return status != cudaSuccess ? status : synchronise();
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
    enter("cudaStreamQuery");
    stream_state *s = stream_of(stream);
    if (!s) return fail(cudaErrorInvalidResourceHandle);
    if (s->capturing) {
        if (!s->invalidated) invalidate(s, "cudaStreamQuery", "a capturing stream cannot be queried");
        return fail(cudaErrorStreamCaptureUnsupported);
    }
    return synchronise(); /* the work ran at its call, so a query sees what a wait would */
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
    enter("cudaStreamWaitEvent");
    (void)flags;
    if (!stream_of(stream) || !events.count(reinterpret_cast<event_state *>(event)))
        return fail(cudaErrorInvalidResourceHandle);
    return cudaSuccess; /* work ran in issue order already */
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
    enter("cudaEventCreateWithFlags");
    event_state *e = new event_state;
    e->flags = flags;
    events.insert(e);
    *event = reinterpret_cast<cudaEvent_t>(e);
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    enter("cudaEventDestroy");
    event_state *e = reinterpret_cast<event_state *>(event);
    if (!events.erase(e)) return fail(cudaErrorInvalidResourceHandle);
    delete e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    enter("cudaEventRecord");
    event_state *e = reinterpret_cast<event_state *>(event);
    if (!events.count(e)) return fail(cudaErrorInvalidResourceHandle);
    return enqueue(stream, node{"cudaEventRecord", "cudaEventRecord", [e]() {
                                    if (!events.count(e)) die("a graph records an event that was destroyed");
                                    e->recorded = true;
                                    clock_gettime(CLOCK_MONOTONIC, &e->when);
                                }});
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
    enter("cudaEventQuery");
    if (!events.count(reinterpret_cast<event_state *>(event))) return fail(cudaErrorInvalidResourceHandle);
    return refuse_if_capturing("cudaEventQuery", true);
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    enter("cudaEventSynchronize");
    if (!events.count(reinterpret_cast<event_state *>(event))) return fail(cudaErrorInvalidResourceHandle);
    const cudaError_t status = refuse_if_capturing("cudaEventSynchronize", true);
    return status != cudaSuccess ? status : synchronise();
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    enter("cudaEventElapsedTime");
    const event_state *a = reinterpret_cast<event_state *>(start), *b = reinterpret_cast<event_state *>(end);
    if (!events.count(const_cast<event_state *>(a)) || !events.count(const_cast<event_state *>(b)))
        return fail(cudaErrorInvalidResourceHandle);
    if (!a->recorded || !b->recorded || (a->flags & cudaEventDisableTiming) || (b->flags & cudaEventDisableTiming))
        return fail(cudaErrorInvalidResourceHandle);
    *ms = (float)((double)(b->when.tv_sec - a->when.tv_sec) * 1e3 + (double)(b->when.tv_nsec - a->when.tv_nsec) / 1e6);
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode) {
    enter("cudaStreamBeginCapture");
    stream_state *s = stream_of(stream);
    if (!s) return fail(cudaErrorInvalidResourceHandle);
    if (s == &legacy_stream) {
        report("cudaStreamBeginCapture: the legacy default stream cannot be captured");
        return fail(cudaErrorStreamCaptureUnsupported);
    }
    if (s->capturing) {
        report("cudaStreamBeginCapture(%p): the stream is capturing already", (void *)stream);
        return fail(cudaErrorIllegalState);
    }
    if (mode < cudaStreamCaptureModeGlobal || mode > cudaStreamCaptureModeRelaxed) return fail(cudaErrorInvalidValue);
    s->capturing = true;
    s->invalidated = false;
    s->mode = mode;
    s->captured.clear();
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
    enter("cudaStreamEndCapture");
    *graph = nullptr;
    stream_state *s = stream_of(stream);
    if (!s) return fail(cudaErrorInvalidResourceHandle);
    if (!s->capturing) {
        report("cudaStreamEndCapture(%p): the stream is not capturing", (void *)stream);
        return fail(cudaErrorIllegalState);
    }
    s->capturing = false;
    if (s->invalidated) {
        s->invalidated = false;
        return fail(cudaErrorStreamCaptureInvalidated);
    }
    graph_state *g = new graph_state;
    g->nodes = std::move(s->captured);
    s->captured.clear();
    graphs.insert(g);
    *graph = reinterpret_cast<cudaGraph_t>(g);
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus *status) {
    enter("cudaStreamIsCapturing");
    stream_state *s = stream_of(stream);
    if (!s) return fail(cudaErrorInvalidResourceHandle);
    *status = !s->capturing   ? cudaStreamCaptureStatusNone
              : s->invalidated ? cudaStreamCaptureStatusInvalidated
                               : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
    enter("cudaGraphInstantiate");
    (void)flags;
    graph_state *g = reinterpret_cast<graph_state *>(graph);
    if (!graphs.count(g)) return fail(cudaErrorInvalidValue);
    graph_exec_state *e = new graph_exec_state;
    e->nodes = std::make_shared<const std::vector<node>>(g->nodes);
    graph_execs.insert(e);
    *exec = reinterpret_cast<cudaGraphExec_t>(e);
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
    return cudaGraphInstantiate(exec, graph, flags);
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    enter("cudaGraphLaunch");
    graph_exec_state *e = reinterpret_cast<graph_exec_state *>(exec);
    if (!graph_execs.count(e)) return fail(cudaErrorInvalidResourceHandle);
    std::shared_ptr<const std::vector<node>> nodes = e->nodes;
    return enqueue(stream, node{"cudaGraphLaunch", "cudaGraphLaunch", [nodes]() { replay(*nodes); }});
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    enter("cudaGraphExecDestroy");
    graph_exec_state *e = reinterpret_cast<graph_exec_state *>(exec);
    if (!graph_execs.erase(e)) return fail(cudaErrorInvalidResourceHandle);
    delete e;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    enter("cudaGraphDestroy");
    graph_state *g = reinterpret_cast<graph_state *>(graph);
    if (!graphs.erase(g)) return fail(cudaErrorInvalidResourceHandle);
    delete g;
    return cudaSuccess;
}

} // extern "C"
