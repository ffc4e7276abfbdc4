// Vuong's pass (docs/DESIGN.md 2.6): Σv and Σv² over a segment, with v(x) = d(x) − c the variable
// part of d = ℓ_ALD − ℓ_N (see ald::LogLikDiff): the ALD's exponent plus the Gaussian's square.
// Locations come as f32 pairs (hi, lo) so that x − μ keeps the f64 location's precision.
// One LoglikLawF32 in and one LoglikSumsF32 out per segment (backend::abi).

struct LoglikLawF32 {
    mu: vec2<f32>,
    k_over_s: f32,
    inv_ks: f32,
    m: vec2<f32>,
    inv_sd: f32,
    pad: f32,
}

struct LoglikSumsF32 {
    sum_v: f32,
    sum_vv: f32,
}

@group(0) @binding(0) var<storage, read> values: array<f32>;
@group(0) @binding(1) var<storage, read> segs: array<Seg>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> laws: array<LoglikLawF32>;
@group(0) @binding(4) var<storage, read_write> out: array<LoglikSumsF32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = group_index(wid, params.groups_x);
    let live = s < params.count;
    var seg = Seg(0u, 0u, 0u, 0u);
    var law = LoglikLawF32(vec2<f32>(0.0, 0.0), 1.0, 1.0, vec2<f32>(0.0, 0.0), 1.0, 0.0);
    if (live) {
        seg = segs[s];
        law = laws[s];
    }
    let base = seg.row * params.cols + seg.lo;
    let n = seg.hi - seg.lo;
    let span = run_of(lid, n);
    var sv = 0.0;
    var svv = 0.0;
    for (var j = span.x; j < span.y; j++) {
        let x = values[base + j];
        let t = (x - law.mu.x) - law.mu.y;
        let ald_part = select(t * law.inv_ks, -t * law.k_over_s, t >= 0.0);
        let z = ((x - law.m.x) - law.m.y) * law.inv_sd;
        let v = ald_part + 0.5 * z * z;
        sv += v;
        svv += v * v;
    }
    red_a[lid] = sv;
    red_b[lid] = svv;
    red_c[lid] = 0.0;
    reduce_sum3(lid);
    if (live && lid == 0u) {
        out[s] = LoglikSumsF32(red_a[0], red_b[0]);
    }
}
