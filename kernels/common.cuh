// Shared by every aldfit CUDA kernel (DESIGN.md section 3). The host compiles all kernels as one
// NVRTC program with this header in front; nvcc finds it with -I kernels.
//
// A segment is `(row, lo, hi)` of the resident chunk of sorted rows (DESIGN.md 2.5, key fact).
// Segment kernels run one block of SEG_THREADS per segment and carry their sums in f64: on a GPU
// with fast f64 that is cheaper than the double-f32 tricks the WGSL kernels need.
#pragma once

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

namespace aldfit {

constexpr int SEG_THREADS = 256;
constexpr unsigned NONE = 0xffffffffu;

struct Seg {
    unsigned row;
    unsigned lo;
    unsigned hi;
    unsigned pad;
};

// f32 bit patterns mapped to u32 keys that order like the values, -0.0 before +0.0: the order of
// the CPU backend's radix sort, so the sorted rows (and their feature indices) agree bitwise.
__device__ __forceinline__ unsigned to_key(unsigned bits) {
    return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

__device__ __forceinline__ unsigned from_key(unsigned key) {
    return (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
}

// Every segment kernel takes the same arguments, so that the host launches them all one way:
// (values, segs, count, cols, flag, params, out). `flag` and `params` (per-segment f64) mean what
// each kernel says; a kernel that needs neither ignores them.

// This thread's contiguous run [first, last) of a segment of n values.
__device__ __forceinline__ void run_of(unsigned n, unsigned& first, unsigned& last) {
    const unsigned per = (n + SEG_THREADS - 1) / SEG_THREADS;
    first = min(threadIdx.x * per, n);
    last = min(first + per, n);
}

// The ALD CDF (DESIGN.md 2.3) with its constants hoisted, as `Cdf` in src/ald.rs.
struct Cdf {
    double loc, k_over_s, inv_ks, upper, lower;

    __device__ Cdf(double loc_, double scale, double kappa) {
        const double k2 = kappa * kappa;
        loc = loc_;
        k_over_s = kappa / scale;
        inv_ks = 1.0 / (kappa * scale);
        upper = 1.0 / (1.0 + k2);
        lower = k2 / (1.0 + k2);
    }

    __device__ double operator()(double x) const {
        const double d = x - loc;
        return d >= 0.0 ? 1.0 - exp(-k_over_s * d) * upper : lower * exp(d * inv_ks);
    }
};

// KS terms of one thread's run (DESIGN.md 2.3): max over j of max((j+1)/n − F, F − j/n).
__device__ __forceinline__ double ks_run(const float* x, unsigned n, unsigned first,
                                         unsigned last, const Cdf& cdf) {
    const double inv_n = 1.0 / (double)n;
    double d = 0.0;
    for (unsigned j = first; j < last; j++) {
        const double f = cdf((double)x[j]);
        d = fmax(d, fmax((double)(j + 1) * inv_n - f, f - (double)j * inv_n));
    }
    return d;
}

struct MaxOp {
    __device__ __forceinline__ double operator()(double a, double b) const { return fmax(a, b); }
};

}  // namespace aldfit
