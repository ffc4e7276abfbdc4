//! The library's errors. Each says what went wrong, where (file, tensor, class), and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The I/O error is part of the message, not a `source`: a chain printer would say it twice.
    #[error("cannot read {}: {err}", path.display())]
    Read { path: PathBuf, err: std::io::Error },

    #[error("cannot write {}: {err}", path.display())]
    Write { path: PathBuf, err: std::io::Error },

    #[error("{}: {msg}", path.display())]
    Format { path: PathBuf, msg: String },

    #[error("{}: tensor `{tensor}` {msg}", path.display())]
    Tensor {
        path: PathBuf,
        tensor: String,
        msg: String,
    },

    #[error("{}: no tensor named `{name}`; the file holds: {available}", path.display())]
    NoSuchTensor {
        path: PathBuf,
        name: String,
        available: String,
    },

    #[error("{}: no 2-D tensor to analyse (tensors: {available}); pass --tensor NAME", path.display())]
    NoHead { path: PathBuf, available: String },

    #[error(
        "{}: tensor `{tensor}`, class {class}{label}: weight {value} at feature {feature} is not \
         finite; \
         fix the checkpoint or pass --skip-nonfinite to flag and skip such rows",
        path.display()
    )]
    NonFinite {
        path: PathBuf,
        tensor: String,
        class: usize,
        label: String,
        feature: usize,
        value: f32,
    },

    #[error("{0}")]
    Invalid(String),

    #[error("backend `{backend}` is not available: {reason}")]
    BackendUnavailable { backend: String, reason: String },

    #[error("backend `{backend}` failed: {msg}")]
    Backend { backend: String, msg: String },

    /// A row whose scale an f32 device cannot compute on: its values (or their squares) would
    /// be flushed to zero or overflow. `row` counts within the chunk handed to the backend; the
    /// pipeline names the class.
    #[error("row {row}: {}", magnitude_msg(backend, *max_abs, *lo, *hi))]
    Magnitude {
        backend: String,
        row: usize,
        max_abs: f32,
        lo: f32,
        hi: f32,
    },
}

/// Why a row's scale is refused, for [`Error::Magnitude`] and the class-naming form of it.
pub fn magnitude_msg(backend: &str, max_abs: f32, lo: f32, hi: f32) -> String {
    format!(
        "its largest |weight| is {max_abs:.3e}, outside [{lo:.1e}, {hi:.1e}], the scales backend \
         `{backend}` computes right in f32; use --backend cpu (f64) for this head"
    )
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
