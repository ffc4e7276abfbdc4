//! PyTorch checkpoints (`.pt`, `.pth`, `.bin`), in both of `torch.save`'s formats, memory-mapped:
//! the pickle says which storage and which view each tensor is, and the storages' bytes are used
//! where they lie in the file.
//!
//! * zip (torch ≥ 1.6): `ARCHIVE/data.pkl` and one stored (uncompressed) entry per storage,
//!   `ARCHIVE/data/KEY`;
//! * legacy (torch < 1.6; torchvision's older model zoo): five pickles back to back (magic
//!   number, protocol version, system info, the object, the list of storage keys), then each
//!   storage in that order as an 8-byte element count and its raw bytes.
//!
//! The pickles are read by [`super::pickle`], which runs nothing.

use std::collections::HashMap;
use std::io::Read;
use std::ops::Range;
use std::path::Path;

use super::pickle::{self, Tensor, Value};
use super::{Bytes, DType, Located, TensorEntry};
use crate::error::{Error, Result};

/// The legacy format's first pickle: protocol 2, then LONG1 of 0x1950a86a20f9469cfc6c.
const LEGACY_MAGIC: &[u8] = &[
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

/// Which of torch's formats `bytes` is in, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Zip,
    Legacy,
    /// torch < 0.4's tar archive: refused with the conversion.
    Tar,
}

pub(super) fn detect(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"PK\x03\x04") {
        Some(Format::Zip)
    } else if bytes.starts_with(LEGACY_MAGIC) {
        Some(Format::Legacy)
    } else if bytes.get(257..262) == Some(b"ustar") {
        Some(Format::Tar)
    } else {
        None
    }
}

/// A checkpoint's tensors (flattened names, file order) and each storage's bytes in the file.
struct Checkpoint {
    tensors: Vec<(String, Tensor)>,
    storages: HashMap<String, Range<usize>>,
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_owned(),
        msg: msg.into(),
    }
}

fn read(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    match detect(bytes) {
        Some(Format::Zip) => read_zip(path, bytes),
        Some(Format::Legacy) => read_legacy(path, bytes),
        Some(Format::Tar) => Err(bad(
            path,
            format!(
                "is a PyTorch checkpoint in the tar format (torch < 0.4), which aldfit does not \
                 read; convert it once with: python -c \"import torch; torch.save(torch.load('{0}', \
                 weights_only=False), '{0}.pt')\"",
                path.display()
            ),
        )),
        None => Err(bad(path, "is not a PyTorch checkpoint")),
    }
}

fn read_zip(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    let zip_err = |e: zip::result::ZipError| {
        bad(
            path,
            format!("is a zip file but not a readable one ({e}); truncated?"),
        )
    };
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_err)?;
    let names: Vec<String> = (0..z.len())
        .filter_map(|i| {
            z.name_for_index(i)
                .and_then(|n| n.ok())
                .map(|n| n.into_owned())
        })
        .collect();
    let Some(prefix) = names
        .iter()
        .filter_map(|n| n.strip_suffix("data.pkl"))
        .filter(|p| p.is_empty() || p.ends_with('/'))
        .min_by_key(|p| p.len())
        .map(str::to_owned)
    else {
        return Err(bad(
            path,
            "is a zip file without a data.pkl: not a PyTorch checkpoint (a .keras file? \
             export the weights to safetensors or .npy)",
        ));
    };
    let small =
        |z: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>, name: &str| -> Result<Option<Vec<u8>>> {
            let Some(i) = z.index_for_name(name) else {
                return Ok(None);
            };
            let f = z.by_index(i).map_err(zip_err)?;
            if f.size() > bytes.len() as u64 {
                return Err(bad(
                    path,
                    format!("{name} claims {} bytes, more than the file", f.size()),
                ));
            }
            let mut out = Vec::with_capacity(f.size() as usize);
            f.take(bytes.len() as u64)
                .read_to_end(&mut out)
                .map_err(|e| bad(path, format!("cannot read {name} in it: {e}")))?;
            Ok(Some(out))
        };
    if let Some(order) = small(&mut z, &format!("{prefix}byteorder"))? {
        if order.trim_ascii() != b"little" {
            return Err(bad(
                path,
                "holds big-endian storages, which aldfit does not read",
            ));
        }
    }
    let pkl = small(&mut z, &format!("{prefix}data.pkl"))?.unwrap_or_default();
    let (object, _) =
        pickle::read(&pkl).map_err(|e| bad(path, format!("{prefix}data.pkl: {e}")))?;
    let tensors = flatten(&object);
    let storages = zip_storages(path, bytes, &mut z, &prefix, &tensors)?;
    Ok(Checkpoint { tensors, storages })
}

/// Where each storage the tensors use lies in the file: its zip entry, which must be stored
/// (not compressed) so that its bytes can be used in place.
fn zip_storages(
    path: &Path,
    bytes: &[u8],
    z: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    prefix: &str,
    tensors: &[(String, Tensor)],
) -> Result<HashMap<String, Range<usize>>> {
    let zip_err = |e: zip::result::ZipError| {
        bad(
            path,
            format!("is a zip file but not a readable one ({e}); truncated?"),
        )
    };
    let mut storages = HashMap::new();
    for (_, t) in tensors {
        if storages.contains_key(&t.key) {
            continue;
        }
        let name = format!("{prefix}data/{}", t.key);
        let i = z
            .index_for_name(&name)
            .ok_or_else(|| bad(path, format!("names storage {} but holds no {name}", t.key)))?;
        let f = z.by_index_raw(i).map_err(zip_err)?;
        if f.compression() != zip::CompressionMethod::Stored {
            return Err(bad(
                path,
                format!(
                    "stores {name} compressed; re-save it with torch.save, which stores it plain"
                ),
            ));
        }
        let start = f
            .data_start()
            .ok_or_else(|| bad(path, format!("{name} has no data offset")))?;
        let end = start
            .checked_add(f.size())
            .filter(|&e| e <= bytes.len() as u64);
        let end = end.ok_or_else(|| {
            bad(
                path,
                format!("{name} runs past the end of the file; truncated?"),
            )
        })?;
        storages.insert(t.key.clone(), start as usize..end as usize);
    }
    Ok(storages)
}

fn read_legacy(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    let mut at = 0;
    let mut next = |what: &str| -> Result<Value> {
        let (v, used) =
            pickle::read(&bytes[at..]).map_err(|e| bad(path, format!("its {what} pickle: {e}")))?;
        at += used;
        Ok(v)
    };
    next("magic-number")?;
    match next("protocol-version")? {
        Value::Int(1001) => {}
        other => {
            return Err(bad(
                path,
                format!("has legacy protocol version {other:?}; aldfit reads torch's 1001"),
            ))
        }
    }
    if let Value::Dict(info) = next("system-information")? {
        let little = info
            .iter()
            .find(|(k, _)| *k == Value::Str("little_endian".into()));
        if matches!(little, Some((_, Value::Bool(false)))) {
            return Err(bad(
                path,
                "was saved big-endian, which aldfit does not read",
            ));
        }
    }
    let object = next("object")?;
    let Value::List(keys) = next("storage-key list")? else {
        return Err(bad(path, "its storage-key pickle is not a list"));
    };
    let mut classes = HashMap::new();
    walk_storages(&object, &mut classes);
    let mut storages = HashMap::new();
    for key in keys {
        let key = match key {
            Value::Str(s) => s,
            other => return Err(bad(path, format!("lists a storage key {other:?}"))),
        };
        let class = classes
            .get(&key)
            .ok_or_else(|| bad(path, format!("lists storage {key}, which no tensor uses")))?;
        let size = element_size(class)
            .ok_or_else(|| bad(path, format!("storage {key} is a {class}, of unknown size")))?;
        let count = bytes
            .get(at..at + 8)
            .ok_or_else(|| bad(path, format!("ends before storage {key}; truncated?")))?;
        let numel = u64::from_le_bytes(count.try_into().expect("8 bytes"));
        let start = at + 8;
        let end = numel
            .checked_mul(size as u64)
            .and_then(|n| n.checked_add(start as u64))
            .filter(|&e| e <= bytes.len() as u64)
            .ok_or_else(|| {
                bad(
                    path,
                    format!("storage {key} of {numel} elements runs past the end; truncated?"),
                )
            })? as usize;
        storages.insert(key, start..end);
        at = end;
    }
    Ok(Checkpoint {
        tensors: flatten(&object),
        storages,
    })
}

/// The storage class of every storage the object uses, wherever it sits.
fn walk_storages(v: &Value, into: &mut HashMap<String, String>) {
    match v {
        Value::Tensor(t) => {
            into.entry(t.key.clone()).or_insert_with(|| t.class.clone());
        }
        Value::Storage { key, class, .. } => {
            into.entry(key.clone()).or_insert_with(|| class.clone());
        }
        Value::Tuple(items) | Value::List(items) => {
            items.iter().for_each(|i| walk_storages(i, into));
        }
        Value::Dict(items) => items.iter().for_each(|(k, v)| {
            walk_storages(k, into);
            walk_storages(v, into);
        }),
        _ => {}
    }
}

/// Tensors under string keys, their names joined with `.` through nested dicts (a training
/// checkpoint's `state_dict` or `model`), in the order the pickle lists them.
fn flatten(v: &Value) -> Vec<(String, Tensor)> {
    fn walk(v: &Value, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        match v {
            Value::Tensor(t) => out.push((prefix.to_owned(), t.clone())),
            Value::Dict(items) => {
                for (k, v) in items {
                    let key = match k {
                        Value::Str(s) => s.clone(),
                        Value::Int(i) => i.to_string(),
                        _ => continue,
                    };
                    let name = if prefix.is_empty() {
                        key
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(v, &name, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, "", &mut out);
    out
}

fn element_size(class: &str) -> Option<usize> {
    Some(match class {
        "DoubleStorage" | "LongStorage" | "ComplexFloatStorage" => 8,
        "FloatStorage" | "IntStorage" | "QInt32Storage" => 4,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "CharStorage" | "ByteStorage" | "BoolStorage" | "QInt8Storage" | "QUInt8Storage" => 1,
        "ComplexDoubleStorage" => 16,
        _ => return None,
    })
}

fn dtype_of(class: &str) -> std::result::Result<DType, String> {
    match class {
        "FloatStorage" => Ok(DType::F32),
        "HalfStorage" => Ok(DType::F16),
        "BFloat16Storage" => Ok(DType::BF16),
        "DoubleStorage" => Ok(DType::F64),
        other => Err(other.trim_end_matches("Storage").to_owned()),
    }
}

pub(super) fn list(path: &Path, bytes: &[u8]) -> Result<Vec<TensorEntry>> {
    Ok(read(path, bytes)?
        .tensors
        .into_iter()
        .map(|(name, t)| TensorEntry {
            name,
            shape: t.shape,
            dtype: t.class.trim_end_matches("Storage").to_owned(),
            file: path.to_owned(),
        })
        .collect())
}

pub(super) fn locate(path: &Path, file: Bytes, tensor: Option<&str>) -> Result<Located> {
    let ck = read(path, file.as_slice())?;
    let pairs: Vec<(String, Vec<usize>)> = ck
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.shape.clone()))
        .collect();
    let (name, choice) = super::pick(path, &pairs, tensor, None)?;
    let (_, t) = ck
        .tensors
        .iter()
        .find(|(n, _)| *n == name)
        .expect("resolved names are in the checkpoint");
    let tensor_err = |msg: String| Error::Tensor {
        path: path.to_owned(),
        tensor: name.clone(),
        msg,
    };
    let dtype = dtype_of(&t.class);
    let size = element_size(&t.class).unwrap_or(1);
    let fortran = match (t.shape.as_slice(), t.stride.as_slice()) {
        ([r, c], [sr, sc]) if (*sc == 1 || *c <= 1) && (*sr == *c || *r <= 1) => false,
        ([r, c], [sr, sc]) if (*sr == 1 || *r <= 1) && (*sc == *r || *c <= 1) => true,
        ([_, _], stride) => {
            return Err(tensor_err(format!(
                "is a strided view (stride {stride:?}) of its storage; save a contiguous copy \
                 (tensor.contiguous())"
            )))
        }
        _ => false,
    };
    let storage = ck
        .storages
        .get(&t.key)
        .ok_or_else(|| tensor_err(format!("uses storage {}, which the file lacks", t.key)))?;
    let numel = t.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let range = numel
        .and_then(|n| n.checked_mul(size))
        .and_then(|len| {
            let start = storage.start.checked_add(t.offset.checked_mul(size)?)?;
            Some(start..start.checked_add(len)?)
        })
        .filter(|r| r.end <= storage.end)
        .ok_or_else(|| {
            tensor_err(format!(
                "of shape {:?} at offset {} runs past its storage ({} bytes); the file is corrupt",
                t.shape,
                t.offset,
                storage.len()
            ))
        })?;
    Ok(Located {
        path: path.to_owned(),
        file,
        name,
        shape: t.shape.clone(),
        dtype,
        data: range,
        choice,
        fortran,
        labels: None,
    })
}
