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
    let raw = bytes
        .get(start..start + len)
        .ok_or_else(|| bad(path, "truncated .npy header"))?;
    // Versions 1 and 2 are latin-1, version 3 UTF-8 (numpy's format.py).
    let text: String = if bytes[6] == 3 {
        std::str::from_utf8(raw)
            .map_err(|_| bad(path, ".npy header is not UTF-8"))?
            .to_owned()
    } else {
        raw.iter().map(|&b| b as char).collect()
    };
    let (descr, fortran, shape) = header_fields(&text)
        .map_err(|why| bad(path, format!(".npy header {why}: {}", text.trim())))?;
    Ok(Header {
        descr,
        fortran,
        shape,
        data_start: start + len,
    })
}

/// The header's three fields, read as numpy reads them: the header is a Python literal
/// (parsed by `py_literal`, as `ast.literal_eval` would), a dict with exactly the keys `descr`,
/// `fortran_order` and `shape`; `fortran_order` a bool, `shape` a tuple of ints.
fn header_fields(text: &str) -> std::result::Result<(String, bool, Vec<usize>), String> {
    use py_literal::Value;
    let value: Value = text
        .trim()
        .parse()
        .map_err(|e| format!("is not a Python literal ({e})"))?;
    let Value::Dict(items) = value else {
        return Err("is not a dict".into());
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (k, v) in items {
        let Value::String(key) = k else {
            return Err("has a key that is not a string".into());
        };
        match (key.as_str(), v) {
            ("descr", Value::String(d)) => descr = Some(d),
            ("descr", _) => return Err("has a 'descr' that is not a plain dtype string".into()),
            ("fortran_order", Value::Boolean(b)) => fortran = Some(b),
            ("fortran_order", _) => {
                return Err("has a 'fortran_order' that is not True or False".into())
            }
            ("shape", Value::Tuple(dims)) => {
                let dims = dims
                    .iter()
                    .map(|d| match d {
                        Value::Integer(i) => i.to_string().parse::<usize>().ok(),
                        Value::Boolean(b) => Some(*b as usize),
                        _ => None,
                    })
                    .collect::<Option<Vec<usize>>>()
                    .ok_or("has a 'shape' that is not a tuple of non-negative ints")?;
                shape = Some(dims);
            }
            ("shape", _) => return Err("has a 'shape' that is not a tuple".into()),
            (other, _) => return Err(format!("has the key '{other}', which numpy refuses")),
        }
    }
    match (descr, fortran, shape) {
        (Some(d), Some(f), Some(s)) => Ok((d, f, s)),
        _ => Err("lacks one of 'descr', 'fortran_order' and 'shape'".into()),
    }
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
        labels: None,
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
