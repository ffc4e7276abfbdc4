//! The kernels' parameter structs, as the host hands them over: one `#[repr(C)]` definition each,
//! read by the WGSL kernels (`shaders/`) and the CUDA kernels (`kernels/common.cuh`) under the same
//! names. `tests/abi.rs` checks field by field that the shader and kernel declarations say what
//! these say, so a field moved in one place and not the other fails a test, not a GPU run.
//!
//! Each struct lists its fields in `FIELDS` (name, WGSL type) beside the definition, and
//! asserts at compile time that the list covers the struct's size.

use bytemuck::{Pod, Zeroable};

/// Invocations per workgroup of the WGSL segment kernels (`WG` in shaders/segments.wgsl) and
/// threads per block of the CUDA ones (`SEG_THREADS` in kernels/common.cuh).
pub const SEGMENT_THREADS: u32 = 256;

/// Invocations per workgroup of the drawing kernels (philox.wgsl's `draw_index`, generate.cu's
/// launch), one block of four values each.
pub const DRAW_THREADS: u32 = 256;

/// A segment `(row, lo, hi)` of the resident chunk (`Seg` in both languages).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Seg {
    pub row: u32,
    pub lo: u32,
    pub hi: u32,
    pub pad: u32,
}

impl Seg {
    pub const FIELDS: &'static [(&'static str, &'static str)] =
        &[("row", "u32"), ("lo", "u32"), ("hi", "u32"), ("pad", "u32")];
}

impl From<&super::Segment> for Seg {
    fn from(s: &super::Segment) -> Self {
        Seg {
            row: s.row,
            lo: s.lo,
            hi: s.hi,
            pad: 0,
        }
    }
}

/// The uniform of every WGSL segment kernel (`Params` in shaders/segments.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SegmentParams {
    /// Values per row of the resident chunk (or of the uploaded rows).
    pub cols: u32,
    /// Segments (or rows) in this dispatch.
    pub count: u32,
    /// Workgroups per row of the 2-D dispatch grid.
    pub groups_x: u32,
    /// The kernel's switch: strict partition, negative side, fit.wgsl's run-time 1.0 (as bits).
    pub flag: u32,
}

impl SegmentParams {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("cols", "u32"),
        ("count", "u32"),
        ("groups_x", "u32"),
        ("flag", "u32"),
    ];
}

/// The uniform of the workgroup-memory sort (`Params` in shaders/sort_rows.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SortParams {
    pub cols: u32,
    /// The next power of two ≥ cols, at most the tile.
    pub padded: u32,
    pub rows: u32,
    pub groups_x: u32,
}

impl SortParams {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("cols", "u32"),
        ("padded", "u32"),
        ("rows", "u32"),
        ("groups_x", "u32"),
    ];
}

/// The uniform of one step of the global-memory sort (`Params` in shaders/sort_wide.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct WideSortParams {
    pub cols: u32,
    pub padded: u32,
    pub rows: u32,
    pub groups_x: u32,
    /// The bitonic network's step (k, j).
    pub k: u32,
    pub j: u32,
    pub pad0: u32,
    pub pad1: u32,
}

impl WideSortParams {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("cols", "u32"),
        ("padded", "u32"),
        ("rows", "u32"),
        ("groups_x", "u32"),
        ("k", "u32"),
        ("j", "u32"),
        ("pad0", "u32"),
        ("pad1", "u32"),
    ];
}

/// The uniform of the drawing kernels (`Draw` in shaders/philox.wgsl): `blocks` invocations of
/// four values each over a grid `groups_x` workgroups wide.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Draw {
    pub cols: u32,
    pub blocks_per_row: u32,
    pub blocks: u32,
    pub groups_x: u32,
    /// The Philox key (the seed, low word first).
    pub key: [u32; 2],
    pub pad: [u32; 2],
}

impl Draw {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("cols", "u32"),
        ("blocks_per_row", "u32"),
        ("blocks", "u32"),
        ("groups_x", "u32"),
        ("key", "vec2<u32>"),
        ("pad", "vec2<u32>"),
    ];
}

/// One replicate row to draw (`Replicate` in shaders/philox.wgsl and kernels/common.cuh; the
/// CUDA field `cls` is WGSL's `class_`, both avoiding the keyword).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Replicate {
    pub class: u32,
    pub replicate: u32,
    /// `philox::NullModel` as its counter word.
    pub model: u32,
    pub pad: u32,
    /// Gaussian (m, σ, –, –); ALD and Laplace (μ, s, κ, –).
    pub p: [f32; 4],
}

impl Replicate {
    pub const FIELDS: &'static [(&'static str, &'static str)] = &[
        ("class_", "u32"),
        ("replicate", "u32"),
        ("model", "u32"),
        ("pad", "u32"),
        ("p", "vec4<f32>"),
    ];
}

impl From<&crate::philox::ReplicateRow> for Replicate {
    fn from(r: &crate::philox::ReplicateRow) -> Self {
        Replicate {
            class: r.class,
            replicate: r.replicate,
            model: r.model as u32,
            pad: 0,
            p: [r.params[0], r.params[1], r.params[2], 0.0],
        }
    }
}

/// Bytes a WGSL type of `FIELDS` takes.
pub fn wgsl_size(ty: &str) -> usize {
    match ty {
        "u32" | "f32" => 4,
        "vec2<u32>" | "vec2<f32>" => 8,
        "vec4<u32>" | "vec4<f32>" => 16,
        other => panic!("no size for {other}"),
    }
}

const _: () = {
    // Every FIELDS list covers its struct (checked again by tests/abi.rs with the sizes).
    assert!(std::mem::size_of::<Seg>() == 16);
    assert!(std::mem::size_of::<SegmentParams>() == 16);
    assert!(std::mem::size_of::<SortParams>() == 16);
    assert!(std::mem::size_of::<WideSortParams>() == 32);
    assert!(std::mem::size_of::<Draw>() == 32);
    assert!(std::mem::size_of::<Replicate>() == 32);
};
