// Partition points (docs/DESIGN.md 2.5: a split is a binary search for the pivot; 2.4: P is the
// suffix of values > 0, N the prefix of values < 0). One invocation per segment; flag = 1 finds
// the first value > pivot, flag = 0 the first value >= pivot. Exact.

@group(0) @binding(0) var<storage, read> values: array<f32>;
@group(0) @binding(1) var<storage, read> segs: array<Seg>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> pivots: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let s = gid.y * groups.x * WG + gid.x;
    if (s >= params.count) {
        return;
    }
    let seg = segs[s];
    let base = seg.row * params.cols;
    let p = pivots[s];
    var lo = seg.lo;
    var hi = seg.hi;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        let x = values[base + mid];
        let below = select(x < p, x <= p, params.flag == 1u);
        if (below) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    out[s] = lo;
}
