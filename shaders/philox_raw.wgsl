// Raw Philox4x32-10 blocks at given counters: the stream every backend must reproduce bitwise.

@group(0) @binding(0) var<storage, read> counters: array<vec4<u32>>;
@group(0) @binding(1) var<uniform> draw: Draw;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = draw_index(wid, lid, draw.groups_x);
    if (i < draw.blocks) {
        out[i] = philox4x32_10(counters[i], draw.key);
    }
}
