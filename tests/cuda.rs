//! The CUDA backend's checks that need no GPU: every kernel compiles through the NVRTC path the
//! program uses, and a machine without CUDA gets an error, never a panic. The numerical tests
//! of the backend are the shared ones in backends.rs, which run on CUDA when a device exists.
#![cfg(feature = "cuda")]

mod common;

use aldfit::backend::{self, cuda, BackendKind};

/// NVRTC present, or the test is skipped with a reason (failed where `nvrtc` is required).
fn nvrtc_or_skip() -> bool {
    match cuda::nvrtc_status().and_then(|_| cuda::include_dirs().map(|_| ())) {
        Ok(()) => true,
        Err(e) => {
            common::skip("nvrtc", &e.to_string());
            false
        }
    }
}

#[test]
fn every_kernel_compiles_through_nvrtc_for_sm_90() {
    if !nvrtc_or_skip() {
        return;
    }
    let ptx = cuda::compile("sm_90").unwrap_or_else(|e| panic!("{e}"));
    let text = ptx.to_src();
    assert!(text.contains(".target sm_90"), "PTX is not for sm_90");
    for entry in cuda::ENTRY_POINTS {
        assert!(
            text.contains(&format!(".entry {entry}(")),
            "kernel {entry} is missing from the PTX"
        );
    }
}

/// The same program compiled to CUBIN for sm_90: an ELF image the driver loads without its JIT.
#[test]
fn every_kernel_compiles_to_cubin_for_sm_90() {
    if !nvrtc_or_skip() {
        return;
    }
    let cubin = cuda::compile_cubin("sm_90").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&cubin[..4], b"\x7fELF", "not an ELF image");
    for entry in cuda::ENTRY_POINTS {
        let name = entry.as_bytes();
        assert!(
            cubin.windows(name.len()).any(|w| w == name),
            "kernel {entry} is missing from the CUBIN"
        );
    }
    let e = cuda::compile_cubin("sm_1").unwrap_err().to_string();
    assert!(e.contains("sm_1"), "{e}");
}

#[test]
fn a_compile_error_comes_back_as_the_compiler_log() {
    if !nvrtc_or_skip() {
        return;
    }
    // The real kernels compiled for an architecture NVRTC does not know: an error, with a log.
    let e = cuda::compile("sm_1").unwrap_err().to_string();
    assert!(e.contains("cuda") && e.contains("sm_1"), "{e}");
}

#[test]
fn the_program_is_the_header_then_every_kernel_file() {
    let src = cuda::program_source();
    assert!(!src.contains("#include \"common.cuh\""));
    for (name, _) in cuda::KERNEL_FILES {
        assert!(src.contains(&format!("// ---- kernels/{name}")), "{name}");
    }
    for entry in cuda::ENTRY_POINTS {
        assert!(src.contains(entry), "{entry} is in no kernel file");
    }
}

#[test]
fn no_cuda_is_an_error_that_says_what_to_do_never_a_panic() {
    match backend::create(BackendKind::Cuda) {
        Ok(b) => eprintln!("CUDA is present here: {}", b.info().device),
        Err(e) => {
            common::skip("cuda", &e.to_string());
            let msg = e.to_string();
            assert!(msg.starts_with("backend `cuda` is not available"), "{msg}");
            assert!(
                msg.contains("install") || msg.contains("nvidia-smi") || msg.contains("no device"),
                "the message does not say what to do: {msg}"
            );
        }
    }
    // `auto` falls back whatever is missing.
    assert!(backend::create(BackendKind::Auto).is_ok());
}
