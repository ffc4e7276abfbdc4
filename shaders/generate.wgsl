// Replicate rows (docs/DESIGN.md 2.6), drawn where they are analysed: one invocation per block of
// four values of one row. out is row-major, `cols` per row.

@group(0) @binding(0) var<storage, read> reps: array<Replicate>;
@group(0) @binding(1) var<uniform> draw: Draw;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = draw_index(wid, lid, draw.groups_x);
    if (i >= draw.blocks) {
        return;
    }
    let row = i / draw.blocks_per_row;
    let j = i % draw.blocks_per_row;
    var v = block_values(reps[row], j, draw.key);
    let base = row * draw.cols;
    for (var q = 0u; q < 4u; q++) {
        let col = j * 4u + q;
        if (col < draw.cols) {
            out[base + col] = v[q];
        }
    }
}
