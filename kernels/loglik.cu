// Vuong's pass (docs/DESIGN.md 2.6): Σv and Σv² over each segment, in f64, with v(x) = d(x) − c the
// variable part of d = ℓ_ALD − ℓ_N (ald::LogLikDiff): the ALD's exponent plus the Gaussian's
// square. The host adds the constant c back.
// One LoglikLaw in and one LoglikSums out per segment (common.cuh).
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(aldfit::SEG_THREADS)
    loglik(const float* __restrict__ values, const aldfit::Seg* __restrict__ segs, unsigned count,
           unsigned cols, unsigned, const aldfit::LoglikLaw* __restrict__ laws,
           aldfit::LoglikSums* __restrict__ out) {
    using namespace aldfit;
    typedef cub::BlockReduce<double, SEG_THREADS> Reduce;
    __shared__ typename Reduce::TempStorage tmp;
    const unsigned s = blockIdx.x;
    if (s >= count) {
        return;
    }
    const Seg g = segs[s];
    const unsigned n = g.hi - g.lo;
    const float* x = values + (unsigned long long)g.row * cols + g.lo;
    const LoglikLaw p = laws[s];
    unsigned first, last;
    run_of(n, first, last);
    double sv = 0.0, svv = 0.0;
    for (unsigned j = first; j < last; j++) {
        const double xv = (double)x[j];
        const double t = xv - p.mu;
        const double ald_part = t >= 0.0 ? -p.k_over_s * t : t * p.inv_ks;
        const double z = (xv - p.m) * p.inv_sd;
        const double v = ald_part + 0.5 * z * z;
        sv += v;
        svv += v * v;
    }
    const double a = Reduce(tmp).Sum(sv);
    __syncthreads();
    const double b = Reduce(tmp).Sum(svv);
    if (threadIdx.x == 0) {
        out[s] = LoglikSums{a, b};
    }
}
