// KS distance between a sorted segment and an ALD (docs/DESIGN.md 2.3):
// D = max_j max((j+1)/n − F(x(j)), F(x(j)) − j/n), F in f32 (the contract allows 1e-4).
// One KsLawF32 per segment (backend::abi); a non-positive scale gives NaN.

struct KsLawF32 {
    mu: f32,
    s: f32,
    kappa: f32,
    pad: f32,
}

@group(0) @binding(0) var<storage, read> values: array<f32>;
@group(0) @binding(1) var<storage, read> segs: array<Seg>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> laws: array<KsLawF32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let s = group_index(wid, params.groups_x);
    let live = s < params.count;
    var seg = Seg(0u, 0u, 0u, 0u);
    var p = KsLawF32(0.0, 1.0, 1.0, 0.0);
    if (live) {
        seg = segs[s];
        p = laws[s];
    }
    let base = seg.row * params.cols + seg.lo;
    let n = seg.hi - seg.lo;
    let inv_n = 1.0 / f32(max(n, 1u));
    let k = p.kappa;
    let k_over_s = k / p.s;
    let inv_ks = 1.0 / (k * p.s);
    let upper = 1.0 / (1.0 + k * k);
    let lower = k * k / (1.0 + k * k);
    let span = run_of(lid, n);
    var d = 0.0;
    for (var j = span.x; j < span.y; j++) {
        let x = values[base + j] - p.mu;
        var f = lower * exp(x * inv_ks);
        if (x >= 0.0) {
            f = 1.0 - exp(-k_over_s * x) * upper;
        }
        d = max(d, max(f32(j + 1u) * inv_n - f, f - f32(j) * inv_n));
    }
    red_a[lid] = d;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st >>= 1u) {
        if (lid < st) {
            red_a[lid] = max(red_a[lid], red_a[lid + st]);
        }
        workgroupBarrier();
    }
    if (live && lid == 0u) {
        out[s] = red_a[0];
    }
}
