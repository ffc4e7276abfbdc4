//! safetensors files and sharded checkpoints (`*.safetensors.index.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ::safetensors::tensor::{Dtype, Metadata};
use ::safetensors::SafeTensors;

use super::{choose, describe_tensors, map, Bytes, Choice, DType, Located, TensorEntry};
use crate::error::{Error, Result};

/// The header is an 8-byte little-endian length followed by JSON starting with `{`.
pub(super) fn looks_like_safetensors(bytes: &[u8]) -> bool {
    bytes.len() >= 9 && bytes[8] == b'{'
}

fn metadata(path: &Path, bytes: &[u8]) -> Result<(usize, Metadata)> {
    SafeTensors::read_metadata(bytes).map_err(|e| {
        let hint = match e {
            ::safetensors::SafeTensorError::MetadataIncompleteBuffer
            | ::safetensors::SafeTensorError::InvalidHeaderLength => {
                " (the file is shorter or longer than its header says: truncated or corrupt?)"
            }
            _ => "",
        };
        Error::Format {
            path: path.to_owned(),
            msg: format!("not a valid safetensors file: {e:?}{hint}"),
        }
    })
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
    let (name, choice) = match tensor {
        Some(name) => (name.to_owned(), Choice::Named),
        None => match choose(&pairs) {
            Some((n, c)) => (n.to_owned(), c),
            None => {
                return Err(Error::NoHead {
                    path: path.to_owned(),
                    available: describe_tensors(&pairs),
                })
            }
        },
    };
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

/// The shard `shard` of `index`, which must lie in the index's folder (or below it): an index
/// is data, and must not make aldfit read files elsewhere (absolute paths, `..`, links out).
fn shard_path(index: &Path, shard: &str) -> Result<PathBuf> {
    let folder = match index.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let outside = || Error::Format {
        path: index.to_owned(),
        msg: format!(
            "names the shard {shard:?}, which lies outside the checkpoint's folder; aldfit \
             reads only shards inside the folder of their index"
        ),
    };
    let rel = Path::new(shard);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(outside());
    }
    let path = folder.join(rel);
    // A link may still point out of the folder: compare where both really are.
    if let (Ok(real), Ok(base)) = (path.canonicalize(), folder.canonicalize()) {
        if !real.starts_with(&base) {
            return Err(outside());
        }
    }
    Ok(path)
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
        all.extend(list(&p, file.as_slice())?);
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
                    let mut located = locate(shard, map(shard)?, Some(n))?;
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
    locate(&shard, map(&shard)?, Some(&name))
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
