// The study's line on one side of zero (docs/DESIGN.md 2.4): t_i = ln v(i) for the side's magnitudes
// ascending (flag = 1: the segment holds negatives ascending, so v(i) = −x(hi − 1 − i)).
// Sums of d = t − t_mid against the centred index c = i − (L − 1)/2, so that neither sum
// cancels in f32; the host rebuilds the line in f64 (backend::abi::LineSumsF32).

struct LineSumsF32 {
    sum_d: f32,
    sum_cd: f32,
    sum_dd: f32,
    t0: f32,
}

@group(0) @binding(0) var<storage, read> values: array<f32>;
@group(0) @binding(1) var<storage, read> segs: array<Seg>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read_write> out: array<LineSumsF32>;

fn magnitude(base: u32, len: u32, i: u32, negative: bool) -> f32 {
    if (negative) {
        return -values[base + len - 1u - i];
    }
    return values[base + i];
}

// ln(v / m) for the sums: near 1 (rows far from zero, e.g. a large common offset) by its series
// on the exactly computed relative difference, since f32 `log` is only good to ~1e-7 absolute
// and the differences there are ~1e-5.
fn log_ratio(v: f32, m: f32) -> f32 {
    let u = (v - m) / m;
    if (abs(u) < 0.01) {
        return u * (1.0 + u * (-0.5 + u * (1.0 / 3.0 + u * (-0.25 + u * 0.2))));
    }
    return log(v) - log(m);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = group_index(wid, params.groups_x);
    let live = s < params.count;
    var seg = Seg(0u, 0u, 0u, 0u);
    if (live) {
        seg = segs[s];
    }
    let base = seg.row * params.cols + seg.lo;
    let len = seg.hi - seg.lo;
    let negative = params.flag == 1u;
    var m_mid = 1.0;
    if (len > 0u) {
        m_mid = magnitude(base, len, len / 2u, negative);
    }
    let t_mid = log(m_mid);
    let centre = (f32(len) - 1.0) * 0.5;
    let span = run_of(lid, len);
    var a = 0.0;
    var b = 0.0;
    var c = 0.0;
    for (var i = span.x; i < span.y; i++) {
        let d = log_ratio(magnitude(base, len, i, negative), m_mid);
        a += d;
        b += (f32(i) - centre) * d;
        c += d * d;
    }
    red_a[lid] = a;
    red_b[lid] = b;
    red_c[lid] = c;
    reduce_sum3(lid);
    if (live && lid == 0u) {
        out[s] = LineSumsF32(red_a[0], red_b[0], red_c[0], t_mid);
    }
}
