// Exact maximum-likelihood scan over a sorted segment (docs/DESIGN.md 2.2): the argmin of
// √A_j + √B_j over interior order statistics, one per distinct value, ties to the smallest j.
//
// Precision (docs/DESIGN.md 4): near the optimum the objective is flat to ~1e-7, so plain f32 would
// pick among far-apart order statistics with visibly different κ̂. Everything here is carried as
// double-f32 (hi, lo) pairs: y = (x − x_mid)·2^-e is exact (two_sum, then a power-of-two scale),
// prefix sums, A_j, B_j (products split into exact 12-bit parts), square roots and the
// comparison keep ~44 bits. The host turns A*, B*
// (re-summed at the winner as positive terms) into κ̂, ŝ and the NLL in f64.
//
// out: one FitOut per segment (backend::abi::FitOut); j* = 0xffffffff when there is no interior
// candidate (degenerate).

struct FitOut {
    j: u32,
    a_hi: f32,
    b_hi: f32,
    objective: f32,
    boundary: f32,
    unit: f32,
    loc: f32,
    n: f32,
    a_lo: f32,
    b_lo: f32,
}

@group(0) @binding(0) var<storage, read> values: array<f32>;
@group(0) @binding(1) var<storage, read> segs: array<Seg>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read_write> out: array<FitOut>;

const NONE: u32 = 0xffffffffu;
const BIG: f32 = 3.4e38;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    ONE = bitcast<f32>(params.flag);
    let s = group_index(wid, params.groups_x);
    let live = s < params.count;
    var seg = Seg(0u, 0u, 0u, 0u);
    if (live) {
        seg = segs[s];
    }
    let base = seg.row * params.cols + seg.lo;
    let n = seg.hi - seg.lo;
    var shift = 0.0;
    var x_lo = 0.0;
    var x_hi = 0.0;
    var e = 0;
    if (n > 0u) {
        shift = values[base + n / 2u];
        x_lo = values[base];
        x_hi = values[base + n - 1u];
        let range = max(abs(x_lo - shift), abs(x_hi - shift));
        if (range > 0.0) {
            e = frexp(range).exp;
        }
    }
    let nf = f32(n);

    // y_j = (x_j − shift)·2^-e, exactly, as a pair.
    let span = run_of(lid, n);
    var run = vec2<f32>(0.0, 0.0);
    for (var j = span.x; j < span.y; j++) {
        let d = two_sum(values[base + j], -shift);
        run = df_add(run, vec2<f32>(ldexp(d.x, -e), ldexp(d.y, -e)));
    }
    // Inclusive scan of the runs' sums across the workgroup.
    red_a[lid] = run.x;
    red_b[lid] = run.y;
    workgroupBarrier();
    for (var off = 1u; off < WG; off <<= 1u) {
        var add = vec2<f32>(0.0, 0.0);
        if (lid >= off) {
            add = vec2<f32>(red_a[lid - off], red_b[lid - off]);
        }
        workgroupBarrier();
        let sum = df_add(vec2<f32>(red_a[lid], red_b[lid]), add);
        red_a[lid] = sum.x;
        red_b[lid] = sum.y;
        workgroupBarrier();
    }
    let total = vec2<f32>(red_a[WG - 1u], red_b[WG - 1u]);
    var prefix = df_add(vec2<f32>(red_a[lid], red_b[lid]), -run);
    workgroupBarrier();

    // This run's best interior candidate.
    var best = vec2<f32>(BIG, 0.0);
    var best_j = NONE;
    for (var j = span.x; j < span.y; j++) {
        let x = values[base + j];
        let d = two_sum(x, -shift);
        let y = vec2<f32>(ldexp(d.x, -e), ldexp(d.y, -e));
        prefix = df_add(prefix, y);
        var interior = x != x_lo && x != x_hi;
        if (j > 0u) {
            interior = interior && values[base + j - 1u] != x;
        }
        if (interior) {
            let a = df_clamp0(df_add(df_add(total, -prefix), -df_mul(y, nf - 1.0 - f32(j))));
            let b = df_clamp0(df_add(df_mul(y, f32(j) + 1.0), -prefix));
            let obj = df_add(df_sqrt(a), df_sqrt(b));
            if (df_less(obj, best)) {
                best = obj;
                best_j = j;
            }
        }
    }
    red_a[lid] = best.x;
    red_b[lid] = best.y;
    red_u[lid] = best_j;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st >>= 1u) {
        if (lid < st) {
            let o = lid + st;
            let mine = vec2<f32>(red_a[lid], red_b[lid]);
            let other = vec2<f32>(red_a[o], red_b[o]);
            if (df_less(other, mine) || (other.x == mine.x && other.y == mine.y && red_u[o] < red_u[lid])) {
                red_a[lid] = other.x;
                red_b[lid] = other.y;
                red_u[lid] = red_u[o];
            }
        }
        workgroupBarrier();
    }
    let j_best = red_u[0];
    let best_obj = vec2<f32>(red_a[0], red_b[0]);
    workgroupBarrier();

    // A and B at the winner again, as sums of positive terms (no cancellation), in pairs.
    var y_best = vec2<f32>(0.0, 0.0);
    if (j_best != NONE) {
        let d = two_sum(values[base + j_best], -shift);
        y_best = vec2<f32>(ldexp(d.x, -e), ldexp(d.y, -e));
    }
    var a_sum = vec2<f32>(0.0, 0.0);
    var b_sum = vec2<f32>(0.0, 0.0);
    for (var j = span.x; j < span.y; j++) {
        let d0 = two_sum(values[base + j], -shift);
        let d = df_add(vec2<f32>(ldexp(d0.x, -e), ldexp(d0.y, -e)), -y_best);
        if (d.x > 0.0) {
            a_sum = df_add(a_sum, d);
        } else if (d.x < 0.0) {
            b_sum = df_add(b_sum, -d);
        }
    }
    red_a[lid] = a_sum.x;
    red_b[lid] = a_sum.y;
    red_c[lid] = b_sum.x;
    red_u[lid] = bitcast<u32>(b_sum.y);
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st >>= 1u) {
        if (lid < st) {
            let o = lid + st;
            let a2 = df_add(vec2<f32>(red_a[lid], red_b[lid]), vec2<f32>(red_a[o], red_b[o]));
            let b2 = df_add(
                vec2<f32>(red_c[lid], bitcast<f32>(red_u[lid])),
                vec2<f32>(red_c[o], bitcast<f32>(red_u[o])),
            );
            red_a[lid] = a2.x;
            red_b[lid] = a2.y;
            red_c[lid] = b2.x;
            red_u[lid] = bitcast<u32>(b2.y);
        }
        workgroupBarrier();
    }
    if (live && lid == 0u) {
        // End points: μ = x(0) (B = 0) and μ = x(n−1) (A = 0).
        var boundary = 0.0;
        if (n > 0u && j_best != NONE) {
            let d0 = two_sum(x_lo, -shift);
            let dn = two_sum(x_hi, -shift);
            let y0 = vec2<f32>(ldexp(d0.x, -e), ldexp(d0.y, -e));
            let yn = vec2<f32>(ldexp(dn.x, -e), ldexp(dn.y, -e));
            let end0 = df_sqrt(df_clamp0(df_add(total, -df_mul(y0, nf))));
            let endn = df_sqrt(df_clamp0(df_add(df_mul(yn, nf), -total)));
            if (df_less(end0, best_obj) || df_less(endn, best_obj)) {
                boundary = 1.0;
            }
        }
        var loc = 0.0;
        if (j_best != NONE) {
            loc = values[base + j_best];
        }
        // The low halves of A* and B* (a_lo, b_lo): the host adds them in f64.
        out[s] = FitOut(
            j_best, red_a[0], red_c[0], best_obj.x, boundary, ldexp(1.0, e), loc, nf, red_b[0],
            bitcast<f32>(red_u[0]),
        );
    }
}
