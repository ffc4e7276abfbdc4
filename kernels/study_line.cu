// The study's line (docs/DESIGN.md 2.4) on each segment: t_i = ln v(i) for the segment's values in
// ascending order of magnitude (the segment as is for the positive side, reversed and negated
// for the negative side), shifted by t_0 as SeedLine::from_logs does. One block per segment,
// coalesced strided reads, f64 sums; the host divides (SeedLine::from_shifted_sums).
//
// out: one LineSums per segment (common.cuh).
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(aldfit::SEG_THREADS)
    study_line(const float* __restrict__ values, const aldfit::Seg* __restrict__ segs, unsigned count,
         unsigned cols, unsigned negative, const double* __restrict__, aldfit::LineSums* __restrict__ out) {
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
            out[s] = LineSums{0.0, 0.0, 0.0, nan("")};
        }
        return;
    }
    const float* x = values + (unsigned long long)g.row * cols + g.lo;
    const double shift = negative ? log(-(double)x[n - 1]) : log((double)x[0]);
    double sd = 0.0, sid = 0.0, sdd = 0.0;
    for (unsigned k = threadIdx.x; k < n; k += SEG_THREADS) {
        const double v = negative ? -(double)x[k] : (double)x[k];
        const double i = negative ? (double)(n - 1 - k) : (double)k;
        const double d = log(v) - shift;
        sd += d;
        sid += i * d;
        sdd += d * d;
    }
    sd = Reduce(tmp).Sum(sd);
    __syncthreads();
    sid = Reduce(tmp).Sum(sid);
    __syncthreads();
    sdd = Reduce(tmp).Sum(sdd);
    if (threadIdx.x == 0) {
        out[s] = LineSums{sd, sid, sdd, shift};
    }
}
