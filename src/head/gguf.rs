//! GGUF v2/v3 (llama.cpp's format), memory-mapped: the metadata, the tensor infos and the data
//! at its alignment. GGUF lists a tensor's dimensions fastest first, so `[n_embd, n_vocab]` in
//! the file is the `[n_vocab, n_embd]` head here. The head is `output.weight`, else the token
//! embedding `token_embd.weight` (tied), and the labels are `tokenizer.ggml.tokens`.

use std::path::Path;

use super::ggml::Quant;
use super::{Bytes, Choice, DType, Located, TensorEntry};
use crate::error::{Error, Result};

pub(super) fn is_gguf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"GGUF")
}

/// A tensor as the file describes it: name, shape (slowest first), ggml type, offset in the
/// data section.
struct Info {
    name: String,
    shape: Vec<usize>,
    ggml: u32,
    offset: u64,
}

struct Gguf {
    tensors: Vec<Info>,
    /// Where the data section starts.
    data: usize,
    tokens: Option<Vec<String>>,
}

struct Reader<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, msg: impl Into<String>) -> Error {
        Error::Format {
            path: self.path.to_owned(),
            msg: msg.into(),
        }
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.at.checked_add(n))
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                self.err(format!(
                    "ends inside its header (wants {n} bytes at byte {}); truncated?",
                    self.at
                ))
            })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn string(&mut self) -> Result<String> {
        let n = self.u64()?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("holds a string that is not UTF-8"))
    }

    /// Skips (or, for strings when `keep`, returns) one value of GGUF type `t`.
    fn value(&mut self, t: u32, keep: bool) -> Result<Option<Value>> {
        let size = match t {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => {
                let s = self.string()?;
                return Ok(keep.then_some(Value::Str(s)));
            }
            9 => {
                let elem = self.u32()?;
                if elem == 9 {
                    return Err(self.err("holds an array of arrays, which aldfit does not read"));
                }
                let count = self.u64()?;
                // Each element takes a byte at least: a count past the file is a lie.
                if count > (self.bytes.len() - self.at) as u64 {
                    return Err(self.err(format!(
                        "declares an array of {count} values, more than the file holds"
                    )));
                }
                let mut out = Vec::new();
                for _ in 0..count {
                    if let Some(Value::Str(s)) = self.value(elem, keep)? {
                        out.push(s);
                    }
                }
                return Ok(keep.then_some(Value::Strings(out)));
            }
            other => return Err(self.err(format!("holds metadata of unknown type {other}"))),
        };
        let b = self.take(size)?;
        Ok(match (t, keep) {
            (4, true) => Some(Value::U64(
                u32::from_le_bytes(b.try_into().expect("4")).into(),
            )),
            (10, true) => Some(Value::U64(u64::from_le_bytes(b.try_into().expect("8")))),
            _ => None,
        })
    }
}

enum Value {
    Str(String),
    Strings(Vec<String>),
    U64(u64),
}

fn read(path: &Path, bytes: &[u8]) -> Result<Gguf> {
    let mut r = Reader { path, bytes, at: 4 };
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(r.err(format!(
            "is GGUF version {version}; aldfit reads versions 2 and 3"
        )));
    }
    let n_tensors = r.u64()?;
    let n_kv = r.u64()?;
    let mut alignment = 32u64;
    let mut tokens = None;
    for _ in 0..n_kv {
        let key = r.string()?;
        let t = r.u32()?;
        let keep = matches!(key.as_str(), "general.alignment" | "tokenizer.ggml.tokens");
        match (key.as_str(), r.value(t, keep)?) {
            ("general.alignment", Some(Value::U64(a))) => alignment = a,
            ("tokenizer.ggml.tokens", Some(Value::Strings(s))) => tokens = Some(s),
            _ => {}
        }
    }
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(r.err(format!(
            "declares an alignment of {alignment}, not a power of two"
        )));
    }
    // Each tensor info takes 24 bytes at least.
    if n_tensors > (bytes.len() / 24) as u64 {
        return Err(r.err(format!(
            "declares {n_tensors} tensors, more than the file can describe"
        )));
    }
    let mut tensors = Vec::with_capacity(n_tensors as usize);
    for _ in 0..n_tensors {
        let name = r.string()?;
        let dims = r.u32()?;
        if dims > 8 {
            return Err(r.err(format!("gives tensor `{name}` {dims} dimensions")));
        }
        let mut shape = Vec::with_capacity(dims as usize);
        for _ in 0..dims {
            let d = usize::try_from(r.u64()?)
                .map_err(|_| r.err(format!("gives `{name}` a dimension past memory")))?;
            shape.push(d);
        }
        shape.reverse();
        let ggml = r.u32()?;
        let offset = r.u64()?;
        tensors.push(Info {
            name,
            shape,
            ggml,
            offset,
        });
    }
    let data = (r.at as u64).div_ceil(alignment) * alignment;
    let data = usize::try_from(data)
        .ok()
        .filter(|&d| d <= bytes.len())
        .ok_or_else(|| r.err("ends before its data section; truncated?"))?;
    Ok(Gguf {
        tensors,
        data,
        tokens,
    })
}

fn dtype_of(ggml: u32) -> std::result::Result<DType, String> {
    match ggml {
        0 => Ok(DType::F32),
        1 => Ok(DType::F16),
        30 => Ok(DType::BF16),
        t => Quant::of_ggml(t)
            .map(DType::Quant)
            .ok_or_else(|| format!("ggml type {t}")),
    }
}

fn type_name(ggml: u32) -> String {
    match dtype_of(ggml) {
        Ok(DType::Quant(q)) => q.name().to_owned(),
        Ok(d) => d.name().to_uppercase(),
        Err(e) => e,
    }
}

pub(super) fn list(path: &Path, bytes: &[u8]) -> Result<Vec<TensorEntry>> {
    Ok(read(path, bytes)?
        .tensors
        .into_iter()
        .map(|t| TensorEntry {
            dtype: type_name(t.ggml),
            name: t.name,
            shape: t.shape,
            file: path.to_owned(),
        })
        .collect())
}

/// The head, with the token strings by id when the file has a vocabulary.
pub(super) fn locate(path: &Path, file: Bytes, tensor: Option<&str>) -> Result<Located> {
    let g = read(path, file.as_slice())?;
    let pairs: Vec<(String, Vec<usize>)> = g
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    let has = |n: &str| g.tensors.iter().any(|t| t.name == n);
    let preferred = [
        ("output.weight", Choice::KnownName),
        ("token_embd.weight", Choice::Embedding),
    ]
    .into_iter()
    .find(|(n, _)| has(n))
    .map(|(n, c)| (n.to_owned(), c));
    let (name, choice) = super::pick(path, &pairs, tensor, preferred)?;
    let t = g
        .tensors
        .iter()
        .find(|t| t.name == name)
        .expect("resolved names are in the file");
    let dtype = dtype_of(t.ggml);
    let cols = t.shape.last().copied().unwrap_or(1);
    let rows = t
        .shape
        .iter()
        .rev()
        .skip(1)
        .try_fold(1usize, |n, &d| n.checked_mul(d));
    let len = dtype
        .as_ref()
        .ok()
        .and_then(|d| d.row_bytes(cols))
        .zip(rows)
        .and_then(|(b, rows)| b.checked_mul(rows))
        .unwrap_or(usize::MAX);
    let start = usize::try_from(t.offset)
        .ok()
        .and_then(|o| o.checked_add(g.data))
        .unwrap_or(usize::MAX);
    let end = start.saturating_add(len);
    Ok(Located {
        path: path.to_owned(),
        file,
        name,
        shape: t.shape.clone(),
        dtype,
        data: start.min(end)..end,
        choice,
        fortran: false,
        labels: g.tokens.map(std::sync::Arc::new),
    })
}
