/* cub::DeviceRadixSort::SortPairs for the CPU emulation (backends/gpuemu):
 * the same contract (a size query when temp is null, then a stable sort of
 * (key, value) pairs by the key bits [begin_bit, end_bit), signed keys in
 * numeric order), run as one piece of work on the stream instead of CUB's
 * kernels. It checks what CUB requires of its caller: temp storage at least
 * the queried size, every range in device memory, outputs not overlapping
 * inputs. The temp storage is scribbled over, as CUB's use of it would. */
#ifndef EGRC_GPUEMU_CUB_DEVICE_RADIX_SORT_CUH
#define EGRC_GPUEMU_CUB_DEVICE_RADIX_SORT_CUH

#include <stddef.h>
#include <string.h>

#include <algorithm>
#include <numeric>
#include <type_traits>
#include <vector>

#include "../../cuda_runtime.h"

namespace cub {

struct DeviceRadixSort {
    /* What the size query reports: room for a copy of the keys and values
     * plus a histogram, about what CUB asks for. */
    template <typename Key, typename Value>
    static size_t temp_bytes(long long count) {
        return 4096 + (size_t)count * (sizeof(Key) + sizeof(Value));
    }

    template <typename Key, typename Value, typename Count>
    static cudaError_t SortPairs(void *temp, size_t &temp_size, const Key *keys_in, Key *keys_out,
                                 const Value *values_in, Value *values_out, Count count, int begin_bit = 0,
                                 int end_bit = (int)sizeof(Key) * 8, cudaStream_t stream = 0) {
        static_assert(std::is_integral<Key>::value, "the emulated sort takes integer keys");
        const long long n = (long long)count;
        const size_t need = temp_bytes<Key, Value>(n);
        if (!temp) {
            temp_size = need;
            return cudaSuccess;
        }
        if (temp_size < need || n < 0 || begin_bit < 0 || end_bit > (int)sizeof(Key) * 8 || begin_bit >= end_bit)
            return cudaErrorInvalidValue;
        const char *call = "cub::DeviceRadixSort::SortPairs";
        return egrc_emu::enqueue_host_work(stream, call, [=]() {
            const size_t key_bytes = (size_t)n * sizeof(Key), value_bytes = (size_t)n * sizeof(Value);
            egrc_emu::check_device_range(call, "temp storage", temp, temp_size);
            egrc_emu::check_device_range(call, "keys in", keys_in, key_bytes);
            egrc_emu::check_device_range(call, "keys out", keys_out, key_bytes);
            egrc_emu::check_device_range(call, "values in", values_in, value_bytes);
            egrc_emu::check_device_range(call, "values out", values_out, value_bytes);
            const void *inputs[2] = {keys_in, values_in};
            const size_t input_bytes[2] = {key_bytes, value_bytes};
            const void *outputs[2] = {keys_out, values_out};
            const size_t output_bytes[2] = {key_bytes, value_bytes};
            for (int i = 0; i < 2; i++)
                for (int o = 0; o < 2; o++)
                    egrc_emu::check_disjoint(call, inputs[i], input_bytes[i], outputs[o], output_bytes[o]);
            /* Radix order: the key's bits with the sign bit flipped for signed
             * keys, then the bits [begin_bit, end_bit). */
            typedef typename std::make_unsigned<Key>::type Bits;
            auto radix = [=](Key key) {
                Bits bits = (Bits)key;
                if (std::is_signed<Key>::value) bits ^= (Bits)((Bits)1 << (sizeof(Key) * 8 - 1));
                const int width = end_bit - begin_bit;
                const Bits mask = width >= (int)sizeof(Bits) * 8 ? (Bits)~(Bits)0 : (Bits)(((Bits)1 << width) - 1);
                return (Bits)((bits >> begin_bit) & mask);
            };
            std::vector<long long> order((size_t)n);
            std::iota(order.begin(), order.end(), 0LL);
            std::stable_sort(order.begin(), order.end(),
                             [&](long long a, long long b) { return radix(keys_in[a]) < radix(keys_in[b]); });
            std::vector<Key> keys((size_t)n);
            std::vector<Value> values((size_t)n);
            for (long long i = 0; i < n; i++) {
                keys[(size_t)i] = keys_in[order[(size_t)i]];
                values[(size_t)i] = values_in[order[(size_t)i]];
            }
            memset(temp, 0xff, temp_size);
            std::copy(keys.begin(), keys.end(), keys_out);
            std::copy(values.begin(), values.end(), values_out);
        });
    }
};

} // namespace cub

#endif
