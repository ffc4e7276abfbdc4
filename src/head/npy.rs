//! NumPy `.npy` arrays (format versions 1–3): little-endian f32, f64 or f16, C or Fortran order.

use std::io::Write;
use std::path::Path;

use super::{Bytes, Choice, DType, Located, TensorEntry};
use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

pub(super) fn is_npy(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

struct Header {
    descr: String,
    fortran: bool,
    shape: Vec<usize>,
    data_start: usize,
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_owned(),
        msg: msg.into(),
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Header> {
    if bytes.len() < 10 {
        return Err(bad(path, "truncated .npy header"));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad(path, "truncated .npy header"));
            }
            (
                u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
                12,
            )
        }
        v => {
            return Err(bad(
                path,
                format!(".npy format version {v} is not supported (1–3 are)"),
            ))
        }
    };
    let text = bytes
        .get(start..start + len)
        .ok_or_else(|| bad(path, "truncated .npy header"))?;
    let text = std::str::from_utf8(text).map_err(|_| bad(path, ".npy header is not text"))?;
    let field = |key: &str| -> Result<&str> {
        let at = text
            .find(&format!("'{key}'"))
            .ok_or_else(|| bad(path, format!(".npy header has no '{key}': {text}")))?;
        let rest = &text[at + key.len() + 2..];
        let colon = rest
            .find(':')
            .ok_or_else(|| bad(path, "malformed .npy header"))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| bad(path, "malformed 'descr' in .npy header"))?
        .to_owned();
    let fortran = field("fortran_order")?.starts_with("True");
    let shape_text = field("shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|t| t.split_once(')'))
        .map(|(inner, _)| inner)
        .ok_or_else(|| bad(path, "malformed 'shape' in .npy header"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| {
            bad(
                path,
                format!("malformed 'shape' in .npy header: {shape_text}"),
            )
        })?;
    Ok(Header {
        descr,
        fortran,
        shape,
        data_start: start + len,
    })
}

fn dtype_of(descr: &str) -> std::result::Result<DType, String> {
    match descr {
        "<f4" | "=f4" => Ok(DType::F32),
        "<f8" | "=f8" => Ok(DType::F64),
        "<f2" | "=f2" => Ok(DType::F16),
        other => Err(other.to_owned()),
    }
}

pub(super) fn list(path: &Path, bytes: &[u8]) -> Result<Vec<TensorEntry>> {
    let h = parse(path, bytes)?;
    Ok(vec![TensorEntry {
        name: array_name(path),
        shape: h.shape,
        dtype: h.descr,
        file: path.to_owned(),
    }])
}

fn array_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "array".into())
}

pub(super) fn locate(path: &Path, file: Bytes, tensor: Option<&str>) -> Result<Located> {
    let h = parse(path, file.as_slice())?;
    let name = array_name(path);
    if let Some(t) = tensor {
        if t != name {
            return Err(Error::NoSuchTensor {
                path: path.to_owned(),
                name: t.to_owned(),
                available: format!("{name} {:?} (a .npy file holds one array)", h.shape),
            });
        }
    }
    let end = file.as_slice().len();
    Ok(Located {
        path: path.to_owned(),
        file,
        name,
        shape: h.shape,
        dtype: dtype_of(&h.descr),
        data: h.data_start..end,
        choice: Choice::Array,
        fortran: h.fortran,
    })
}

/// Writes a `.npy` (version 1) of `shape`, with elements already encoded little-endian as
/// `descr` says (`<f4`, `<f8`, `<f2`). With `fortran`, `data` is in column-major order.
pub fn write_npy(
    path: &Path,
    descr: &str,
    shape: &[usize],
    fortran: bool,
    data: &[u8],
) -> std::io::Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape_text}, }}");
    // Pad so that the data starts on a 64-byte boundary, ending the header with a newline.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(MAGIC)?;
    f.write_all(&[1, 0])?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(data)?;
    f.flush()
}
