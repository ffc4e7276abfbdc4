// Shared by every aldfit CUDA kernel (docs/DESIGN.md section 3). The host compiles all kernels as one
// NVRTC program with this header in front; nvcc finds it with -I kernels.
//
// A segment is `(row, lo, hi)` of the resident chunk of sorted rows (docs/DESIGN.md 2.5, key fact).
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

// Per-segment inputs and outputs, field for field as src/backend/abi.rs declares them (checked by
// tests/abi.rs); the host finishes each output in f64 beside its Rust declaration.

// The law ks.cu measures a segment against.
struct KsLaw {
    double mu;
    double s;
    double kappa;
};

// loglik.cu's two laws: v(x) = −κ/s·(x − μ)⁺ − (μ − x)⁺/(κs) + ((x − m)/σ)²/2.
struct LoglikLaw {
    double mu;
    double k_over_s;
    double inv_ks;
    double m;
    double inv_sd;
};

// segment_stats.cu: j* (−1: no interior candidate), A*, B*, the best objective, boundary (0/1),
// x(j*), mean, variance, median, mean |x − median|, KS (NaN unless asked for), n, min, max.
struct SegmentStatsOut {
    double j;
    double a;
    double b;
    double objective;
    double boundary;
    double loc;
    double mean;
    double var;
    double median;
    double mad;
    double ks;
    double n;
    double min;
    double max;
};

// study_line.cu: Σd, Σi·d, Σd² of d = t − t0, and t0.
struct LineSums {
    double sum_d;
    double sum_id;
    double sum_dd;
    double t0;
};

// loglik.cu: Σv, Σv².
struct LoglikSums {
    double sum_v;
    double sum_vv;
};

// nll_grad.cu: Σ(x − μ)⁺, Σ(μ − x)⁺, and how many values lie above and below μ.
struct TailSumsOut {
    double above;
    double below;
    double n_above;
    double n_below;
};

// f32 bit patterns mapped to u32 keys that order like the values, -0.0 before +0.0: the order of
// the CPU backend's radix sort, so the sorted rows (and their feature indices) agree bitwise.
__device__ __forceinline__ unsigned to_key(unsigned bits) {
    return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

__device__ __forceinline__ unsigned from_key(unsigned key) {
    return (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
}

// Every segment kernel takes its arguments in the same order, so that the host launches them all
// one way: (values, segs, count, cols, flag, params, out). `flag` means what each kernel says;
// `params` (one input struct per segment, above) and `out` (one output struct per segment) are
// each kernel's own; a kernel that needs no flag or params ignores them.

// This thread's contiguous run [first, last) of a segment of n values.
__device__ __forceinline__ void run_of(unsigned n, unsigned& first, unsigned& last) {
    const unsigned per = (n + SEG_THREADS - 1) / SEG_THREADS;
    first = min(threadIdx.x * per, n);
    last = min(first + per, n);
}

// The ALD CDF (docs/DESIGN.md 2.3) with its constants hoisted, as `Cdf` in src/ald.rs.
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

// KS terms of one thread's run (docs/DESIGN.md 2.3): max over j of max((j+1)/n − F, F − j/n).
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

// ---- Philox4x32-10 and the replicate samplers (docs/DESIGN.md 2.6; src/philox.rs is the reference,
// shaders/philox.wgsl the WGSL twin). Products and sums are written with _rn intrinsics so that
// no multiply-add is contracted: the values then differ from the CPU's only where logf, cosf and
// sinf do.

constexpr unsigned PHILOX_M0 = 0xD2511F53u;
constexpr unsigned PHILOX_M1 = 0xCD9E8D57u;
constexpr unsigned PHILOX_W0 = 0x9E3779B9u;
constexpr unsigned PHILOX_W1 = 0xBB67AE85u;
// The counter's fourth word of an ALD value's second exponential (philox::SECOND_BLOCK).
constexpr unsigned SECOND_BLOCK = 256u;
constexpr float TWO_PI = 6.2831855f;

__device__ __forceinline__ uint4 philox4x32_10(uint4 c, unsigned k0, unsigned k1) {
#pragma unroll
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        const unsigned hi0 = __umulhi(PHILOX_M0, c.x);
        const unsigned lo0 = PHILOX_M0 * c.x;
        const unsigned hi1 = __umulhi(PHILOX_M1, c.z);
        const unsigned lo1 = PHILOX_M1 * c.z;
        c = make_uint4(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
    }
    return c;
}

// ((u >> 8) + 0.5)·2⁻²⁴ in f32: in (0, 1].
__device__ __forceinline__ float uniform01(unsigned u) {
    return __fmul_rn(__fadd_rn((float)(u >> 8), 0.5f), 5.9604644775390625e-8f);
}

// One replicate row: model 0 Gaussian (m, σ), 1 ALD (μ, s, κ), 2 Laplace (the ALD with κ = 1).
struct Replicate {
    unsigned cls;
    unsigned replicate;
    unsigned model;
    unsigned pad;
    float p[4];
};

// μ + s(E₁/κ − κE₂), E = −ln U.
__device__ __forceinline__ float ald_value(float loc, float scale, float kappa, float u1,
                                           float u2) {
    const float e1 = -logf(u1);
    const float e2 = -logf(u2);
    return __fadd_rn(loc, __fmul_rn(scale, __fsub_rn(__fdiv_rn(e1, kappa), __fmul_rn(kappa, e2))));
}

// m + σ·(r·t), as the CPU evaluates it.
__device__ __forceinline__ float gauss_value(float m, float sd, float r, float t) {
    return __fadd_rn(m, __fmul_rn(sd, __fmul_rn(r, t)));
}

// The values at positions 4j..4j+3 of a replicate row.
__device__ __forceinline__ void block_values(const Replicate& r, unsigned j, unsigned k0,
                                             unsigned k1, float out[4]) {
    const uint4 ctr = make_uint4(j, r.replicate, r.cls, r.model);
    const uint4 u = philox4x32_10(ctr, k0, k1);
    if (r.model == 0) {
        const float r0 = sqrtf(__fmul_rn(-2.0f, logf(uniform01(u.x))));
        const float t0 = __fmul_rn(TWO_PI, uniform01(u.y));
        const float r1 = sqrtf(__fmul_rn(-2.0f, logf(uniform01(u.z))));
        const float t1 = __fmul_rn(TWO_PI, uniform01(u.w));
        out[0] = gauss_value(r.p[0], r.p[1], r0, cosf(t0));
        out[1] = gauss_value(r.p[0], r.p[1], r0, sinf(t0));
        out[2] = gauss_value(r.p[0], r.p[1], r1, cosf(t1));
        out[3] = gauss_value(r.p[0], r.p[1], r1, sinf(t1));
        return;
    }
    const uint4 v = philox4x32_10(make_uint4(ctr.x, ctr.y, ctr.z, ctr.w + SECOND_BLOCK), k0, k1);
    out[0] = ald_value(r.p[0], r.p[1], r.p[2], uniform01(u.x), uniform01(v.x));
    out[1] = ald_value(r.p[0], r.p[1], r.p[2], uniform01(u.y), uniform01(v.y));
    out[2] = ald_value(r.p[0], r.p[1], r.p[2], uniform01(u.z), uniform01(v.z));
    out[3] = ald_value(r.p[0], r.p[1], r.p[2], uniform01(u.w), uniform01(v.w));
}

}  // namespace aldfit
