// Moments for the Gaussian and Laplace baselines (docs/DESIGN.md 2.3). Sums are taken of
// z = (x − x_mid) / r, r the segment's range about its middle value: the shift removes large
// common offsets, the scaling keeps squares of tiny weights from underflowing f32. Each
// invocation sums a short run, then a tree reduces (pairwise-like error). The host finishes in
// f64 (backend::abi::BaselineSums), m being the median in z units.

struct BaselineSums {
    sum_z: f32,
    sum_zz: f32,
    sum_abs_dev: f32,
    range: f32,
    mid: f32,
    mid_below: f32,
    n: f32,
    min: f32,
    max: f32,
    pad: f32,
}

@group(0) @binding(0) var<storage, read> values: array<f32>;
@group(0) @binding(1) var<storage, read> segs: array<Seg>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read_write> out: array<BaselineSums>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = group_index(wid, params.groups_x);
    let live = s < params.count;
    var seg = Seg(0u, 0u, 0u, 0u);
    if (live) {
        seg = segs[s];
    }
    let base = seg.row * params.cols + seg.lo;
    let n = seg.hi - seg.lo;
    var shift = 0.0;
    var mid_lo = 0.0;
    var r = 1.0;
    if (n > 0u) {
        shift = values[base + n / 2u];
        mid_lo = select(shift, values[base + n / 2u - 1u], n % 2u == 0u);
        r = max(abs(values[base] - shift), abs(values[base + n - 1u] - shift));
        if (r == 0.0) {
            r = 1.0;
        }
    }
    // The median in z units: the middle value, or halfway to its lower neighbour.
    let m = select(0.0, 0.5 * ((mid_lo - shift) / r), n % 2u == 0u);
    let span = run_of(lid, n);
    var a = 0.0;
    var b = 0.0;
    var c = 0.0;
    for (var j = span.x; j < span.y; j++) {
        let z = (values[base + j] - shift) / r;
        a += z;
        b += z * z;
        c += abs(z - m);
    }
    red_a[lid] = a;
    red_b[lid] = b;
    red_c[lid] = c;
    reduce_sum3(lid);
    if (live && lid == 0u) {
        var lo = 0.0;
        var hi = 0.0;
        if (n > 0u) {
            lo = values[base];
            hi = values[base + n - 1u];
        }
        out[s] = BaselineSums(red_a[0], red_b[0], red_c[0], r, shift, mid_lo, f32(n), lo, hi, 0.0);
    }
}
