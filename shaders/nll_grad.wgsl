// The four sums behind the NLL and its gradient (docs/DESIGN.md 2.1) on unsorted rows:
// A = Σ(x − μ)+, B = Σ(μ − x)+, N> and N<. μ comes as an f32 pair (hi, lo) so that x − μ carries
// the f64 location's precision. The host evaluates NLL and gradient in f64.
// out: one TailSumsF32 per row (backend::abi).

struct TailSumsF32 {
    above: f32,
    below: f32,
    n_above: f32,
    n_below: f32,
}

@group(0) @binding(0) var<storage, read> rows: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> loc: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<TailSumsF32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = group_index(wid, params.groups_x);
    let live = row < params.count;
    var mu = vec2<f32>(0.0, 0.0);
    var n = 0u;
    if (live) {
        mu = loc[row];
        n = params.cols;
    }
    let base = row * params.cols;
    let span = run_of(lid, n);
    var above = 0.0;
    var below = 0.0;
    var n_above = 0u;
    var n_below = 0u;
    for (var j = span.x; j < span.y; j++) {
        let d = (rows[base + j] - mu.x) - mu.y;
        if (d > 0.0) {
            above += d;
            n_above++;
        } else if (d < 0.0) {
            below -= d;
            n_below++;
        }
    }
    red_a[lid] = above;
    red_b[lid] = below;
    red_c[lid] = f32(n_above);
    red_u[lid] = n_below;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st >>= 1u) {
        if (lid < st) {
            red_a[lid] += red_a[lid + st];
            red_b[lid] += red_b[lid + st];
            red_c[lid] += red_c[lid + st];
            red_u[lid] += red_u[lid + st];
        }
        workgroupBarrier();
    }
    if (live && lid == 0u) {
        out[row] = TailSumsF32(red_a[0], red_b[0], red_c[0], f32(red_u[0]));
    }
}
