// Fit, baselines and (optionally) KS of each segment of the sorted chunk, in one pass over the
// segment's values: the exact MLE scan of docs/DESIGN.md 2.2, the Gaussian and Laplace fits of 2.3 and
// the KS distance of 2.3 at the fitted parameters. One block of SEG_THREADS per segment, each
// thread a contiguous run, sums in f64 and shifted by the middle value, as `fit_and_baselines_
// sorted` in src/ald.rs does.
//
// out: one SegmentStatsOut per segment (common.cuh). The host finishes κ̂, ŝ and the NLLs from it
// in f64 (abi::SegmentStatsOut: ald::profile, gauss_nll, laplace_nll).
#include "common.cuh"

namespace aldfit {


struct Best {
    double obj, a, b;
    unsigned j;
};

// Smaller objective, then smaller j: the CPU's tie rule.
struct BestOp {
    __device__ __forceinline__ Best operator()(const Best& p, const Best& q) const {
        return (q.obj < p.obj || (q.obj == p.obj && q.j < p.j)) ? q : p;
    }
};

}  // namespace aldfit

extern "C" __global__ void __launch_bounds__(aldfit::SEG_THREADS)
    segment_stats(const float* __restrict__ values, const aldfit::Seg* __restrict__ segs,
             unsigned count, unsigned cols, unsigned with_ks, const double* __restrict__,
             aldfit::SegmentStatsOut* __restrict__ out) {
    using namespace aldfit;
    typedef cub::BlockScan<double, SEG_THREADS> Scan;
    typedef cub::BlockReduce<double, SEG_THREADS> Reduce;
    typedef cub::BlockReduce<Best, SEG_THREADS> ReduceBest;
    __shared__ union {
        typename Scan::TempStorage scan;
        typename Reduce::TempStorage reduce;
        typename ReduceBest::TempStorage best;
    } tmp;
    __shared__ double shared_lower, shared_squares;
    __shared__ Best shared_best;

    const unsigned s = blockIdx.x;
    if (s >= count) {
        return;
    }
    const Seg g = segs[s];
    const float* x = values + (unsigned long long)g.row * cols + g.lo;
    const unsigned n = g.hi - g.lo;
    SegmentStatsOut* o = out + s;
    if (n == 0) {
        if (threadIdx.x == 0) {
            const double none = nan("");
            *o = SegmentStatsOut{-1.0, none, none, none, none, none, none,
                                 none, none, none, none, 0.0,  none, none};
        }
        return;
    }
    const double shift = (double)x[n / 2];
    const double nf = (double)n;
    const float x_lo = x[0], x_hi = x[n - 1];
    unsigned first, last;
    run_of(n, first, last);

    // Sums of y = x − shift and y² over this run, then the exclusive scan across runs.
    double s1 = 0.0, s2 = 0.0;
    for (unsigned j = first; j < last; j++) {
        const double y = (double)x[j] - shift;
        s1 += y;
        s2 += y * y;
    }
    double prefix, total;
    Scan(tmp.scan).ExclusiveSum(s1, prefix, total);
    __syncthreads();
    const double squares = Reduce(tmp.reduce).Sum(s2);
    if (threadIdx.x == 0) {
        shared_squares = squares;
    }
    __syncthreads();

    // The exact scan over interior candidates, one per distinct value (docs/DESIGN.md 2.2).
    const unsigned h = n / 2;
    Best best = {INFINITY, 0.0, 0.0, NONE};
    for (unsigned j = first; j < last; j++) {
        const float xj = x[j];
        const double y = (double)xj - shift;
        prefix += y;
        if (j + 1 == h) {
            shared_lower = prefix;  // Σ y over the lower half, for the mean absolute deviation.
        }
        if (xj == x_lo || xj == x_hi || (j > 0 && x[j - 1] == xj)) {
            continue;
        }
        const double a = fmax((total - prefix) - (nf - 1.0 - (double)j) * y, 0.0);
        const double b = fmax(((double)j + 1.0) * y - prefix, 0.0);
        const double obj = sqrt(a) + sqrt(b);
        if (obj < best.obj) {
            best = {obj, a, b, j};
        }
    }
    best = ReduceBest(tmp.best).Reduce(best, BestOp());
    if (threadIdx.x == 0) {
        shared_best = best;
    }
    __syncthreads();
    best = shared_best;

    double ks = nan("");
    const bool fitted = n >= 3 && x_lo < x_hi && best.j != NONE;
    if (with_ks && fitted) {
        // The fitted parameters, as ald::profile computes them (the host recomputes the same).
        const double alpha = best.a / nf, beta = best.b / nf;
        const double kappa = sqrt(sqrt(beta / alpha));
        const double scale = sqrt(sqrt(alpha * beta)) * (sqrt(alpha) + sqrt(beta));
        const Cdf cdf((double)x[best.j], scale, kappa);
        __syncthreads();
        ks = Reduce(tmp.reduce).Reduce(ks_run(x, n, first, last, cdf), MaxOp());
    }

    if (threadIdx.x == 0) {
        const double median = (n % 2 == 1) ? (double)x[n / 2] : 0.5 * ((double)x[n / 2 - 1] + (double)x[n / 2]);
        const double mean_y = total / nf;
        const double var = fmax(shared_squares / nf - mean_y * mean_y, 0.0);
        const double lower = h > 0 ? shared_lower : 0.0;
        const double m = median - shift;
        const double mad = (((total - lower) - (double)(n - h) * m) + ((double)h * m - lower)) / nf;
        double boundary = 0.0;
        if (fitted) {
            const double y0 = (double)x_lo - shift, yn = (double)x_hi - shift;
            const double end = fmin(sqrt(fmax(total - nf * y0, 0.0)), sqrt(fmax(nf * yn - total, 0.0)));
            boundary = end < best.obj ? 1.0 : 0.0;
        }
        o->j = fitted ? (double)best.j : -1.0;
        o->a = best.a;
        o->b = best.b;
        o->objective = best.obj;
        o->boundary = boundary;
        o->loc = fitted ? (double)x[best.j] : nan("");
        o->mean = shift + mean_y;
        o->var = var;
        o->median = median;
        o->mad = mad;
        o->ks = ks;
        o->n = nf;
        o->min = (double)x_lo;
        o->max = (double)x_hi;
    }
}
