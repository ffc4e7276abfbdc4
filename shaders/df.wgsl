// Double-f32 arithmetic (docs/DESIGN.md 4: compensated sums): a value is a pair (hi, lo) with
// |lo| <= ulp(hi)/2, good to ~44 bits where the compiler keeps IEEE semantics. Prepended by the
// host to the kernels that need it (fit.wgsl). tests/wgpu_sort.rs checks each operation on the
// device against exact arithmetic. Compilers rewrite float expressions they can see through
// (Mesa's lavapipe turned two_sum's error term into 0), so the error-free transformations pass
// their intermediate results through `opaque`.

// 1.0, read at run time by the kernel; `opaque` derives a run-time zero from it. WGSL cannot
// mark operations exact, so this is how the transformations below stay exact.
var<private> ONE: f32;

// An opaque copy of x: its bits pass through an XOR with a run-time zero, so no compiler can
// relate it to the expression it came from.
fn opaque(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ (bitcast<u32>(ONE) ^ 0x3f800000u));
}

fn two_sum(a: f32, b: f32) -> vec2<f32> {
    let s = opaque(a + b);
    let bb = opaque(s - a);
    return vec2<f32>(s, (a - opaque(s - bb)) + (b - bb));
}

// |a| >= |b|.
fn quick_sum(a: f32, b: f32) -> vec2<f32> {
    let s = opaque(a + b);
    return vec2<f32>(s, b - opaque(s - a));
}

fn df_add(x: vec2<f32>, y: vec2<f32>) -> vec2<f32> {
    let s = two_sum(x.x, y.x);
    return quick_sum(s.x, s.y + x.y + y.y);
}

// The top 12 significant bits of x (a mask, so no compiler can fold it away); x − hi12(x) is
// exact and has at most 12 significant bits too, and products of two such parts are exact in f32.
// This makes products exact without relying on `fma`, which may be unfused.
fn hi12(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) & 0xfffff000u);
}

// The exact product of two f32 values each of at most 24 significant bits, as a pair.
fn two_prod(a: f32, b: f32) -> vec2<f32> {
    let ah = hi12(a);
    let al = a - ah;
    let bh = hi12(b);
    let bl = b - bh;
    var p = two_sum(ah * bh, ah * bl);
    p = df_add(p, two_sum(al * bh, al * bl));
    return p;
}

// x · b for a pair x and an f32 b.
fn df_mul(x: vec2<f32>, b: f32) -> vec2<f32> {
    let p = two_prod(x.x, b);
    return quick_sum(p.x, p.y + x.y * b);
}

fn df_sqrt(x: vec2<f32>) -> vec2<f32> {
    if (x.x <= 0.0) {
        return vec2<f32>(0.0, 0.0);
    }
    let s = sqrt(x.x);
    let r = df_add(x, -two_prod(s, s));
    return quick_sum(s, r.x / (2.0 * s));
}

fn df_less(a: vec2<f32>, b: vec2<f32>) -> bool {
    return a.x < b.x || (a.x == b.x && a.y < b.y);
}

fn df_clamp0(x: vec2<f32>) -> vec2<f32> {
    if (x.x < 0.0) {
        return vec2<f32>(0.0, 0.0);
    }
    return x;
}


