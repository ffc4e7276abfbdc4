// Sorts every row of the uploaded chunk (src) ascending into `values`, tile by tile, with CUB's block radix sort in
// shared memory (docs/DESIGN.md 2.5: sort each row once, with its feature indices). A row no wider
// than a tile is sorted in one go; wider rows are sorted in tiles, then merged by merge_runs.cu.
//
// Keys are the f32 bit patterns mapped by to_key; BlockRadixSort is stable and the tile is
// loaded in feature order, so ties keep feature order, as on the CPU. Padding sorts last.
#include <cub/block/block_load.cuh>
#include <cub/block/block_radix_sort.cuh>

#include "common.cuh"

namespace aldfit {

template <int THREADS, int ITEMS, bool INDICES>
__device__ void sort_tile(const float* src, float* values, unsigned* indices, unsigned rows,
                          unsigned cols) {
    constexpr unsigned TILE = THREADS * ITEMS;
    typedef cub::BlockLoad<unsigned, THREADS, ITEMS, cub::BLOCK_LOAD_TRANSPOSE> Load;
    typedef cub::BlockRadixSort<unsigned, THREADS, ITEMS, unsigned> SortKv;
    typedef cub::BlockRadixSort<unsigned, THREADS, ITEMS> SortK;
    __shared__ union {
        typename Load::TempStorage load;
        typename SortKv::TempStorage kv;
        typename SortK::TempStorage k;
    } tmp;

    const unsigned tiles = (cols + TILE - 1) / TILE;
    const unsigned long long block = blockIdx.x;
    const unsigned row = (unsigned)(block / tiles);
    const unsigned tile = (unsigned)(block % tiles);
    if (row >= rows) {
        return;
    }
    const unsigned start = tile * TILE;
    const unsigned len = min(TILE, cols - start);
    const unsigned long long base = (unsigned long long)row * cols + start;

    unsigned keys[ITEMS];
    Load(tmp.load).Load(reinterpret_cast<const unsigned*>(src + base), keys, (int)len, 0u);
    unsigned idx[ITEMS];
#pragma unroll
    for (int i = 0; i < ITEMS; i++) {
        const unsigned pos = threadIdx.x * ITEMS + i;
        keys[i] = pos < len ? to_key(keys[i]) : 0xffffffffu;
        idx[i] = start + pos;
    }
    __syncthreads();
    if (INDICES) {
        SortKv(tmp.kv).SortBlockedToStriped(keys, idx);
    } else {
        SortK(tmp.k).SortBlockedToStriped(keys);
    }
    // Striped: item i of thread t has rank i * THREADS + t, so these stores coalesce.
#pragma unroll
    for (int i = 0; i < ITEMS; i++) {
        const unsigned pos = i * THREADS + threadIdx.x;
        if (pos < len) {
            values[base + pos] = __uint_as_float(from_key(keys[i]));
            if (INDICES) {
                indices[base + pos] = idx[i];
            }
        }
    }
}

}  // namespace aldfit

// One entry point per tile size and with/without indices; the host picks the smallest tile that
// holds a row (or the largest, followed by merges). Static shared memory stays under 48 KiB.
#define ALDFIT_SORT_TILE(NAME, THREADS, ITEMS, INDICES)                                       \
    extern "C" __global__ void __launch_bounds__(THREADS)                                     \
        NAME(const float* __restrict__ src, float* __restrict__ values,                       \
             unsigned* __restrict__ indices, unsigned rows, unsigned cols) {                  \
        aldfit::sort_tile<THREADS, ITEMS, INDICES>(src, values, indices, rows, cols);         \
    }

ALDFIT_SORT_TILE(sort_tile_256_k, 128, 2, false)
ALDFIT_SORT_TILE(sort_tile_1024_k, 256, 4, false)
ALDFIT_SORT_TILE(sort_tile_2048_k, 256, 8, false)
ALDFIT_SORT_TILE(sort_tile_4096_k, 256, 16, false)
ALDFIT_SORT_TILE(sort_tile_8192_k, 512, 16, false)
ALDFIT_SORT_TILE(sort_tile_256_kv, 128, 2, true)
ALDFIT_SORT_TILE(sort_tile_1024_kv, 256, 4, true)
ALDFIT_SORT_TILE(sort_tile_2048_kv, 256, 8, true)
ALDFIT_SORT_TILE(sort_tile_4096_kv, 256, 16, true)
ALDFIT_SORT_TILE(sort_tile_8192_kv, 512, 16, true)
