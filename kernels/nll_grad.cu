// The four sums of docs/DESIGN.md 2.1 for each unsorted row at its location μ: Σ(x − μ)+, Σ(μ − x)+
// and how many values lie above and below μ. The host turns them into the NLL and gradient
// (NllGrad::from_sums). A pure streaming reduction: one block per row, float4 loads where the
// row is 16-byte aligned, f64 sums.
//
// out: one TailSumsOut per row (common.cuh).
#include "common.cuh"

namespace aldfit {

struct Tails {
    double above, below, n_above, n_below;

    __device__ __forceinline__ void add(float v, double loc) {
        const double d = (double)v - loc;
        if (d > 0.0) {
            above += d;
            n_above += 1.0;
        } else if (d < 0.0) {
            below -= d;
            n_below += 1.0;
        }
    }
};

}  // namespace aldfit

extern "C" __global__ void __launch_bounds__(aldfit::SEG_THREADS)
    nll_grad(const float* __restrict__ rows, unsigned count, unsigned cols,
             const double* __restrict__ locs, aldfit::TailSumsOut* __restrict__ out) {
    using namespace aldfit;
    typedef cub::BlockReduce<double, SEG_THREADS> Reduce;
    __shared__ typename Reduce::TempStorage tmp;
    const unsigned r = blockIdx.x;
    if (r >= count) {
        return;
    }
    const float* x = rows + (unsigned long long)r * cols;
    const double loc = locs[r];
    Tails t = {0.0, 0.0, 0.0, 0.0};
    unsigned done = 0;
    if ((cols & 3u) == 0 && (reinterpret_cast<unsigned long long>(x) & 15u) == 0) {
        const float4* x4 = reinterpret_cast<const float4*>(x);
        for (unsigned k = threadIdx.x; k < cols / 4; k += SEG_THREADS) {
            const float4 v = x4[k];
            t.add(v.x, loc);
            t.add(v.y, loc);
            t.add(v.z, loc);
            t.add(v.w, loc);
        }
        done = cols;
    }
    for (unsigned k = done + threadIdx.x; k < cols; k += SEG_THREADS) {
        t.add(x[k], loc);
    }
    const double above = Reduce(tmp).Sum(t.above);
    __syncthreads();
    const double below = Reduce(tmp).Sum(t.below);
    __syncthreads();
    const double n_above = Reduce(tmp).Sum(t.n_above);
    __syncthreads();
    const double n_below = Reduce(tmp).Sum(t.n_below);
    if (threadIdx.x == 0) {
        out[r] = TailSumsOut{above, below, n_above, n_below};
    }
}
