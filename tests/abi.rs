//! The kernels' parameter structs are declared three times: in Rust (`backend::abi`), in WGSL and
//! in CUDA. These tests read the shader and kernel sources and check, field by field and constant
//! by constant, that the three agree, so a field moved in one place fails here and not on a GPU.

use aldfit::backend::abi::{
    self, BaselineSums, Draw, FitOut, KsLaw, KsLawF32, LineSums, LineSumsF32, LoglikLaw,
    LoglikLawF32, LoglikSums, LoglikSumsF32, Replicate, Seg, SegmentParams, SegmentStatsOut,
    SortParams, TailSumsF32, TailSumsOut, WideSortParams,
};

const SEGMENTS: &str = include_str!("../shaders/segments.wgsl");
const SORT_ROWS: &str = include_str!("../shaders/sort_rows.wgsl");
const SORT_WIDE: &str = include_str!("../shaders/sort_wide.wgsl");
const PHILOX: &str = include_str!("../shaders/philox.wgsl");
const GENERATE: &str = include_str!("../shaders/generate.wgsl");
const FIT: &str = include_str!("../shaders/fit.wgsl");
const BASELINES: &str = include_str!("../shaders/baselines.wgsl");
const STUDY_LINE: &str = include_str!("../shaders/study_line.wgsl");
const LOGLIK: &str = include_str!("../shaders/loglik.wgsl");
const KS: &str = include_str!("../shaders/ks.wgsl");
const NLL_GRAD: &str = include_str!("../shaders/nll_grad.wgsl");
const COMMON: &str = include_str!("../kernels/common.cuh");

/// The lines between `struct NAME {` and its `}`, comments removed.
fn struct_body<'a>(src: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("struct {name} {{");
    let start = src
        .find(&open)
        .unwrap_or_else(|| panic!("no `{open}` in the source"));
    src[start + open.len()..]
        .lines()
        .map(|l| l.split("//").next().unwrap().trim())
        .take_while(|l| !l.starts_with('}'))
        .filter(|l| !l.is_empty())
        .collect()
}

/// `name: type,` fields of a WGSL struct.
fn wgsl_fields(src: &str, name: &str) -> Vec<(String, String)> {
    struct_body(src, name)
        .into_iter()
        .map(|l| {
            let (n, t) = l.trim_end_matches(',').split_once(':').unwrap();
            (n.trim().to_owned(), t.trim().to_owned())
        })
        .collect()
}

/// `type name;` / `type name[N];` fields of a CUDA struct, as WGSL would spell them.
fn cuda_fields(src: &str, name: &str) -> Vec<(String, String)> {
    struct_body(src, name)
        .into_iter()
        .map(|l| {
            let l = l.trim_end_matches(';');
            let (ty, field) = l.rsplit_once(' ').unwrap();
            let wgsl = |t: &str| match t {
                "unsigned" => "u32",
                "float" => "f32",
                "double" => "f64",
                other => panic!("unmapped CUDA type {other}"),
            };
            match field.split_once('[') {
                Some((f, n)) => {
                    let n = n.trim_end_matches(']');
                    (f.to_owned(), format!("vec{n}<{}>", wgsl(ty)))
                }
                None => (field.to_owned(), wgsl(ty).to_owned()),
            }
        })
        .collect()
}

fn rust(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

fn size(fields: &[(&str, &str)]) -> usize {
    fields.iter().map(|(_, t)| abi::wgsl_size(t)).sum()
}

#[test]
fn wgsl_structs_match_the_rust_ones_field_by_field() {
    type Fields = &'static [(&'static str, &'static str)];
    let cases: [(&str, &str, Fields, usize); 13] = [
        (SEGMENTS, "Seg", Seg::FIELDS, std::mem::size_of::<Seg>()),
        (
            SEGMENTS,
            "Params",
            SegmentParams::FIELDS,
            std::mem::size_of::<SegmentParams>(),
        ),
        (
            SORT_ROWS,
            "Params",
            SortParams::FIELDS,
            std::mem::size_of::<SortParams>(),
        ),
        (
            SORT_WIDE,
            "Params",
            WideSortParams::FIELDS,
            std::mem::size_of::<WideSortParams>(),
        ),
        (PHILOX, "Draw", Draw::FIELDS, std::mem::size_of::<Draw>()),
        (
            PHILOX,
            "Replicate",
            Replicate::FIELDS,
            std::mem::size_of::<Replicate>(),
        ),
        (FIT, "FitOut", FitOut::FIELDS, std::mem::size_of::<FitOut>()),
        (
            BASELINES,
            "BaselineSums",
            BaselineSums::FIELDS,
            std::mem::size_of::<BaselineSums>(),
        ),
        (
            STUDY_LINE,
            "LineSumsF32",
            LineSumsF32::FIELDS,
            std::mem::size_of::<LineSumsF32>(),
        ),
        (
            LOGLIK,
            "LoglikLawF32",
            LoglikLawF32::FIELDS,
            std::mem::size_of::<LoglikLawF32>(),
        ),
        (
            LOGLIK,
            "LoglikSumsF32",
            LoglikSumsF32::FIELDS,
            std::mem::size_of::<LoglikSumsF32>(),
        ),
        (
            KS,
            "KsLawF32",
            KsLawF32::FIELDS,
            std::mem::size_of::<KsLawF32>(),
        ),
        (
            NLL_GRAD,
            "TailSumsF32",
            TailSumsF32::FIELDS,
            std::mem::size_of::<TailSumsF32>(),
        ),
    ];
    for (src, name, fields, bytes) in cases {
        assert_eq!(wgsl_fields(src, name), rust(fields), "WGSL struct {name}");
        assert_eq!(
            size(fields),
            bytes,
            "Rust struct behind {name}: FIELDS miss bytes"
        );
    }
}

#[test]
fn cuda_structs_match_the_rust_ones_field_by_field() {
    assert_eq!(cuda_fields(COMMON, "Seg"), rust(Seg::FIELDS));
    // CUDA's `cls` is WGSL's `class_`: both step around the keyword.
    let mut replicate = rust(Replicate::FIELDS);
    replicate[0].0 = "cls".into();
    assert_eq!(cuda_fields(COMMON, "Replicate"), replicate);
    type Fields = &'static [(&'static str, &'static str)];
    let cases: [(&str, Fields, usize); 6] = [
        ("KsLaw", KsLaw::FIELDS, std::mem::size_of::<KsLaw>()),
        (
            "LoglikLaw",
            LoglikLaw::FIELDS,
            std::mem::size_of::<LoglikLaw>(),
        ),
        (
            "SegmentStatsOut",
            SegmentStatsOut::FIELDS,
            std::mem::size_of::<SegmentStatsOut>(),
        ),
        (
            "LineSums",
            LineSums::FIELDS,
            std::mem::size_of::<LineSums>(),
        ),
        (
            "LoglikSums",
            LoglikSums::FIELDS,
            std::mem::size_of::<LoglikSums>(),
        ),
        (
            "TailSumsOut",
            TailSumsOut::FIELDS,
            std::mem::size_of::<TailSumsOut>(),
        ),
    ];
    for (name, fields, bytes) in cases {
        assert_eq!(
            cuda_fields(COMMON, name),
            rust(fields),
            "CUDA struct {name}"
        );
        assert_eq!(
            size(fields),
            bytes,
            "Rust struct behind {name}: FIELDS miss bytes"
        );
    }
}

/// Each kernel reads and writes its own structs: the declarations above are the ones in use.
#[test]
fn kernels_bind_their_typed_structs() {
    let uses = [
        (FIT, "array<FitOut>"),
        (BASELINES, "array<BaselineSums>"),
        (STUDY_LINE, "array<LineSumsF32>"),
        (LOGLIK, "array<LoglikLawF32>"),
        (LOGLIK, "array<LoglikSumsF32>"),
        (KS, "array<KsLawF32>"),
        (NLL_GRAD, "array<TailSumsF32>"),
        (
            include_str!("../kernels/segment_stats.cu"),
            "aldfit::SegmentStatsOut* __restrict__ out",
        ),
        (
            include_str!("../kernels/study_line.cu"),
            "aldfit::LineSums* __restrict__ out",
        ),
        (
            include_str!("../kernels/ks.cu"),
            "const aldfit::KsLaw* __restrict__ laws",
        ),
        (
            include_str!("../kernels/loglik.cu"),
            "const aldfit::LoglikLaw* __restrict__ laws",
        ),
        (
            include_str!("../kernels/loglik.cu"),
            "aldfit::LoglikSums* __restrict__ out",
        ),
        (
            include_str!("../kernels/nll_grad.cu"),
            "aldfit::TailSumsOut* __restrict__ out",
        ),
    ];
    for (src, decl) in uses {
        assert!(src.contains(decl), "no `{decl}` where it is expected");
    }
}

/// `const NAME: u32 = 256u;` (WGSL) or `constexpr int NAME = 256;` (CUDA), as a number.
fn constant(src: &str, name: &str) -> u32 {
    let line = src
        .lines()
        .find(|l| {
            let l = l.trim_start();
            (l.starts_with("const ") || l.starts_with("constexpr "))
                && l.split_whitespace()
                    .any(|w| w.trim_end_matches(':') == name)
        })
        .unwrap_or_else(|| panic!("no constant {name}"));
    let value = line.split('=').nth(1).unwrap().trim().trim_end_matches(';');
    let value = value.trim_end_matches('u');
    match value.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
        None => value.parse().unwrap(),
    }
}

#[test]
fn constants_are_the_same_everywhere() {
    assert_eq!(constant(SEGMENTS, "WG"), abi::SEGMENT_THREADS);
    assert_eq!(constant(COMMON, "SEG_THREADS"), abi::SEGMENT_THREADS);
    assert_eq!(
        constant(PHILOX, "SECOND_BLOCK"),
        aldfit::philox::SECOND_BLOCK
    );
    assert_eq!(
        constant(COMMON, "SECOND_BLOCK"),
        aldfit::philox::SECOND_BLOCK
    );
    // The CUDA sort tiles: one entry point per tile, with and without indices, launched with
    // the threads the host passes, and threads × items = the tile.
    let sort_rows = include_str!("../kernels/sort_rows.cu");
    for (tile, threads) in abi::SORT_TILES {
        for kind in ["k", "kv"] {
            let name = format!("ALDFIT_SORT_TILE(sort_tile_{tile}_{kind}, ");
            let at = sort_rows
                .find(&name)
                .unwrap_or_else(|| panic!("no {name} in sort_rows.cu"));
            let args: Vec<&str> = sort_rows[at + name.len()..]
                .split(')')
                .next()
                .unwrap()
                .split(',')
                .map(str::trim)
                .collect();
            let (t, items): (u32, u32) = (args[0].parse().unwrap(), args[1].parse().unwrap());
            assert_eq!(t, threads, "threads of sort_tile_{tile}_{kind}");
            assert_eq!(
                (t * items) as usize,
                tile,
                "tile of sort_tile_{tile}_{kind}"
            );
        }
    }
    // The drawing kernels: workgroups of DRAW_THREADS, indexed by it.
    let size = format!("@workgroup_size({})", abi::DRAW_THREADS);
    assert!(GENERATE.contains(&size), "generate.wgsl: {size}");
    assert!(PHILOX.contains(&format!("* {}u + lid", abi::DRAW_THREADS)));
    let bounds = format!("__launch_bounds__({})", abi::DRAW_THREADS);
    let generate_cu = include_str!("../kernels/generate.cu");
    assert_eq!(
        generate_cu.matches(&bounds).count(),
        2,
        "generate.cu: {bounds}"
    );
}
