// Exact maximum-likelihood scan over a sorted segment (DESIGN.md 2.2): the argmin of
// √A_j + √B_j over interior order statistics, one per distinct value, ties to the smallest j.
// In f32 on z = (x − x_mid) / r (DESIGN.md 4: shifted segments); prefix sums are compensated
// within each invocation's run and scanned across runs. The host turns A, B into κ̂, ŝ and the
// NLL in f64 (A and B recomputed at the winner as sums of positive terms). out (8 per segment) = [j* (u32 bits), A*, B*, best objective, end objective, r,
// x(j*), n]; j* = 0xffffffff when there is no interior candidate (degenerate).

@group(0) @binding(0) var<storage, read> values: array<f32>;
@group(0) @binding(1) var<storage, read> segs: array<Seg>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const NONE: u32 = 0xffffffffu;

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
    var r = 1.0;
    var x_lo = 0.0;
    var x_hi = 0.0;
    if (n > 0u) {
        shift = values[base + n / 2u];
        x_lo = values[base];
        x_hi = values[base + n - 1u];
        r = max(abs(x_lo - shift), abs(x_hi - shift));
        if (r == 0.0) {
            r = 1.0;
        }
    }
    let nf = f32(n);

    // Run sums (compensated), then an inclusive scan of them across the workgroup.
    let span = run_of(lid, n);
    var sum = 0.0;
    var comp = 0.0;
    for (var j = span.x; j < span.y; j++) {
        let y = (values[base + j] - shift) / r - comp;
        let t = sum + y;
        comp = (t - sum) - y;
        sum = t;
    }
    red_a[lid] = sum;
    workgroupBarrier();
    for (var off = 1u; off < WG; off <<= 1u) {
        var add = 0.0;
        if (lid >= off) {
            add = red_a[lid - off];
        }
        workgroupBarrier();
        red_a[lid] += add;
        workgroupBarrier();
    }
    let total = red_a[WG - 1u];
    var prefix = red_a[lid] - sum;
    workgroupBarrier();

    // This run's best interior candidate.
    var best = 3.4e38;
    var best_j = NONE;
    var best_a = 0.0;
    var best_b = 0.0;
    comp = 0.0;
    for (var j = span.x; j < span.y; j++) {
        let x = values[base + j];
        let z = (x - shift) / r;
        let y = z - comp;
        let t = prefix + y;
        comp = (t - prefix) - y;
        prefix = t;
        var interior = x != x_lo && x != x_hi;
        if (j > 0u) {
            interior = interior && values[base + j - 1u] != x;
        }
        if (interior) {
            let a = max((total - prefix) - (nf - 1.0 - f32(j)) * z, 0.0);
            let b = max((f32(j) + 1.0) * z - prefix, 0.0);
            let obj = sqrt(a) + sqrt(b);
            if (obj < best) {
                best = obj;
                best_j = j;
                best_a = a;
                best_b = b;
            }
        }
    }
    red_a[lid] = best;
    red_u[lid] = best_j;
    red_b[lid] = best_a;
    red_c[lid] = best_b;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st >>= 1u) {
        if (lid < st) {
            let o = lid + st;
            if (red_a[o] < red_a[lid] || (red_a[o] == red_a[lid] && red_u[o] < red_u[lid])) {
                red_a[lid] = red_a[o];
                red_u[lid] = red_u[o];
                red_b[lid] = red_b[o];
                red_c[lid] = red_c[o];
            }
        }
        workgroupBarrier();
    }
    // A and B at the winner again, as sums of positive terms (no cancellation), for the
    // parameters the host derives from them.
    let j_best = red_u[0];
    let best_obj = red_a[0];
    workgroupBarrier();
    var z_best = 0.0;
    if (j_best != NONE) {
        z_best = (values[base + j_best] - shift) / r;
    }
    var a = 0.0;
    var b = 0.0;
    for (var j = span.x; j < span.y; j++) {
        let d = (values[base + j] - shift) / r - z_best;
        a += max(d, 0.0);
        b += max(-d, 0.0);
    }
    red_a[lid] = a;
    red_b[lid] = b;
    red_c[lid] = 0.0;
    reduce_sum3(lid);
    if (live && lid == 0u) {
        let o = s * 8u;
        // End points: μ = x(0) (B = 0) and μ = x(n−1) (A = 0).
        var end_obj = 3.4e38;
        if (n > 0u) {
            let z0 = (x_lo - shift) / r;
            let zn = (x_hi - shift) / r;
            end_obj = min(sqrt(max(total - nf * z0, 0.0)), sqrt(max(nf * zn - total, 0.0)));
        }
        out[o] = bitcast<f32>(j_best);
        out[o + 1u] = red_a[0];
        out[o + 2u] = red_b[0];
        out[o + 3u] = best_obj;
        out[o + 4u] = end_obj;
        out[o + 5u] = r;
        if (j_best != NONE) {
            out[o + 6u] = values[base + j_best];
        } else {
            out[o + 6u] = 0.0;
        }
        out[o + 7u] = nf;
    }
}
