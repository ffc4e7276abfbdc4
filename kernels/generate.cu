// Replicate rows (docs/DESIGN.md 2.6), drawn on the device that analyses them: one thread per block
// of four values of one row; out is row-major, `cols` per row. The host sends only the
// per-row parameters.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(256)
    generate(const aldfit::Replicate* __restrict__ reps, unsigned long long blocks,
             unsigned cols, unsigned key0, unsigned key1, float* __restrict__ out) {
    using namespace aldfit;
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= blocks) {
        return;
    }
    const unsigned per_row = (cols + 3u) / 4u;
    const unsigned long long row = i / per_row;
    const unsigned j = (unsigned)(i % per_row);
    float v[4];
    block_values(reps[row], j, key0, key1, v);
    float* dst = out + row * cols;
#pragma unroll
    for (unsigned q = 0; q < 4u; q++) {
        const unsigned col = j * 4u + q;
        if (col < cols) {
            dst[col] = v[q];
        }
    }
}

// Raw Philox4x32-10 blocks at given counters: the stream every backend must reproduce bitwise.
extern "C" __global__ void __launch_bounds__(256)
    philox_raw(const uint4* __restrict__ counters, unsigned long long count, unsigned,
               unsigned key0, unsigned key1, uint4* __restrict__ out) {
    using namespace aldfit;
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) {
        out[i] = philox4x32_10(counters[i], key0, key1);
    }
}
