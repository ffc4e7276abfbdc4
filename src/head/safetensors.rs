//! safetensors files and sharded checkpoints (`*.safetensors.index.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ::safetensors::tensor::{Dtype, Metadata};
use ::safetensors::SafeTensors;

use super::{choose, describe_tensors, map, Bytes, DType, Located, TensorEntry};
use crate::error::{Error, Result};

/// The header is an 8-byte little-endian length followed by JSON starting with `{`.
pub(super) fn looks_like_safetensors(bytes: &[u8]) -> bool {
    bytes.len() >= 9 && bytes[8] == b'{'
}

fn metadata(path: &Path, bytes: &[u8]) -> Result<(usize, Metadata)> {
    check_header(path, bytes)?;
    SafeTensors::read_metadata(bytes).map_err(|e| Error::Format {
        path: path.to_owned(),
        msg: format!("not a valid safetensors file: {e}"),
    })
}

/// The largest header the safetensors crate accepts.
const MAX_HEADER: usize = 100_000_000;

/// One tensor's entry in the JSON header, as the format defines it.
#[derive(serde::Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

/// The header's top-level entries in file order, duplicates kept: serde_json's maps keep the
/// last of two equal keys, and the crate then reports the lost tensor's bytes as a gap.
struct Entries(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object of tensors")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Entries, A::Error> {
                let mut all = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    all.push(entry);
                }
                Ok(Entries(all))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Checks the header the way the crate does, but says which tensor is wrong and how, so that no
/// error of the crate's own (`TensorInvalidInfo`, `ValidationOverflow`) reaches a user.
fn check_header(path: &Path, bytes: &[u8]) -> Result<()> {
    let bad = |msg: String| Error::Format {
        path: path.to_owned(),
        msg,
    };
    let tensor = |name: &str, msg: String| Error::Tensor {
        path: path.to_owned(),
        tensor: name.to_owned(),
        msg,
    };
    let Some(len) = bytes.get(..8) else {
        return Err(bad(format!(
            "is {} bytes long, too short for a safetensors header; truncated?",
            bytes.len()
        )));
    };
    let declared = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    let rest = bytes.len() - 8;
    if declared > MAX_HEADER as u64 {
        return Err(bad(format!(
            "declares a header of {declared} bytes, more than the 100 MB safetensors allows; \
             the file is corrupt or not safetensors"
        )));
    }
    let n = declared as usize;
    if n > rest {
        return Err(bad(format!(
            "declares a header of {n} bytes but only {rest} follow; the file is truncated"
        )));
    }
    let text = std::str::from_utf8(&bytes[8..8 + n]).map_err(|e| {
        bad(format!(
            "the header is not UTF-8 text ({e}); the file is corrupt"
        ))
    })?;
    let Entries(entries) = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "the header is not the JSON safetensors writes: {e}"
        ))
    })?;
    let mut seen = std::collections::HashSet::new();
    let mut spans = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        if !seen.insert(name.clone()) {
            return Err(tensor(
                &name,
                "is named twice in the header; the file is corrupt".into(),
            ));
        }
        if name == "__metadata__" {
            continue;
        }
        let (start, end) = entry_span(value, rest).map_err(|msg| tensor(&name, msg))?;
        spans.push((start, end, name));
    }
    let at = check_spans(&mut spans).map_err(|(name, msg)| tensor(&name, msg))?;
    let data = rest - n;
    if at != data {
        return Err(bad(format!(
            "its tensors take {at} bytes but {data} follow the header; the file is {}",
            if at > data {
                "truncated"
            } else {
                "longer than its header says (corrupt?)"
            }
        )));
    }
    Ok(())
}

/// The tensors' data, in order of offset, must tile the data section: no overlap, no gap.
/// Returns where the last one ends; an error names the tensor where the tiling breaks.
fn check_spans(
    spans: &mut [(usize, usize, String)],
) -> std::result::Result<usize, (String, String)> {
    spans.sort();
    let mut at = 0usize;
    let mut before = "the start of the data".to_owned();
    for (start, end, name) in spans.iter() {
        if *start != at {
            let how = if *start < at {
                "overlaps"
            } else {
                "leaves a gap after"
            };
            return Err((
                name.clone(),
                format!(
                    "{how} {before} (its data starts at byte {start}, not {at}); the header is \
                     corrupt"
                ),
            ));
        }
        at = *end;
        before = format!("tensor `{name}`");
    }
    Ok(at)
}

/// The data span of one header entry, checked against its dtype and shape: the bytes it needs
/// must be what its offsets span, and no more than the file holds (`rest` bytes).
fn entry_span(
    value: serde_json::Value,
    rest: usize,
) -> std::result::Result<(usize, usize), String> {
    let e: RawEntry = serde_json::from_value(value).map_err(|e| {
        format!("has a header entry that is not {{dtype, shape, data_offsets}}: {e}")
    })?;
    let dtype: Dtype = serde_json::from_value(serde_json::Value::String(e.dtype.clone()))
        .map_err(|_| format!("has an unknown dtype {:?}", e.dtype))?;
    let (start, end) = e.data_offsets;
    let needed = e
        .shape
        .iter()
        .try_fold(dtype.bitsize(), |n, &d| n.checked_mul(d))
        .map(|bits| bits.div_ceil(8))
        .filter(|&b| b <= rest)
        .ok_or_else(|| format!("has shape {:?}, larger than the whole file", e.shape))?;
    if start > end || end - start != needed {
        return Err(format!(
            "has shape {:?} of {}, which takes {needed} bytes, but its data_offsets [{start}, \
             {end}] span {}; the header is corrupt",
            e.shape,
            e.dtype,
            end as i128 - start as i128
        ));
    }
    Ok((start, end))
}

fn dtype_of(d: Dtype) -> std::result::Result<DType, String> {
    match d {
        Dtype::F32 => Ok(DType::F32),
        Dtype::F16 => Ok(DType::F16),
        Dtype::BF16 => Ok(DType::BF16),
        other => Err(format!("{other:?}")),
    }
}

/// Tensors in file order (by data offset), which is what "the last 2-D tensor" refers to.
/// `(name, shape, dtype, data offsets)`.
type Entry = (String, Vec<usize>, Dtype, (usize, usize));

fn ordered(meta: &Metadata) -> Vec<Entry> {
    let infos = meta.tensors();
    meta.offset_keys()
        .into_iter()
        .map(|name| {
            let info = infos[&name];
            (name, info.shape.clone(), info.dtype, info.data_offsets)
        })
        .collect()
}

pub(super) fn list(path: &Path, bytes: &[u8]) -> Result<Vec<TensorEntry>> {
    let (_, meta) = metadata(path, bytes)?;
    Ok(ordered(&meta)
        .into_iter()
        .map(|(name, shape, dtype, _)| TensorEntry {
            name,
            shape,
            dtype: format!("{dtype:?}"),
            file: path.to_owned(),
        })
        .collect())
}

pub(super) fn locate(path: &Path, file: Bytes, tensor: Option<&str>) -> Result<Located> {
    let (header, meta) = metadata(path, file.as_slice())?;
    let tensors = ordered(&meta);
    let pairs: Vec<(String, Vec<usize>)> =
        tensors.iter().map(|t| (t.0.clone(), t.1.clone())).collect();
    let (name, choice) = super::pick(path, &pairs, tensor, None)?;
    let Some((_, shape, dtype, (start, end))) = tensors.iter().find(|t| t.0 == name) else {
        return Err(Error::NoSuchTensor {
            path: path.to_owned(),
            name,
            available: describe_tensors(&pairs),
        });
    };
    let base = 8 + header;
    Ok(Located {
        path: path.to_owned(),
        file,
        name,
        shape: shape.clone(),
        dtype: dtype_of(*dtype),
        data: base + start..base + end,
        choice,
        fortran: false,
        labels: None,
    })
}

#[derive(serde::Deserialize)]
struct Index {
    weight_map: BTreeMap<String, String>,
}

fn read_index(path: &Path) -> Result<Index> {
    let text = super::read_text(path)?;
    serde_json::from_str(&text).map_err(|e| Error::Format {
        path: path.to_owned(),
        msg: format!(
            "not a safetensors index (expected {{\"weight_map\": {{tensor: shard}}}}): {e}"
        ),
    })
}

/// The shard `shard` of `index`, inside the index's folder.
fn shard_path(index: &Path, shard: &str) -> Result<PathBuf> {
    super::inside_folder(index, shard)
}

/// Every tensor of every shard, shard by shard in the order the shards are named.
pub(super) fn list_sharded(index_path: &Path) -> Result<Vec<TensorEntry>> {
    let index = read_index(index_path)?;
    let mut shards: Vec<&String> = index.weight_map.values().collect();
    shards.sort();
    shards.dedup();
    let mut all = Vec::new();
    for shard in shards {
        let p = shard_path(index_path, shard)?;
        let file = map(&p)?;
        all.extend(super::list_file(&p, &file)?);
    }
    Ok(all)
}

pub(super) fn locate_sharded(index_path: &Path, tensor: Option<&str>) -> Result<Located> {
    let name = match tensor {
        Some(n) => n.to_owned(),
        None => {
            // Choosing needs shapes, which live in the shards' headers.
            let all = list_sharded(index_path)?;
            let pairs: Vec<(String, Vec<usize>)> = all
                .iter()
                .map(|t| (t.name.clone(), t.shape.clone()))
                .collect();
            match choose(&pairs) {
                Some((n, c)) => {
                    let shard = &index_of(index_path, n)?;
                    let mut located = super::locate_file(shard, map(shard)?, Some(n))?;
                    located.choice = c;
                    return Ok(located);
                }
                None => {
                    return Err(Error::NoHead {
                        path: index_path.to_owned(),
                        available: describe_tensors(&pairs),
                    })
                }
            }
        }
    };
    let shard = index_of(index_path, &name)?;
    super::locate_file(&shard, map(&shard)?, Some(&name))
}

fn index_of(index_path: &Path, name: &str) -> Result<PathBuf> {
    let index = read_index(index_path)?;
    match index.weight_map.get(name) {
        Some(shard) => shard_path(index_path, shard),
        None => {
            let names: Vec<(String, Vec<usize>)> = index
                .weight_map
                .keys()
                .map(|k| (k.clone(), vec![]))
                .collect();
            Err(Error::NoSuchTensor {
                path: index_path.to_owned(),
                name: name.to_owned(),
                available: names
                    .iter()
                    .map(|n| n.0.as_str())
                    .take(12)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }
}
