//! TFLite models: the flatbuffer `Model` of tensorflow/lite/schema/schema.fbs, read by a small
//! bounds-checked reader (the flatbuffers crate's accessors trust their input). The head is the
//! weight of the last FULLY_CONNECTED ([out, in] = [classes, features]), dequantised from int8
//! (per-tensor or per-channel scale and zero point) or taken from f16 through a DEQUANTIZE.
//! TFLite models are small: a dequantised head is held as f32 in memory.

use std::path::Path;
use std::sync::Arc;

use super::{Bytes, Choice, DType, Located, TensorEntry};
use crate::error::{Error, Result};

pub(super) fn is_tflite(bytes: &[u8]) -> bool {
    bytes.get(4..8) == Some(b"TFL3")
}

/// A table of the buffer: its position, and its vtable's field offsets.
#[derive(Clone, Copy)]
struct Table<'a> {
    buf: &'a [u8],
    at: usize,
}

type R<T> = std::result::Result<T, String>;

fn read<const N: usize>(buf: &[u8], at: usize) -> R<[u8; N]> {
    at.checked_add(N)
        .and_then(|end| buf.get(at..end))
        .map(|b| b.try_into().expect("N bytes"))
        .ok_or_else(|| format!("the flatbuffer points past its end (byte {at})"))
}

fn u32_at(buf: &[u8], at: usize) -> R<u32> {
    read::<4>(buf, at).map(u32::from_le_bytes)
}

impl<'a> Table<'a> {
    fn root(buf: &'a [u8]) -> R<Table<'a>> {
        let at = u32_at(buf, 0)? as usize;
        Ok(Table { buf, at })
    }

    /// Where field `id` lies, if present.
    fn field(&self, id: usize) -> R<Option<usize>> {
        let soffset = i32::from_le_bytes(read::<4>(self.buf, self.at)?);
        let vtable = (self.at as i64 - soffset as i64) as usize;
        let vlen = u16::from_le_bytes(read::<2>(self.buf, vtable)?) as usize;
        let slot = 4 + 2 * id;
        if slot + 2 > vlen {
            return Ok(None);
        }
        let off = u16::from_le_bytes(read::<2>(self.buf, vtable + slot)?) as usize;
        Ok((off != 0).then_some(self.at + off))
    }

    fn scalar<const N: usize>(&self, id: usize) -> R<Option<[u8; N]>> {
        self.field(id)?
            .map(|at| read::<N>(self.buf, at))
            .transpose()
    }

    fn u32(&self, id: usize) -> R<u32> {
        Ok(self.scalar::<4>(id)?.map_or(0, u32::from_le_bytes))
    }

    fn i32(&self, id: usize) -> R<i32> {
        Ok(self.scalar::<4>(id)?.map_or(0, i32::from_le_bytes))
    }

    fn i8(&self, id: usize) -> R<i8> {
        Ok(self.scalar::<1>(id)?.map_or(0, |b| b[0] as i8))
    }

    /// The target of an offset field (a table, vector or string).
    fn indirect(&self, id: usize) -> R<Option<usize>> {
        match self.field(id)? {
            None => Ok(None),
            Some(at) => {
                let to = at
                    .checked_add(u32_at(self.buf, at)? as usize)
                    .filter(|&t| t < self.buf.len())
                    .ok_or("a flatbuffer offset points past the end")?;
                Ok(Some(to))
            }
        }
    }

    fn table(&self, id: usize) -> R<Option<Table<'a>>> {
        Ok(self.indirect(id)?.map(|at| Table { buf: self.buf, at }))
    }

    /// A vector field: its element count and where its elements start.
    fn vector(&self, id: usize) -> R<Option<(usize, usize)>> {
        match self.indirect(id)? {
            None => Ok(None),
            Some(at) => Ok(Some((u32_at(self.buf, at)? as usize, at + 4))),
        }
    }

    fn bytes(&self, id: usize) -> R<&'a [u8]> {
        match self.vector(id)? {
            None => Ok(&[]),
            Some((n, at)) => at
                .checked_add(n)
                .and_then(|end| self.buf.get(at..end))
                .ok_or_else(|| "a flatbuffer vector runs past the end".into()),
        }
    }

    fn string(&self, id: usize) -> R<String> {
        Ok(String::from_utf8_lossy(self.bytes(id)?).into_owned())
    }

    /// Elements of a vector of 4- or 8-byte scalars.
    fn scalars<const N: usize>(&self, id: usize) -> R<Vec<[u8; N]>> {
        let Some((n, at)) = self.vector(id)? else {
            return Ok(Vec::new());
        };
        if n.saturating_mul(N) > self.buf.len() {
            return Err("a flatbuffer vector is longer than the file".into());
        }
        (0..n).map(|i| read::<N>(self.buf, at + i * N)).collect()
    }

    fn tables(&self, id: usize) -> R<Vec<Table<'a>>> {
        let Some((n, at)) = self.vector(id)? else {
            return Ok(Vec::new());
        };
        if n.saturating_mul(4) > self.buf.len() {
            return Err("a flatbuffer vector is longer than the file".into());
        }
        (0..n)
            .map(|i| {
                let p = at + 4 * i;
                let to = p + u32_at(self.buf, p)? as usize;
                Ok(Table {
                    buf: self.buf,
                    at: to,
                })
            })
            .collect()
    }
}

/// A tensor of the first subgraph, as the head needs it.
struct Tensor<'a> {
    name: String,
    shape: Vec<usize>,
    kind: i8,
    data: &'a [u8],
    scale: Vec<f32>,
    zero_point: Vec<i64>,
    quantized_dimension: i32,
}

/// TFLite's TensorType names.
fn type_name(kind: i8) -> String {
    match kind {
        0 => "FLOAT32".into(),
        1 => "FLOAT16".into(),
        2 => "INT32".into(),
        3 => "UINT8".into(),
        9 => "INT8".into(),
        10 => "FLOAT64".into(),
        other => format!("type {other}"),
    }
}

struct Graph<'a> {
    tensors: Vec<Tensor<'a>>,
    /// (builtin operator, inputs, outputs) in execution order.
    ops: Vec<(i32, Vec<i32>, Vec<i32>)>,
}

fn parse(buf: &[u8]) -> R<Graph<'_>> {
    let model = Table::root(buf)?;
    let codes: Vec<i32> = model
        .tables(1)?
        .iter()
        .map(|c| Ok(c.i32(3)?.max(c.i8(0)? as i32)))
        .collect::<R<_>>()?;
    let buffers = model.tables(4)?;
    let graph = model
        .tables(2)?
        .into_iter()
        .next()
        .ok_or("the model has no subgraph")?;
    let mut tensors = Vec::new();
    for t in graph.tables(0)? {
        let shape = t
            .scalars::<4>(0)?
            .into_iter()
            .map(|b| i32::from_le_bytes(b).max(0) as usize)
            .collect();
        let data = match buffers.get(t.u32(2)? as usize) {
            Some(b) => {
                if b.field(1)?.is_some() {
                    return Err(
                        "holds its buffers outside the flatbuffer (a model over 2 GB), \
                                which aldfit does not read"
                            .into(),
                    );
                }
                b.bytes(0)?
            }
            None => &[],
        };
        let (scale, zero_point, quantized_dimension) = match t.table(4)? {
            Some(q) => (
                q.scalars::<4>(2)?
                    .into_iter()
                    .map(f32::from_le_bytes)
                    .collect(),
                q.scalars::<8>(3)?
                    .into_iter()
                    .map(i64::from_le_bytes)
                    .collect(),
                q.i32(6)?,
            ),
            None => (Vec::new(), Vec::new(), 0),
        };
        tensors.push(Tensor {
            name: t.string(3)?,
            shape,
            kind: t.i8(1)?,
            data,
            scale,
            zero_point,
            quantized_dimension,
        });
    }
    let ints = |t: &Table, id| -> R<Vec<i32>> {
        Ok(t.scalars::<4>(id)?
            .into_iter()
            .map(i32::from_le_bytes)
            .collect())
    };
    let ops = graph
        .tables(3)?
        .iter()
        .map(|op| {
            let code = codes.get(op.u32(0)? as usize).copied().unwrap_or(-1);
            Ok((code, ints(op, 1)?, ints(op, 2)?))
        })
        .collect::<R<_>>()?;
    Ok(Graph { tensors, ops })
}

const DEQUANTIZE: i32 = 6;
const FULLY_CONNECTED: i32 = 9;

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_owned(),
        msg: msg.into(),
    }
}

pub(super) fn list(path: &Path, bytes: &[u8]) -> Result<Vec<TensorEntry>> {
    let g = parse(bytes).map_err(|e| bad(path, format!("is not a readable TFLite model: {e}")))?;
    Ok(g.tensors
        .iter()
        .filter(|t| !t.data.is_empty())
        .map(|t| TensorEntry {
            name: t.name.clone(),
            shape: t.shape.clone(),
            dtype: type_name(t.kind),
            file: path.to_owned(),
        })
        .collect())
}

/// The weight tensor of the last FULLY_CONNECTED, through a DEQUANTIZE if one makes it.
fn head_tensor(g: &Graph) -> Option<usize> {
    let (_, inputs, _) = g
        .ops
        .iter()
        .rev()
        .find(|(c, i, _)| *c == FULLY_CONNECTED && i.len() > 1)?;
    let w = usize::try_from(inputs[1]).ok()?;
    let made_by = g
        .ops
        .iter()
        .find(|(c, _, out)| *c == DEQUANTIZE && out.first() == Some(&inputs[1]));
    match made_by {
        Some((_, ins, _)) => usize::try_from(*ins.first()?).ok(),
        None => Some(w),
    }
}

/// `t`'s values as f32 little-endian bytes, dequantised where they are int8/uint8.
fn values(t: &Tensor) -> std::result::Result<(Vec<u8>, DType), String> {
    let n: usize = t.shape.iter().product();
    match t.kind {
        0 => Ok((t.data.to_vec(), DType::F32)),
        1 => Ok((t.data.to_vec(), DType::F16)),
        3 | 9 => {
            if t.scale.is_empty() {
                return Err("is quantised without a scale".into());
            }
            let rows = t.shape.first().copied().unwrap_or(1).max(1);
            let per_row = t.scale.len() > 1;
            if per_row && (t.quantized_dimension != 0 || t.scale.len() != rows) {
                return Err(format!(
                    "is quantised per channel along dimension {}, not per class",
                    t.quantized_dimension
                ));
            }
            if t.data.len() != n {
                return Err(format!("holds {} bytes for {n} values", t.data.len()));
            }
            let cols = n / rows;
            let out: Vec<u8> = t
                .data
                .iter()
                .enumerate()
                .flat_map(|(i, &q)| {
                    let c = if per_row { i / cols.max(1) } else { 0 };
                    let zp = t.zero_point.get(c).copied().unwrap_or(0);
                    let q = if t.kind == 9 {
                        q as i8 as i64
                    } else {
                        q as i64
                    };
                    ((q - zp) as f32 * t.scale[c]).to_le_bytes()
                })
                .collect();
            Ok((out, DType::F32))
        }
        other => Err(type_name(other)),
    }
}

pub(super) fn locate(path: &Path, file: Bytes, tensor: Option<&str>) -> Result<Located> {
    let g = parse(file.as_slice())
        .map_err(|e| bad(path, format!("is not a readable TFLite model: {e}")))?;
    let pairs: Vec<(String, Vec<usize>)> = g
        .tensors
        .iter()
        .filter(|t| !t.data.is_empty())
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    let preferred = head_tensor(&g)
        .and_then(|i| g.tensors.get(i))
        .filter(|t| !t.data.is_empty())
        .map(|t| (t.name.clone(), Choice::Classifier));
    let (name, choice) = super::pick(path, &pairs, tensor, preferred)?;
    let index = g
        .tensors
        .iter()
        .position(|t| t.name == name && !t.data.is_empty())
        .expect("picked names are in the model");
    let t = &g.tensors[index];
    let (bytes, dtype) = match values(t) {
        Ok((b, d)) => (b, Ok(d)),
        Err(why) => (Vec::new(), Err(why)),
    };
    let n = bytes.len();
    Ok(Located {
        path: path.to_owned(),
        file: Bytes::Owned(Arc::new(bytes)),
        name: t.name.clone(),
        shape: t.shape.clone(),
        dtype,
        data: 0..n,
        choice,
        fortran: false,
        labels: None,
    })
}
