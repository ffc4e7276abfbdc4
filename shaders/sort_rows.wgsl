// Per-row sort of values with their feature indices (docs/DESIGN.md 2.5: sort each row once; 4: sorts
// are exact). One workgroup sorts one row in workgroup memory with a bitonic network; rows are
// padded to a power of two with keys that sort last. Ties are ordered by feature index, so the
// result is the CPU's stable sort exactly.
//
// TILE (the largest padded row) is substituted by the host before compilation.

const TILE: u32 = {{TILE}}u;
const WG: u32 = 256u;

struct Params {
    cols: u32,        // values per row
    padded: u32,      // next power of two >= cols, <= TILE
    rows: u32,        // rows in this dispatch
    groups_x: u32,    // workgroups per row of the 2-D dispatch grid
}

@group(0) @binding(0) var<storage, read_write> values: array<f32>;
@group(0) @binding(1) var<storage, read_write> indices: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

var<workgroup> keys: array<u32, TILE>;
var<workgroup> ids: array<u32, TILE>;

// f32 -> u32 whose unsigned order is the float order (−0.0 before +0.0).
fn to_key(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    return select(b | 0x80000000u, ~b, (b >> 31u) == 1u);
}

fn from_key(k: u32) -> f32 {
    return bitcast<f32>(select(~k, k & 0x7fffffffu, (k >> 31u) == 1u));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * params.groups_x + wid.x;
    let n = params.cols;
    let padded = params.padded;
    // Rows past the end still take part in the barriers below (uniform control flow), but read
    // and write nothing.
    let live = row < params.rows;
    let base = row * n;

    for (var i = lid; i < padded; i += WG) {
        if (live && i < n) {
            keys[i] = to_key(values[base + i]);
            ids[i] = i;
        } else {
            keys[i] = 0xffffffffu;
            ids[i] = 0xffffffffu;
        }
    }
    workgroupBarrier();

    for (var k = 2u; k <= padded; k <<= 1u) {
        for (var j = k >> 1u; j > 0u; j >>= 1u) {
            for (var t = lid; t < padded / 2u; t += WG) {
                let i = 2u * j * (t / j) + (t % j);
                let l = i + j;
                let up = (i & k) == 0u;
                let ki = keys[i];
                let kl = keys[l];
                let ii = ids[i];
                let il = ids[l];
                let greater = ki > kl || (ki == kl && ii > il);
                if (greater == up) {
                    keys[i] = kl;
                    keys[l] = ki;
                    ids[i] = il;
                    ids[l] = ii;
                }
            }
            workgroupBarrier();
        }
    }

    if (live) {
        for (var i = lid; i < n; i += WG) {
            values[base + i] = from_key(keys[i]);
            indices[base + i] = ids[i];
        }
    }
}
