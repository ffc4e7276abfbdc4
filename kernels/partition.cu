// Partition points (docs/DESIGN.md 2.5): per segment of a sorted row, the offset of the first value
// >= pivot (or > pivot with `strict`); one thread per segment, a binary search.
#include "common.cuh"

extern "C" __global__ void partition(const float* __restrict__ values,
                                     const aldfit::Seg* __restrict__ segs, unsigned count,
                                     unsigned cols, const float* __restrict__ pivots,
                                     unsigned strict, unsigned* __restrict__ out) {
    const unsigned s = blockIdx.x * blockDim.x + threadIdx.x;
    if (s >= count) {
        return;
    }
    const aldfit::Seg g = segs[s];
    const float* row = values + (unsigned long long)g.row * cols;
    const float pivot = pivots[s];
    unsigned lo = g.lo, hi = g.hi;
    while (lo < hi) {
        const unsigned mid = lo + (hi - lo) / 2;
        const float x = row[mid];
        if (x < pivot || (strict && x == pivot)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    out[s] = lo;
}
