/* Finding a backend by name: "cpu" is built in; any other name is a plugin,
 * libegrc-backend-NAME.so, looked up next to the egrc executable, in
 * ../lib/egrc relative to it (an installed tree), then on the loader's path. */
#include "backend.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What `egrc backends` lists. Level Zero (ze) joins when that backend exists;
 * until then --backend ze is still answered with missing_plugin_hint's line. */
static const char *const known_backends[] = {"cpu", "cuda", "hip", "gpuemu", NULL};

/* What to do when a known backend's plugin is missing. */
static const char *missing_plugin_hint(const char *name) {
    if (strcmp(name, "cuda") == 0)
        return "build egrc where the CUDA toolkit (nvcc, cuBLASLt) is installed, or with -DEGRC_CUDA=ON to be told "
               "what is missing";
    if (strcmp(name, "hip") == 0)
        return "build egrc where hipcc, the HIP runtime and rocPRIM are installed (Debian 12: apt-get install hipcc "
               "libamdhip64-dev librocprim-dev), or with -DEGRC_HIP=ON to be told what is missing";
    if (strcmp(name, "gpuemu") == 0)
        return "build egrc with a C++ compiler and -DEGRC_GPU_EMU=ON (sanitizer builds leave it out)";
    if (strcmp(name, "ze") == 0)
        return "egrc has no oneAPI Level Zero backend yet: Intel GPUs are not supported";
    return "egrc has no backend of that name (known: cpu, cuda, hip, gpuemu); a third-party plugin goes next to "
           "the egrc executable";
}

const char *const *egrc_backend_known_names(void) { return known_backends; }

static int valid_backend_name(const char *name) {
    if (!*name || strlen(name) > 32) return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return 0;
    return 1;
}

/* Folder holding the running executable, or "" if it cannot be found. */
static void executable_dir(char *dir, size_t size) {
    char path[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", path, sizeof path - 1);
    dir[0] = '\0';
    if (len <= 0) return;
    path[len] = '\0';
    char *slash = strrchr(path, '/');
    if (slash) *slash = '\0';
    snprintf(dir, size, "%s", path);
}

/* Opens the plugin from the first candidate path that loads. A file that
 * exists but fails to load (a missing vendor library, say) is reported with
 * the loader's reason in *load_error rather than as "not found". */
static void *open_plugin(const char *name, char *tried, size_t tried_size, char *load_error, size_t error_size) {
    char file[64], dir[PATH_MAX], path[PATH_MAX + 96];
    snprintf(file, sizeof file, "libegrc-backend-%s.so", name);
    executable_dir(dir, sizeof dir);
    const char *candidates[3] = {NULL, NULL, file};
    char local[PATH_MAX + 96], installed[PATH_MAX + 96];
    if (dir[0]) {
        snprintf(local, sizeof local, "%s/%s", dir, file);
        snprintf(installed, sizeof installed, "%s/../lib/egrc/%s", dir, file);
        candidates[0] = local;
        candidates[1] = installed;
    }
    tried[0] = '\0';
    for (int i = 0; i < 3; i++) {
        if (!candidates[i]) continue;
        snprintf(path, sizeof path, "%s", candidates[i]);
        void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (handle) return handle;
        const char *why = dlerror();
        if (why && !load_error[0] && access(path, F_OK) == 0) snprintf(load_error, error_size, "%s", why);
        size_t used = strlen(tried);
        snprintf(tried + used, tried_size - used, "%s%s", used ? ", " : "", path);
    }
    return NULL;
}

/* The first op the contract requires that the table leaves NULL, or NULL
 * when all are set. The OPTIONAL ops (sample, the graph ops) are not here. */
static const char *missing_required_op(const egrc_backend_ops *ops) {
#define REQUIRED(op) {#op, ops->op != NULL}
    const struct {
        const char *name;
        int set;
    } required[] = {
        REQUIRED(name), REQUIRED(device_count), REQUIRED(device_info), REQUIRED(open), REQUIRED(close),
        REQUIRED(supports), REQUIRED(alloc), REQUIRED(free), REQUIRED(upload), REQUIRED(download), REQUIRED(zero),
        REQUIRED(synchronize), REQUIRED(latched_error), REQUIRED(to_act), REQUIRED(embedding_forward),
        REQUIRED(embedding_backward), REQUIRED(layernorm_forward), REQUIRED(layernorm_backward),
        REQUIRED(rmsnorm_forward), REQUIRED(rmsnorm_backward), REQUIRED(matmul_forward), REQUIRED(matmul_backward),
        REQUIRED(rope_forward), REQUIRED(rope_backward), REQUIRED(attention_scratch_bytes),
        REQUIRED(attention_forward), REQUIRED(attention_backward), REQUIRED(gelu_forward), REQUIRED(gelu_backward),
        REQUIRED(swiglu_forward), REQUIRED(swiglu_backward), REQUIRED(add), REQUIRED(cross_entropy_forward),
        REQUIRED(cross_entropy_backward), REQUIRED(kv_cache_write), REQUIRED(attention_decode), REQUIRED(to_f32),
        REQUIRED(sum_squares), REQUIRED(adamw),
    };
#undef REQUIRED
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!required[i].set) return required[i].name;
    return NULL;
}

/* Refuses a plugin's table that breaks the contract's shape: another ABI,
 * a required op missing, or some but not all of the graph ops. The ABI is
 * checked first: a table of another version may be shorter than this one. */
static int check_plugin_ops(const char *name, const egrc_backend_ops *ops, egrc_error *err) {
    if (!ops || ops->abi_version != EGRC_BACKEND_ABI_VERSION)
        return egrc_fail(err, "backend '%s': plugin was built for backend ABI %d, this egrc needs %d; rebuild it",
                         name, ops ? ops->abi_version : -1, EGRC_BACKEND_ABI_VERSION);
    const char *missing = missing_required_op(ops);
    if (missing)
        return egrc_fail(err, "backend '%s': plugin leaves the required op '%s' unset (backend.h lists what a "
                         "plugin must set); it is broken", name, missing);
    const int graph_ops = !!ops->graph_begin + !!ops->graph_end + !!ops->graph_launch + !!ops->graph_free;
    if (graph_ops != 0 && graph_ops != 4)
        return egrc_fail(err, "backend '%s': plugin sets %d of the 4 graph ops (all or none); it is broken", name,
                         graph_ops);
    return 0;
}

const egrc_backend_ops *egrc_backend_find(const char *name, egrc_error *err) {
    if (strcmp(name, "cpu") == 0) return egrc_cpu_backend_ops();
    if (!valid_backend_name(name)) {
        egrc_fail(err, "backend '%s': not a valid backend name (known: cpu, cuda, hip, gpuemu)", name);
        return NULL;
    }
    char tried[3 * (PATH_MAX + 96)], load_error[512] = "";
    void *handle = open_plugin(name, tried, sizeof tried, load_error, sizeof load_error);
    if (!handle && load_error[0]) {
        egrc_fail(err, "backend '%s': libegrc-backend-%s.so exists but does not load: %s (install the vendor "
                  "runtime it needs, or use --backend cpu)", name, name, load_error);
        return NULL;
    }
    if (!handle) {
        egrc_fail(err, "backend '%s': plugin libegrc-backend-%s.so not found (looked for %s): %s; or use --backend cpu",
                  name, name, tried, missing_plugin_hint(name));
        return NULL;
    }
    typedef const egrc_backend_ops *(*entry_fn)(void);
    entry_fn entry;
    void *symbol = dlsym(handle, EGRC_BACKEND_ENTRY_SYMBOL);
    memcpy(&entry, &symbol, sizeof entry); /* object-to-function pointer, as dlsym requires */
    if (!symbol) {
        egrc_fail(err, "backend '%s': libegrc-backend-%s.so has no %s symbol; it is not an egrc plugin", name, name,
                  EGRC_BACKEND_ENTRY_SYMBOL);
        dlclose(handle);
        return NULL;
    }
    const egrc_backend_ops *ops = entry();
    if (check_plugin_ops(name, ops, err)) {
        dlclose(handle);
        return NULL;
    }
    /* The handle stays open for the life of the process: ops point into it. */
    return ops;
}

egrc_backend *egrc_backend_open(const char *name, int device, egrc_error *err) {
    const egrc_backend_ops *ops = egrc_backend_find(name, err);
    if (!ops) return NULL;
    int count = ops->device_count(err);
    if (count < 0) {
        egrc_error_prefix(err, "backend '%s'", name);
        return NULL;
    }
    if (count == 0) {
        egrc_fail(err, "backend '%s': no device found; check the driver (e.g. nvidia-smi / rocm-smi), or use --backend cpu",
                  name);
        return NULL;
    }
    if (device < 0 || device >= count) {
        egrc_fail(err, "backend '%s': device %d does not exist (%d device%s: 0..%d)", name, device, count,
                  count == 1 ? "" : "s", count - 1);
        return NULL;
    }
    egrc_backend *be = ops->open(device, err);
    if (!be) egrc_error_prefix(err, "backend '%s' device %d", name, device);
    return be;
}

void egrc_backend_close(egrc_backend *be) {
    if (be) be->ops->close(be);
}

int egrc_backend_synchronize(egrc_backend *be, egrc_error *err) {
    be->ops->synchronize(be);
    return be->ops->latched_error(be, err);
}

int egrc_backend_download(egrc_backend *be, void *dst_host, const void *src, size_t bytes, egrc_error *err) {
    be->ops->download(be, dst_host, src, bytes);
    return be->ops->latched_error(be, err);
}
