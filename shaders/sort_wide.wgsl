// Per-row sort for rows wider than workgroup memory holds (docs/DESIGN.md 2.5 and 4: every row sorted
// exactly, with its feature indices): the same bitonic network as sort_rows.wgsl, run in global
// memory as one dispatch per (k, j) step on rows padded to a power of two. Ties are ordered by
// feature index, as in sort_rows.wgsl, so both give the CPU's stable order.

struct Params {
    cols: u32,
    padded: u32,
    rows: u32,
    groups_x: u32,  // workgroups per row of the 2-D dispatch grid
    k: u32,
    j: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> values: array<f32>;
@group(0) @binding(1) var<storage, read_write> indices: array<u32>;
@group(0) @binding(2) var<storage, read_write> keys: array<u32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;
@group(0) @binding(4) var<uniform> params: Params;

fn to_key(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    return select(b | 0x80000000u, ~b, (b >> 31u) == 1u);
}

fn from_key(k: u32) -> f32 {
    return bitcast<f32>(select(~k, k & 0x7fffffffu, (k >> 31u) == 1u));
}

fn invocation(gid: vec3<u32>) -> u32 {
    return gid.y * params.groups_x * 256u + gid.x;
}

// keys/ids (rows × padded) from values: padding sorts last.
@compute @workgroup_size(256)
fn load(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = invocation(gid);
    if (t >= params.rows * params.padded) {
        return;
    }
    let row = t / params.padded;
    let i = t % params.padded;
    if (i < params.cols) {
        keys[t] = to_key(values[row * params.cols + i]);
        ids[t] = i;
    } else {
        keys[t] = 0xffffffffu;
        ids[t] = 0xffffffffu;
    }
}

// One compare-exchange of the (k, j) step per invocation.
@compute @workgroup_size(256)
fn step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = invocation(gid);
    let half = params.padded / 2u;
    if (t >= params.rows * half) {
        return;
    }
    let row = t / half;
    let tt = t % half;
    let j = params.j;
    let i = 2u * j * (tt / j) + (tt % j);
    let l = i + j;
    let up = (i & params.k) == 0u;
    let a = row * params.padded + i;
    let b = row * params.padded + l;
    let ka = keys[a];
    let kb = keys[b];
    let ia = ids[a];
    let ib = ids[b];
    let greater = ka > kb || (ka == kb && ia > ib);
    if (greater == up) {
        keys[a] = kb;
        keys[b] = ka;
        ids[a] = ib;
        ids[b] = ia;
    }
}

// values/indices back from the sorted keys/ids, without the padding.
@compute @workgroup_size(256)
fn store(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = invocation(gid);
    if (t >= params.rows * params.cols) {
        return;
    }
    let row = t / params.cols;
    let i = t % params.cols;
    let src = row * params.padded + i;
    values[t] = from_key(keys[src]);
    indices[t] = ids[src];
}
