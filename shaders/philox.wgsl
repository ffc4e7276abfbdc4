// Philox4x32-10 and the replicate samplers (docs/DESIGN.md 2.6; src/philox.rs is the reference,
// kernels/philox.cuh the CUDA twin). WGSL has no 64-bit integers: the high word of a 32 × 32
// product comes from 16-bit halves. Prepended by the host to the kernels that draw.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
// The counter's fourth word of an ALD value's second exponential (philox::SECOND_BLOCK).
const SECOND_BLOCK: u32 = 256u;
const TWO_PI: f32 = 6.2831855;

fn mulhi32(a: u32, b: u32) -> u32 {
    let a0 = a & 0xFFFFu;
    let a1 = a >> 16u;
    let b0 = b & 0xFFFFu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xFFFFu) + (p10 & 0xFFFFu);
    return p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
}

fn philox4x32_10(ctr_in: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
    var c = ctr_in;
    var k = key_in;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k = vec2<u32>(k.x + PHILOX_W0, k.y + PHILOX_W1);
        }
        let hi0 = mulhi32(PHILOX_M0, c.x);
        let lo0 = PHILOX_M0 * c.x;
        let hi1 = mulhi32(PHILOX_M1, c.z);
        let lo1 = PHILOX_M1 * c.z;
        c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

// ((u >> 8) + 0.5)·2⁻²⁴ in f32: in (0, 1].
fn uniform01(u: u32) -> f32 {
    return (f32(u >> 8u) + 0.5) * 5.9604644775390625e-8;
}

// Model 0: Gaussian (m, σ); 1: ALD (μ, s, κ); 2: Laplace, the ALD with κ = 1.
struct Replicate {
    class_: u32,
    replicate: u32,
    model: u32,
    pad: u32,
    p: vec4<f32>,
}

fn ald_value(loc: f32, scale: f32, kappa: f32, u1: f32, u2: f32) -> f32 {
    let e1 = -log(u1);
    let e2 = -log(u2);
    return loc + scale * (e1 / kappa - kappa * e2);
}

// The values at positions 4j..4j+3 of a replicate row.
fn block_values(r: Replicate, j: u32, key: vec2<u32>) -> vec4<f32> {
    let ctr = vec4<u32>(j, r.replicate, r.class_, r.model);
    let u = philox4x32_10(ctr, key);
    if (r.model == 0u) {
        let r0 = sqrt(-2.0 * log(uniform01(u.x)));
        let t0 = TWO_PI * uniform01(u.y);
        let r1 = sqrt(-2.0 * log(uniform01(u.z)));
        let t1 = TWO_PI * uniform01(u.w);
        return vec4<f32>(
            r.p.x + r.p.y * (r0 * cos(t0)),
            r.p.x + r.p.y * (r0 * sin(t0)),
            r.p.x + r.p.y * (r1 * cos(t1)),
            r.p.x + r.p.y * (r1 * sin(t1)),
        );
    }
    let v = philox4x32_10(vec4<u32>(ctr.x, ctr.y, ctr.z, ctr.w + SECOND_BLOCK), key);
    return vec4<f32>(
        ald_value(r.p.x, r.p.y, r.p.z, uniform01(u.x), uniform01(v.x)),
        ald_value(r.p.x, r.p.y, r.p.z, uniform01(u.y), uniform01(v.y)),
        ald_value(r.p.x, r.p.y, r.p.z, uniform01(u.z), uniform01(v.z)),
        ald_value(r.p.x, r.p.y, r.p.z, uniform01(u.w), uniform01(v.w)),
    );
}

// What the drawing kernels take: `blocks` invocations over a grid `groups_x` workgroups wide.
struct Draw {
    cols: u32,
    blocks_per_row: u32,
    blocks: u32,
    groups_x: u32,
    key: vec2<u32>,
    pad: vec2<u32>,
}

fn draw_index(wid: vec3<u32>, lid: u32, groups_x: u32) -> u32 {
    return (wid.y * groups_x + wid.x) * 256u + lid;
}
