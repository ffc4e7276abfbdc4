// Shared by the segment kernels (prepended by the host): a segment is `(row, lo, hi)` of the
// resident sorted chunk (docs/DESIGN.md 2.5, key fact); one workgroup of WG invocations handles one
// segment, each invocation a contiguous run of at most ceil(len / WG) values.

const WG: u32 = 256u;

struct Seg {
    row: u32,
    lo: u32,
    hi: u32,
    pad: u32,
}

struct Params {
    cols: u32,      // values per row of the resident chunk
    count: u32,     // segments (or rows) in this dispatch
    groups_x: u32,  // workgroups per row of the 2-D dispatch grid
    flag: u32,      // kernel-specific switch (strict partition, negative side, ...)
}

var<workgroup> red_a: array<f32, WG>;
var<workgroup> red_b: array<f32, WG>;
var<workgroup> red_c: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;

fn group_index(wid: vec3<u32>, groups_x: u32) -> u32 {
    return wid.y * groups_x + wid.x;
}

// This invocation's run [first, last) of a segment of `len` values (offsets within it).
fn run_of(lid: u32, len: u32) -> vec2<u32> {
    let per = (len + WG - 1u) / WG;
    let first = min(lid * per, len);
    return vec2<u32>(first, min(first + per, len));
}

// Tree sums of red_a, red_b, red_c over the workgroup; the totals end up in slot 0.
fn reduce_sum3(lid: u32) {
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red_a[lid] += red_a[lid + s];
            red_b[lid] += red_b[lid + s];
            red_c[lid] += red_c[lid + s];
        }
        workgroupBarrier();
    }
}
