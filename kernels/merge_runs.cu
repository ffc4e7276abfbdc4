// One merge pass of the multi-pass sort for rows wider than a tile (sort_rows.cu): within each
// row, sorted runs of `width` values are merged pairwise into runs of 2·width, from `src` into
// `dst`. Each value finds its place by a binary search in the other run of its pair: a value of
// the left run goes before equal values of the right one, so the merge is stable and ties keep
// feature order.
#include "common.cuh"

namespace aldfit {

// First position in [lo, hi) whose key is >= key (or > key with `upper`).
__device__ __forceinline__ unsigned search(const float* row, unsigned lo, unsigned hi,
                                           unsigned key, bool upper) {
    while (lo < hi) {
        const unsigned mid = lo + (hi - lo) / 2;
        const unsigned k = to_key(__float_as_uint(row[mid]));
        if (k < key || (upper && k == key)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

}  // namespace aldfit

extern "C" __global__ void merge_runs(const float* __restrict__ src_values,
                                      const unsigned* __restrict__ src_indices,
                                      float* __restrict__ dst_values,
                                      unsigned* __restrict__ dst_indices, unsigned rows,
                                      unsigned cols, unsigned width, unsigned with_indices) {
    const unsigned long long p = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= (unsigned long long)rows * cols) {
        return;
    }
    const unsigned long long row = p / cols;
    const unsigned pos = (unsigned)(p - row * cols);
    const float* r = src_values + row * cols;
    const unsigned run = pos / width;
    const unsigned start = run * width;
    const unsigned pair = (run & ~1u) * width;
    const float v = r[pos];
    const unsigned key = aldfit::to_key(__float_as_uint(v));
    unsigned out;
    if ((run & 1u) == 0) {
        const unsigned lo = min(pair + width, cols);
        const unsigned hi = min(pair + 2 * width, cols);
        out = pos + (aldfit::search(r, lo, hi, key, false) - lo);
    } else {
        out = pair + (pos - start) + (aldfit::search(r, pair, start, key, true) - pair);
    }
    dst_values[row * cols + out] = v;
    if (with_indices) {
        dst_indices[row * cols + out] = src_indices[p];
    }
}
