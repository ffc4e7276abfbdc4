// KS distance of each segment to given ALD parameters (docs/DESIGN.md 2.3): one block per segment,
// F in f64 at every value, a block-wide maximum. The fused segment_stats.cu computes the same at the
// fitted parameters; this entry point serves any parameters (tree nodes, tests).
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(aldfit::SEG_THREADS)
    ks(const float* __restrict__ values, const aldfit::Seg* __restrict__ segs, unsigned count,
       unsigned cols, unsigned, const aldfit::KsLaw* __restrict__ laws, double* __restrict__ out) {
    using namespace aldfit;
    typedef cub::BlockReduce<double, SEG_THREADS> Reduce;
    __shared__ typename Reduce::TempStorage tmp;
    const unsigned s = blockIdx.x;
    if (s >= count) {
        return;
    }
    const Seg g = segs[s];
    const unsigned n = g.hi - g.lo;
    if (n == 0) {
        if (threadIdx.x == 0) {
            out[s] = nan("");
        }
        return;
    }
    const float* x = values + (unsigned long long)g.row * cols + g.lo;
    const KsLaw law = laws[s];
    const Cdf cdf(law.mu, law.s, law.kappa);
    unsigned first, last;
    run_of(n, first, last);
    const double d = Reduce(tmp).Reduce(ks_run(x, n, first, last, cdf), MaxOp());
    if (threadIdx.x == 0) {
        out[s] = d;
    }
}
