//! ONNX models: initializers and Constant nodes (raw_data, float_data, f16/bf16 in int32_data,
//! external data files), decoded with prost from the subset of onnx.proto that holds them. The
//! classifier is found by walking back from the graph's output through shape and elementwise
//! ops to the last Gemm or MatMul whose weight is constant; the op says the orientation (a
//! MatMul's weight and a Gemm's without transB are stored [features, classes]).
//!
//! The model is decoded from the memory map as `bytes::Bytes`, so a tensor's raw_data is a slice
//! of the map, not a copy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;

use super::{Bytes, Choice, DType, Located, TensorEntry};
use crate::error::{Error, Result};

// The messages and field numbers of onnx.proto (onnx/onnx, proto2/proto3 compatible), as far
// as tensors and the graph's wiring go; every other field is skipped by prost.

#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
}

#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, optional, tag = "4")]
    op_type: Option<String>,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct AttributeProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(int64, optional, tag = "3")]
    i: Option<i64>,
    #[prost(message, optional, tag = "5")]
    t: Option<TensorProto>,
}

#[derive(Clone, PartialEq, Message)]
struct ValueInfoProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, optional, tag = "2")]
    data_type: Option<i32>,
    #[prost(float, repeated, tag = "4")]
    float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    int32_data: Vec<i32>,
    #[prost(string, optional, tag = "8")]
    name: Option<String>,
    #[prost(bytes = "bytes", optional, tag = "9")]
    raw_data: Option<bytes::Bytes>,
    #[prost(double, repeated, tag = "10")]
    double_data: Vec<f64>,
    #[prost(message, repeated, tag = "13")]
    external_data: Vec<StringStringEntryProto>,
    #[prost(int32, optional, tag = "14")]
    data_location: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct StringStringEntryProto {
    #[prost(string, optional, tag = "1")]
    key: Option<String>,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

/// ONNX's `TensorProto.DataType` names, for listing.
fn type_name(t: i32) -> String {
    match t {
        1 => "FLOAT".into(),
        2 => "UINT8".into(),
        3 => "INT8".into(),
        6 => "INT32".into(),
        7 => "INT64".into(),
        10 => "FLOAT16".into(),
        11 => "DOUBLE".into(),
        16 => "BFLOAT16".into(),
        other => format!("type {other}"),
    }
}

fn dtype_of(t: i32) -> std::result::Result<DType, String> {
    match t {
        1 => Ok(DType::F32),
        10 => Ok(DType::F16),
        11 => Ok(DType::F64),
        16 => Ok(DType::BF16),
        other => Err(type_name(other)),
    }
}

/// Is an ONNX model: by name only, since a protobuf has no magic number.
pub(super) fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_owned(),
        msg: msg.into(),
    }
}

/// Every constant tensor of the graph by name (initializers, then Constant nodes' values).
fn constants(graph: &GraphProto) -> Vec<(String, TensorProto)> {
    let mut out: Vec<(String, TensorProto)> = graph
        .initializer
        .iter()
        .map(|t| (t.name.clone().unwrap_or_default(), t.clone()))
        .collect();
    for n in &graph.node {
        if n.op_type.as_deref() != Some("Constant") {
            continue;
        }
        let value = n
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some("value"))
            .and_then(|a| a.t.clone());
        if let (Some(t), Some(name)) = (value, n.output.first()) {
            out.push((name.clone(), t));
        }
    }
    out
}

fn decode(path: &Path, file: &Bytes) -> Result<GraphProto> {
    let buf = match file {
        Bytes::Mapped(m) => bytes::Bytes::from_owner(MapOwner(m.clone())),
        other => bytes::Bytes::copy_from_slice(other.as_slice()),
    };
    let model = ModelProto::decode(buf).map_err(|e| {
        bad(
            path,
            format!("is not a readable ONNX model ({e}); truncated?"),
        )
    })?;
    model
        .graph
        .ok_or_else(|| bad(path, "is an ONNX model without a graph"))
}

/// Lets `bytes::Bytes` hold the memory map alive.
struct MapOwner(Arc<memmap2::Mmap>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn shape_of(t: &TensorProto) -> Vec<usize> {
    t.dims.iter().map(|&d| d.max(0) as usize).collect()
}

pub(super) fn list(path: &Path, file: &Bytes) -> Result<Vec<TensorEntry>> {
    let graph = decode(path, file)?;
    Ok(constants(&graph)
        .into_iter()
        .map(|(name, t)| TensorEntry {
            name,
            shape: shape_of(&t),
            dtype: type_name(t.data_type.unwrap_or(0)),
            file: path.to_owned(),
        })
        .collect())
}

/// Ops a classifier's output passes through after its last matrix product, and which of their
/// inputs carries the data on.
fn passes_through(op: &str) -> bool {
    matches!(
        op,
        "Softmax"
            | "LogSoftmax"
            | "Sigmoid"
            | "Reshape"
            | "Flatten"
            | "Squeeze"
            | "Unsqueeze"
            | "Transpose"
            | "Identity"
            | "Add"
            | "Cast"
            | "Dropout"
    )
}

/// The constant weight of the classifier and whether it is stored [features, classes]: walking
/// back from the first graph output to the last Gemm or MatMul with a constant weight.
fn classifier(graph: &GraphProto, names: &HashMap<&str, usize>) -> Option<(String, bool)> {
    let producer: HashMap<&str, &NodeProto> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();
    let mut at = graph.output.first()?.name.clone()?;
    for _ in 0..64 {
        let node = producer.get(at.as_str())?;
        let op = node.op_type.as_deref().unwrap_or("");
        let constant = |i: usize| node.input.get(i).filter(|n| names.contains_key(n.as_str()));
        match op {
            "Gemm" => {
                let w = constant(1)?;
                let trans_b = node
                    .attribute
                    .iter()
                    .any(|a| a.name.as_deref() == Some("transB") && a.i == Some(1));
                return Some((w.clone(), !trans_b));
            }
            "MatMul" => {
                if let Some(w) = constant(1) {
                    return Some((w.clone(), true));
                }
                // W·X: the constant first, already [classes, features].
                return constant(0).map(|w| (w.clone(), false));
            }
            _ if passes_through(op) => {
                // Follow the input that is not a constant (a bias, a shape).
                at = node
                    .input
                    .iter()
                    .find(|i| !i.is_empty() && !names.contains_key(i.as_str()))?
                    .clone();
            }
            _ => return None,
        }
    }
    None
}

/// The bytes of tensor `t`: a slice of the model's map (raw_data), a slice of an external data
/// file (mapped), or the typed fields converted to little-endian bytes.
fn tensor_bytes(
    path: &Path,
    file: &Bytes,
    name: &str,
    t: &TensorProto,
) -> Result<(PathBuf, Bytes, std::ops::Range<usize>)> {
    let err = |msg: String| Error::Tensor {
        path: path.to_owned(),
        tensor: name.to_owned(),
        msg,
    };
    if t.data_location == Some(1) {
        let get = |k: &str| {
            t.external_data
                .iter()
                .find(|e| e.key.as_deref() == Some(k))
                .and_then(|e| e.value.clone())
        };
        let location =
            get("location").ok_or_else(|| err("is external but names no file".into()))?;
        let ext = super::inside_folder(path, &location)?;
        let mapped = super::map(&ext)?;
        let num = |k: &str| -> Result<Option<usize>> {
            get(k)
                .map(|v| {
                    v.parse::<usize>()
                        .map_err(|_| err(format!("has external {k} {v:?}")))
                })
                .transpose()
        };
        let offset = num("offset")?.unwrap_or(0);
        let len = match num("length")? {
            Some(l) => l,
            None => mapped.as_slice().len().saturating_sub(offset),
        };
        let end = offset.saturating_add(len);
        return Ok((ext, mapped, offset..end));
    }
    if let Some(raw) = t.raw_data.as_ref().filter(|r| !r.is_empty()) {
        // A slice of the map: its place in the file.
        let base = file.as_slice().as_ptr() as usize;
        let start = (raw.as_ptr() as usize).wrapping_sub(base);
        if start <= file.as_slice().len() && start + raw.len() <= file.as_slice().len() {
            return Ok((path.to_owned(), file.clone(), start..start + raw.len()));
        }
        let owned = Bytes::Owned(Arc::new(raw.to_vec()));
        return Ok((path.to_owned(), owned, 0..raw.len()));
    }
    let bytes: Vec<u8> = match t.data_type.unwrap_or(0) {
        1 => t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        11 => t.double_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        // f16 and bf16 travel as one uint16 per int32.
        10 | 16 => t
            .int32_data
            .iter()
            .flat_map(|&v| (v as u16).to_le_bytes())
            .collect(),
        _ => Vec::new(),
    };
    let n = bytes.len();
    Ok((path.to_owned(), Bytes::Owned(Arc::new(bytes)), 0..n))
}

pub(super) fn locate(path: &Path, file: Bytes, tensor: Option<&str>) -> Result<Located> {
    let graph = decode(path, &file)?;
    let consts = constants(&graph);
    let index: HashMap<&str, usize> = consts
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    let pairs: Vec<(String, Vec<usize>)> = consts
        .iter()
        .map(|(n, t)| (n.clone(), shape_of(t)))
        .collect();
    let walked = classifier(&graph, &index);
    let preferred = walked.clone().map(|(w, _)| (w, Choice::Classifier));
    let (name, choice) = super::pick(path, &pairs, tensor, preferred)?;
    // The op's orientation holds for the weight it found, however it was named.
    let transposed = walked.is_some_and(|(w, t)| t && w == name);
    let t = &consts[index[name.as_str()]].1;
    let (data_path, data_file, range) = tensor_bytes(path, &file, &name, t)?;
    // A weight stored [features, classes] is the head's transpose: its rows are columns.
    let mut shape = shape_of(t);
    let transposed = transposed && shape.len() == 2;
    if transposed {
        shape.reverse();
    }
    Ok(Located {
        path: data_path,
        file: data_file,
        name,
        shape,
        dtype: dtype_of(t.data_type.unwrap_or(0)),
        data: range,
        choice,
        fortran: transposed,
        labels: None,
    })
}
