// Vuong's pass (docs/DESIGN.md 2.6): Σv and Σv² over a segment, with v(x) = d(x) − c the variable
// part of d = ℓ_ALD − ℓ_N (see ald::LogLikDiff): the ALD's exponent plus the Gaussian's square.
// Locations come as f32 pairs (hi, lo) so that x − μ keeps the f64 location's precision.
// w (8 per segment) = [μ_hi, μ_lo, κ/s, 1/(κs), m_hi, m_lo, 1/σ, 0]; out = [Σv, Σv²].

@group(0) @binding(0) var<storage, read> values: array<f32>;
@group(0) @binding(1) var<storage, read> segs: array<Seg>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = group_index(wid, params.groups_x);
    let live = s < params.count;
    var seg = Seg(0u, 0u, 0u, 0u);
    var a = vec4<f32>(0.0, 0.0, 1.0, 1.0);
    var g = vec4<f32>(0.0, 0.0, 1.0, 0.0);
    if (live) {
        seg = segs[s];
        a = w[2u * s];
        g = w[2u * s + 1u];
    }
    let base = seg.row * params.cols + seg.lo;
    let n = seg.hi - seg.lo;
    let span = run_of(lid, n);
    var sv = 0.0;
    var svv = 0.0;
    for (var j = span.x; j < span.y; j++) {
        let x = values[base + j];
        let t = (x - a.x) - a.y;
        let ald_part = select(t * a.w, -t * a.z, t >= 0.0);
        let z = ((x - g.x) - g.y) * g.z;
        let v = ald_part + 0.5 * z * z;
        sv += v;
        svv += v * v;
    }
    red_a[lid] = sv;
    red_b[lid] = svv;
    red_c[lid] = 0.0;
    reduce_sum3(lid);
    if (live && lid == 0u) {
        out[2u * s] = red_a[0];
        out[2u * s + 1u] = red_b[0];
    }
}
