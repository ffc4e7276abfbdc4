//! Loading classifier heads: which tensor, which layout, converted to f32 rows on demand.
//!
//! A head is never copied whole: files are memory-mapped and the pipeline asks for a chunk of
//! rows at a time, converted from the stored dtype (and layout) into a caller's f32 buffer.

mod ggml;
mod gguf;
pub mod hf;
mod npy;
mod onnx;
mod pickle;
mod safetensors;
mod tflite;
mod torch;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub use npy::write_npy;

/// Element types a head may be stored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F16,
    BF16,
    F64,
    /// ggml's block quantisations (GGUF), dequantised as llama.cpp does.
    Quant(ggml::Quant),
}

impl DType {
    /// Bytes of one row of `cols` values; `None` where the row is not whole blocks (or past
    /// memory).
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        match self {
            DType::F32 => cols.checked_mul(4),
            DType::F16 | DType::BF16 => cols.checked_mul(2),
            DType::F64 => cols.checked_mul(8),
            DType::Quant(q) => {
                let (elems, bytes) = q.block();
                cols.is_multiple_of(elems)
                    .then(|| (cols / elems).checked_mul(bytes))?
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F64 => "f64",
            DType::Quant(q) => q.name(),
        }
    }
}

/// One tensor of a checkpoint, as `inspect` lists it.
#[derive(Clone, Debug)]
pub struct TensorEntry {
    pub name: String,
    pub shape: Vec<usize>,
    /// The dtype as the file names it (`F32`, `<f2`, `I64`, …).
    pub dtype: String,
    pub file: PathBuf,
}

/// How the analysed tensor was picked, so the CLI can say so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    Named,
    KnownName,
    OnlyMatrix,
    LastMatrix,
    Array,
    /// A language model's token embedding: with tied weights it is the output head.
    Embedding,
    /// The weight of an ONNX or TFLite graph's classifier, found from the graph's ops.
    Classifier,
}

impl Choice {
    pub fn reason(&self) -> &'static str {
        match self {
            Choice::Named => "named with --tensor",
            Choice::KnownName => "a known classifier-head name",
            Choice::OnlyMatrix => "the only 2-D tensor",
            Choice::LastMatrix => "the last 2-D tensor in the file; pass --tensor to pick another",
            Choice::Array => "the array in a .npy file",
            Choice::Classifier => {
                "the weight of the last matrix product before the model's output (ONNX \
                 Gemm/MatMul, TFLite FULLY_CONNECTED), in the orientation the op gives it"
            }
            Choice::Embedding => {
                "the token embedding, the output head of a language model with tied weights \
                 (there is no lm_head)"
            }
        }
    }
}

/// Names that checkpoints give their classifier heads, in order of preference.
pub const HEAD_NAMES: &[&str] = &[
    "fc.weight",
    "head.weight",
    "head.fc.weight",
    "classifier.weight",
    "classifier.1.weight",
    "_fc.weight",
    "lm_head.weight",
];

#[derive(Clone)]
enum Bytes {
    Mapped(Arc<Mmap>),
    Static(&'static [u8]),
    Owned(Arc<Vec<u8>>),
    /// Memory a caller owns and keeps alive (a numpy array, through the Python module).
    External(Arc<dyn AsRef<[u8]> + Send + Sync>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Static(s) => s,
            Bytes::Owned(v) => v,
            Bytes::External(e) => e.as_ref().as_ref(),
        }
    }
}

/// A 2-D head `[classes, features]`, backed by the file it came from.
#[derive(Clone)]
pub struct Head {
    /// The file that holds the tensor (a shard, for sharded checkpoints).
    pub path: PathBuf,
    pub tensor: String,
    pub choice: Choice,
    pub classes: usize,
    pub features: usize,
    pub dtype: DType,
    /// Stored `[features, classes]`: rows are gathered column-wise.
    pub transposed: bool,
    file: Bytes,
    data: std::ops::Range<usize>,
    /// Class names the file itself holds (a GGUF vocabulary), by class.
    pub embedded_labels: Option<Arc<Vec<String>>>,
    /// With `--classes`: the tensor's class of each row this head reads (sorted, distinct);
    /// `classes` is then their number.
    ids: Option<Arc<Vec<usize>>>,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("path", &self.path)
            .field("tensor", &self.tensor)
            .field("shape", &[self.classes, self.features])
            .field("dtype", &self.dtype)
            .field("transposed", &self.transposed)
            .finish()
    }
}

/// A language model's token embedding, which is its output head when the weights are tied (no
/// `lm_head`): chosen before falling back to "the last 2-D tensor", which in such a checkpoint is
/// some layer's projection.
pub const EMBEDDING_NAMES: &[&str] = &[
    "embed_tokens.weight",
    "wte.weight",
    "word_embeddings.weight",
    "tok_embeddings.weight",
    "token_embd.weight",
];

/// The bundled EfficientNet-Lite0 ImageNet head (assets/, Apache-2.0, see assets/NOTICE).
pub const BUNDLED_NAME: &str = "assets/efficientnet_lite0_imagenet_fc.safetensors";
static BUNDLED_HEAD: &[u8] =
    include_bytes!("../../assets/efficientnet_lite0_imagenet_fc.safetensors");
static BUNDLED_LABELS: &str = include_str!("../../assets/imagenet_classes.txt");

/// Where the raw tensor lives before it becomes a [`Head`].
struct Located {
    path: PathBuf,
    file: Bytes,
    name: String,
    shape: Vec<usize>,
    dtype: std::result::Result<DType, String>,
    data: std::ops::Range<usize>,
    choice: Choice,
    /// npy's `fortran_order`: the bytes are the transpose of the declared shape.
    fortran: bool,
    /// Class names the file itself holds (a GGUF vocabulary).
    labels: Option<Arc<Vec<String>>>,
}

impl Head {
    /// Opens a safetensors file, a sharded checkpoint's `*.index.json` (or a folder holding one),
    /// or a `.npy` array, and picks the head tensor.
    pub fn open(path: &Path, tensor: Option<&str>, transpose: bool) -> Result<Head> {
        let path = resolve_dir(path)?;
        let located = if is_index(&path) {
            safetensors::locate_sharded(&path, tensor)?
        } else {
            locate_file(&path, map(&path)?, tensor)?
        };
        Head::from_located(located, transpose)
    }

    /// The bundled EfficientNet-Lite0 ImageNet head, with its 1000 class names.
    pub fn bundled() -> Result<(Head, Vec<String>)> {
        let located =
            safetensors::locate(Path::new(BUNDLED_NAME), Bytes::Static(BUNDLED_HEAD), None)?;
        let head = Head::from_located(located, false)?;
        let labels = BUNDLED_LABELS.lines().map(str::to_owned).collect();
        Ok((head, labels))
    }

    /// A head from values in memory, row-major `[classes, features]` (tests, synthetic heads).
    pub fn from_f32(name: &str, classes: usize, features: usize, values: &[f32]) -> Result<Head> {
        if values.len() != classes * features {
            return Err(Error::Invalid(format!(
                "{name}: {} values do not make a {classes}×{features} head",
                values.len()
            )));
        }
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let n = bytes.len();
        Head::from_located(
            Located {
                path: PathBuf::from(name),
                file: Bytes::Owned(Arc::new(bytes)),
                name: name.to_owned(),
                shape: vec![classes, features],
                dtype: Ok(DType::F32),
                data: 0..n,
                choice: Choice::Named,
                fortran: false,
                labels: None,
            },
            false,
        )
    }

    /// A head over memory its caller owns: `memory` holds the `[classes, features]` values as
    /// stored, little-endian `dtype` (f32, f16, bf16 or f64), row-major or, with `fortran`,
    /// column-major. Nothing is copied: rows are converted as they are read, as from a file.
    pub fn from_memory(
        name: &str,
        memory: Arc<dyn AsRef<[u8]> + Send + Sync>,
        [classes, features]: [usize; 2],
        dtype: DType,
        fortran: bool,
    ) -> Result<Head> {
        let n = memory.as_ref().as_ref().len();
        let want = dtype
            .row_bytes(features)
            .and_then(|r| r.checked_mul(classes))
            .filter(|_| !matches!(dtype, DType::Quant(_)));
        if want != Some(n) {
            return Err(Error::Invalid(format!(
                "{name}: {n} bytes do not hold a {classes} × {features} {} array",
                dtype.name()
            )));
        }
        Head::from_located(
            Located {
                path: PathBuf::from(name),
                file: Bytes::External(memory),
                name: name.to_owned(),
                shape: vec![classes, features],
                dtype: Ok(dtype),
                data: 0..n,
                choice: Choice::Named,
                fortran,
                labels: None,
            },
            false,
        )
    }

    fn from_located(l: Located, transpose: bool) -> Result<Head> {
        let tensor_err = |msg: String| Error::Tensor {
            path: l.path.clone(),
            tensor: l.name.clone(),
            msg,
        };
        let dtype = l.dtype.clone().map_err(|d| {
            tensor_err(format!(
                "has dtype {d}, which aldfit does not read; supported: f32, f16, bf16 (safetensors), \
                 f32, f64, f16 (npy)"
            ))
        })?;
        if l.shape.len() != 2 {
            return Err(tensor_err(format!(
                "has shape {:?} (rank {}); a classifier head is a 2-D [classes, features] matrix",
                l.shape,
                l.shape.len()
            )));
        }
        if matches!(dtype, DType::Quant(_)) && (transpose || l.fortran) {
            return Err(tensor_err(format!(
                "is {}-quantised in rows of {} values, which cannot be read transposed",
                dtype.name(),
                l.shape[1]
            )));
        }
        let expected = dtype
            .row_bytes(l.shape[1])
            .and_then(|row| row.checked_mul(l.shape[0]))
            .ok_or_else(|| match dtype {
                DType::Quant(q) => tensor_err(format!(
                    "has rows of {} values, not whole {}-value {} blocks; the file is corrupt",
                    l.shape[1],
                    q.block().0,
                    q.name()
                )),
                _ => tensor_err(format!("has an impossible shape {:?}", l.shape)),
            })?;
        if l.data.len() != expected || l.data.end > l.file.as_slice().len() {
            return Err(tensor_err(format!(
                "should hold {expected} bytes for shape {:?} but the file has {}; is it truncated?",
                l.shape,
                l.data
                    .len()
                    .min(l.file.as_slice().len().saturating_sub(l.data.start))
            )));
        }
        // Stored order is [shape0, shape1]; fortran order stores the transpose.
        let stored_transposed = l.fortran;
        let transposed = stored_transposed ^ transpose;
        let (classes, features) = if transpose {
            (l.shape[1], l.shape[0])
        } else {
            (l.shape[0], l.shape[1])
        };
        if classes == 0 || features == 0 {
            return Err(tensor_err(format!(
                "is empty (shape {:?}): there are no classes to analyse",
                l.shape
            )));
        }
        Ok(Head {
            path: l.path,
            tensor: l.name,
            choice: l.choice,
            classes,
            features,
            dtype,
            transposed,
            file: l.file,
            data: l.data,
            embedded_labels: l.labels,
            ids: None,
        })
    }

    /// The head restricted to the tensor's classes `ids` (sorted, distinct, each below
    /// `classes`): row `k` of the result is class `ids[k]`.
    pub fn select(&self, ids: Vec<usize>) -> Result<Head> {
        let all = self.tensor_classes();
        if ids.is_empty() {
            return Err(Error::Invalid("--classes selects no class".into()));
        }
        if let Some(&k) = ids.iter().find(|&&k| k >= all) {
            return Err(Error::Invalid(format!(
                "--classes: class {k} does not exist (the head has {all}: 0-{})",
                all - 1
            )));
        }
        if !ids.windows(2).all(|w| w[0] < w[1]) {
            return Err(Error::Invalid(
                "--classes: the classes must be sorted and distinct".into(),
            ));
        }
        let ids = match &self.ids {
            Some(old) => ids.iter().map(|&k| old[k]).collect(),
            None => ids,
        };
        Ok(Head {
            classes: ids.len(),
            ids: Some(Arc::new(ids)),
            ..self.clone()
        })
    }

    /// The tensor's class that row `k` reads.
    pub fn class_id(&self, k: usize) -> usize {
        self.ids.as_ref().map_or(k, |ids| ids[k])
    }

    /// Every row's class in the tensor, when the head is a selection of them.
    pub fn ids(&self) -> Option<&Arc<Vec<usize>>> {
        self.ids.as_ref()
    }

    /// The classes the tensor holds (more than `classes` when some are selected).
    pub fn tensor_classes(&self) -> usize {
        let per = self.dtype.row_bytes(1).unwrap_or(1).max(1);
        match (&self.ids, self.transposed) {
            (None, _) => self.classes,
            (Some(_), false) => {
                self.data.len() / self.dtype.row_bytes(self.features).unwrap_or(1).max(1)
            }
            (Some(_), true) => self.data.len() / per / self.features.max(1),
        }
    }

    /// Bytes of the analysed tensor as stored.
    pub fn tensor_bytes(&self) -> usize {
        self.data.len()
    }

    /// BLAKE3 of the file that holds the tensor, as `b3sum` prints it: what a run records. It
    /// reads the whole file on a thread beside the analysis, at several GB/s a core (sha256
    /// takes four times the CPU).
    pub fn file_blake3(&self) -> String {
        blake3::hash(self.file.as_slice()).to_hex().to_string()
    }

    /// The bytes of the file that holds the tensor.
    pub(crate) fn file_bytes(&self) -> &[u8] {
        self.file.as_slice()
    }

    /// Rows `first .. first + count` as the f32 the file stores, where it stores exactly that:
    /// little-endian f32 on a little-endian machine, rows in order, aligned. The analysis then
    /// sorts straight from the mapped file instead of copying the rows first.
    pub(crate) fn f32_rows(&self, first: usize, count: usize) -> Option<&[f32]> {
        if self.dtype != DType::F32
            || self.transposed
            || self.ids.is_some()
            || cfg!(target_endian = "big")
        {
            return None;
        }
        let row = self.features.checked_mul(4)?;
        let data = &self.file.as_slice()[self.data.clone()];
        let bytes =
            data.get(first.checked_mul(row)?..first.checked_add(count)?.checked_mul(row)?)?;
        bytemuck::try_cast_slice(bytes).ok()
    }

    /// Where in the file the first `rows` rows end, when reading them reads the file from the
    /// tensor's start up to there (rows stored in order, all classes); otherwise `None`.
    pub(crate) fn stored_end(&self, rows: usize) -> Option<usize> {
        if self.transposed || self.ids.is_some() {
            return None;
        }
        let bytes = self.dtype.row_bytes(self.features)?.checked_mul(rows)?;
        Some(self.data.start.saturating_add(bytes).min(self.data.end))
    }

    /// sha256 of the file that holds the tensor, as `sha256sum` prints it (`inspect` shows it,
    /// to check against published checksums).
    pub fn file_sha256(&self) -> String {
        let digest = Sha256::digest(self.file.as_slice());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Converts rows `first .. first + out.len() / features` into `out` as f32.
    pub fn read_rows(&self, first: usize, out: &mut [f32]) {
        let f = self.features;
        let count = out.len() / f;
        assert!(first + count <= self.classes && out.len() == count * f);
        if let Some(ids) = &self.ids {
            // Runs of consecutive classes are read together.
            let mut r = 0;
            while r < count {
                let start = ids[first + r];
                let mut run = 1;
                while r + run < count && ids[first + r + run] == start + run {
                    run += 1;
                }
                self.read_stored(start, &mut out[r * f..(r + run) * f]);
                r += run;
            }
            return;
        }
        self.read_stored(first, out);
    }

    /// Converts the tensor's classes `first ..` (ignoring any selection) into `out`.
    fn read_stored(&self, first: usize, out: &mut [f32]) {
        let f = self.features;
        let count = out.len() / f;
        let data = &self.file.as_slice()[self.data.clone()];
        if !self.transposed {
            let row = self.dtype.row_bytes(f).expect("checked when opened");
            convert(self.dtype, &data[first * row..(first + count) * row], out);
        } else {
            let size = self
                .dtype
                .row_bytes(1)
                .expect("plain dtypes are never quantised");
            // Stored [features, classes]: each stored row holds this chunk's values of one feature.
            let c = self.tensor_classes();
            let mut column = vec![0f32; count];
            for feat in 0..f {
                let start = (feat * c + first) * size;
                convert(self.dtype, &data[start..start + count * size], &mut column);
                for (r, &v) in column.iter().enumerate() {
                    out[r * f + feat] = v;
                }
            }
        }
    }

    /// All rows as one f32 matrix (tests and small heads only).
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.classes * self.features];
        self.read_rows(0, &mut out);
        out
    }
}

fn convert(dtype: DType, bytes: &[u8], out: &mut [f32]) {
    match dtype {
        DType::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        DType::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        DType::BF16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::bf16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        DType::F64 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = f64::from_le_bytes(b.try_into().unwrap()) as f32;
            }
        }
        DType::Quant(q) => q.dequantize(bytes, out),
    }
}

/// Opens `path` for reading if it is a regular file (or a link to one). A FIFO, a device or a
/// folder is refused at once: reading one blocks forever or never ends. The file is opened
/// without blocking, then checked again, so a FIFO swapped in between cannot hang the run.
pub fn open_regular(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let read_err = |err| Error::Read {
        path: path.to_owned(),
        err,
    };
    let kind = |t: std::fs::FileType| -> Option<&'static str> {
        if t.is_file() {
            None
        } else if t.is_dir() {
            Some("a folder")
        } else if t.is_fifo() {
            Some("a FIFO (named pipe)")
        } else if t.is_char_device() || t.is_block_device() {
            Some("a device")
        } else if t.is_socket() {
            Some("a socket")
        } else {
            Some("not a regular file")
        }
    };
    let refuse = |what: &str| Error::Format {
        path: path.to_owned(),
        msg: format!("is {what}, not a regular file; aldfit reads only regular files"),
    };
    if let Some(what) = kind(std::fs::metadata(path).map_err(read_err)?.file_type()) {
        return Err(refuse(what));
    }
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(read_err)?;
    if let Some(what) = kind(file.metadata().map_err(read_err)?.file_type()) {
        return Err(refuse(what));
    }
    Ok(file)
}

/// The largest text file (an index, labels) read: a million labels of 100 characters is 100 MB.
const MAX_TEXT: u64 = 1 << 30;

/// A whole small file (an index, labels) as text, from a regular file only.
pub fn read_text(path: &Path) -> Result<String> {
    use std::io::Read;
    let read_err = |err| Error::Read {
        path: path.to_owned(),
        err,
    };
    let file = open_regular(path)?;
    let len = file.metadata().map_err(read_err)?.len();
    if len > MAX_TEXT {
        return Err(Error::Format {
            path: path.to_owned(),
            msg: format!(
                "is {}, more than the {} aldfit reads as labels or an index; is it the right file?",
                crate::memory::human(len),
                crate::memory::human(MAX_TEXT)
            ),
        });
    }
    let mut text = String::new();
    text.try_reserve_exact(len as usize)
        .map_err(|_| Error::Format {
            path: path.to_owned(),
            msg: format!("cannot allocate {} to read it", crate::memory::human(len)),
        })?;
    file.take(MAX_TEXT)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    Ok(text)
}

fn map(path: &Path) -> Result<Bytes> {
    let read_err = |err| Error::Read {
        path: path.to_owned(),
        err,
    };
    let file = open_regular(path)?;
    if file.metadata().map_err(read_err)?.len() == 0 {
        return Err(Error::Format {
            path: path.to_owned(),
            msg: "the file is empty".into(),
        });
    }
    // SAFETY: the map is read-only. A file truncated underneath us while mapped raises SIGBUS
    // on the next read of a lost page; the CLI turns that into a one-line error and removes
    // its staging output (outset::install_signal_handlers).
    let map = unsafe { Mmap::map(&file) }.map_err(read_err)?;
    crate::outset::note_mapped(path);
    Ok(Bytes::Mapped(Arc::new(map)))
}

fn is_index(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".index.json")
}

/// A folder stands for the one checkpoint inside it: a sharded index, else a single file.
fn resolve_dir(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_owned());
    }
    let entries = std::fs::read_dir(path).map_err(|err| Error::Read {
        path: path.to_owned(),
        err,
    })?;
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let pick = |pred: &dyn Fn(&str) -> bool| -> Vec<PathBuf> {
        files
            .iter()
            .filter(|p| pred(&p.file_name().unwrap_or_default().to_string_lossy()))
            .cloned()
            .collect()
    };
    // Hugging Face folders often hold the same weights twice: safetensors first, then
    // PyTorch's, then a lone .npy.
    let torch_name = |n: &str| n.ends_with(".bin") || n.ends_with(".pt") || n.ends_with(".pth");
    let candidates = [
        pick(&|n| n.ends_with(".safetensors.index.json")),
        pick(&|n| n.ends_with(".safetensors")),
        pick(&|n| n.ends_with(".bin.index.json")),
        pick(&|n| torch_name(n)),
        pick(&|n| n.ends_with(".gguf") || n.ends_with(".onnx") || n.ends_with(".tflite")),
        pick(&|n| n.ends_with(".npy")),
    ];
    match candidates.iter().find(|c| !c.is_empty()).map(Vec::as_slice) {
        Some([one]) => Ok(one.clone()),
        _ if path.join("saved_model.pb").is_file() => Err(Error::Format {
            path: path.to_owned(),
            msg: "is a TensorFlow SavedModel, which aldfit does not read; export the \
                  classifier's kernel with tf.saved_model.load and numpy.save (transposed: TF \
                  stores [features, classes]), or convert the model to TFLite"
                .into(),
        }),
        _ => Err(Error::Format {
            path: path.to_owned(),
            msg: "is a folder without exactly one checkpoint (*.safetensors.index.json, \
                  *.safetensors, pytorch_model.bin.index.json, *.bin/*.pt/*.pth, *.gguf, \
                  *.onnx, *.tflite or *.npy); name the file"
                .into(),
        }),
    }
}

/// Lists every tensor of a checkpoint (all shards of a sharded one).
pub fn list_tensors(path: &Path) -> Result<Vec<TensorEntry>> {
    let path = resolve_dir(path)?;
    if is_index(&path) {
        return safetensors::list_sharded(&path);
    }
    list_file(&path, &map(&path)?)
}

/// The tensors of one file, by its format (the bytes say which, not the name).
fn list_file(path: &Path, file: &Bytes) -> Result<Vec<TensorEntry>> {
    let bytes = file.as_slice();
    if gguf::is_gguf(bytes) {
        gguf::list(path, bytes)
    } else if npy::is_npy(bytes) {
        npy::list(path, bytes)
    } else if safetensors::looks_like_safetensors(bytes) {
        safetensors::list(path, bytes)
    } else if torch::detect(bytes).is_some() {
        torch::list(path, bytes)
    } else if tflite::is_tflite(bytes) {
        tflite::list(path, bytes)
    } else if onnx::is_onnx(path) {
        onnx::list(path, file)
    } else {
        Err(unknown_format(path, bytes))
    }
}

/// The head tensor of one file, by its format.
fn locate_file(path: &Path, file: Bytes, tensor: Option<&str>) -> Result<Located> {
    let bytes = file.as_slice();
    if gguf::is_gguf(bytes) {
        gguf::locate(path, file, tensor)
    } else if npy::is_npy(bytes) {
        npy::locate(path, file, tensor)
    } else if safetensors::looks_like_safetensors(bytes) {
        safetensors::locate(path, file, tensor)
    } else if torch::detect(bytes).is_some() {
        torch::locate(path, file, tensor)
    } else if tflite::is_tflite(bytes) {
        tflite::locate(path, file, tensor)
    } else if onnx::is_onnx(path) {
        onnx::locate(path, file, tensor)
    } else {
        Err(unknown_format(path, bytes))
    }
}

/// What a file aldfit does not read is, and the one line that converts it.
fn unknown_format(path: &Path, bytes: &[u8]) -> Error {
    let p = path.display();
    let name = path.to_string_lossy().to_lowercase();
    let convert =
        |what: &str, line: String| format!("is {what}, which aldfit does not read yet; {line}");
    let msg = if bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        convert(
            "a Keras/HDF5 file",
            format!(
                "export the head with: python -c \"import keras, numpy; m = keras.models.load_model('{p}'); \
                 numpy.save('head.npy', m.layers[-1].get_weights()[0].T)\""
            ),
        )
    } else if name.ends_with(".pb") {
        convert(
            "a TensorFlow SavedModel or graph",
            "export the classifier's kernel with tf.saved_model.load and numpy.save (transposed: \
             TF stores [features, classes])"
                .into(),
        )
    } else {
        "is not a checkpoint aldfit reads: *.safetensors (and *.safetensors.index.json), \
         PyTorch *.pt/*.pth/*.bin (and pytorch_model.bin.index.json), *.gguf, *.onnx, \
         *.tflite or *.npy"
            .into()
    };
    Error::Format {
        path: path.to_owned(),
        msg,
    }
}

/// The file `rel` that `file` (an index, a model) names beside itself, which must lie in its
/// folder (or below): a checkpoint is data, and must not make aldfit read files elsewhere
/// (absolute paths, `..`, links out).
fn inside_folder(file: &Path, rel: &str) -> Result<PathBuf> {
    let folder = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let outside = || Error::Format {
        path: file.to_owned(),
        msg: format!(
            "names the file {rel:?}, which lies outside its folder; aldfit reads only files \
             inside the folder of the file that names them"
        ),
    };
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(outside());
    }
    let path = folder.join(p);
    // A link may still point out of the folder: compare where both really are.
    if let (Ok(real), Ok(base)) = (path.canonicalize(), folder.canonicalize()) {
        if !real.starts_with(&base) {
            return Err(outside());
        }
    }
    Ok(path)
}

/// The tensor to analyse among `tensors` (name, shape): `--tensor` if given (see
/// [`resolve_name`]), else the format's own pick (`preferred`: an ONNX/TFLite graph's
/// classifier, GGUF's `output.weight`), else [`choose`]'s.
fn pick(
    path: &Path,
    tensors: &[(String, Vec<usize>)],
    tensor: Option<&str>,
    preferred: Option<(String, Choice)>,
) -> Result<(String, Choice)> {
    if let Some(n) = tensor {
        return Ok((resolve_name(path, tensors, n)?, Choice::Named));
    }
    if let Some(p) = preferred {
        return Ok(p);
    }
    choose(tensors)
        .map(|(n, c)| (n.to_owned(), c))
        .ok_or_else(|| Error::NoHead {
            path: path.to_owned(),
            available: describe_tensors(tensors),
        })
}

/// The tensor `--tensor NAME` means: that exact name, else the one name ending in `.NAME` (so
/// that `fc.weight` finds `state_dict.module.fc.weight`).
fn resolve_name(path: &Path, tensors: &[(String, Vec<usize>)], name: &str) -> Result<String> {
    if tensors.iter().any(|(n, _)| n == name) {
        return Ok(name.to_owned());
    }
    let suffix = format!(".{name}");
    let ends: Vec<&String> = tensors
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.ends_with(&suffix))
        .collect();
    match ends.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(Error::NoSuchTensor {
            path: path.to_owned(),
            name: name.to_owned(),
            available: describe_tensors(tensors),
        }),
    }
}

/// Picks the head among `(name, shape)` in file order; `None` when there is no 2-D tensor.
fn choose(tensors: &[(String, Vec<usize>)]) -> Option<(&str, Choice)> {
    let matrices: Vec<&str> = tensors
        .iter()
        .filter(|(_, s)| s.len() == 2)
        .map(|(n, _)| n.as_str())
        .collect();
    for known in HEAD_NAMES {
        if let Some(n) = matrices.iter().find(|n| *n == known) {
            return Some((n, Choice::KnownName));
        }
    }
    for known in HEAD_NAMES {
        let suffix = format!(".{known}");
        if let Some(n) = matrices.iter().find(|n| n.ends_with(&suffix)) {
            return Some((n, Choice::KnownName));
        }
    }
    for known in EMBEDDING_NAMES {
        let suffix = format!(".{known}");
        if let Some(n) = matrices
            .iter()
            .find(|n| *n == known || n.ends_with(&suffix))
        {
            return Some((n, Choice::Embedding));
        }
    }
    match matrices.as_slice() {
        [] => None,
        [one] => Some((one, Choice::OnlyMatrix)),
        [.., last] => Some((last, Choice::LastMatrix)),
    }
}

/// The tensor name `fit` would analyse, and why.
pub fn default_choice(tensors: &[TensorEntry]) -> Option<(String, Choice)> {
    let pairs: Vec<(String, Vec<usize>)> = tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    choose(&pairs).map(|(n, c)| (n.to_owned(), c))
}

fn describe_tensors(tensors: &[(String, Vec<usize>)]) -> String {
    let mut s: Vec<String> = tensors
        .iter()
        .take(12)
        .map(|(n, shape)| format!("{n} {shape:?}"))
        .collect();
    if tensors.len() > 12 {
        s.push(format!(
            "… {} more (see `aldfit inspect`)",
            tensors.len() - 12
        ));
    }
    if s.is_empty() {
        "none".into()
    } else {
        s.join(", ")
    }
}

/// Reads one label per line. The count must match the head. A byte-order mark (editors on
/// Windows write one) is not part of the first label, and blank lines past the last class are
/// an editor's habit, not labels.
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<String>> {
    let text = read_text(path)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut labels: Vec<String> = text
        .lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect();
    while labels.len() > classes && labels.last().is_some_and(|l| l.trim().is_empty()) {
        labels.pop();
    }
    if labels.len() != classes {
        return Err(Error::Format {
            path: path.to_owned(),
            msg: format!(
                "has {} labels but the head has {classes} classes; give one label per line, \
                 in class order",
                labels.len()
            ),
        });
    }
    Ok(labels)
}

/// `model.safetensors` → `model.labels.txt` beside it, if present.
pub fn labels_beside(head: &Path) -> Option<PathBuf> {
    let name = head.file_name()?.to_string_lossy().into_owned();
    let stem = [
        ".safetensors.index.json",
        ".bin.index.json",
        ".safetensors",
        ".npy",
        ".bin",
        ".pth",
        ".pt",
        ".gguf",
        ".onnx",
        ".tflite",
    ]
    .iter()
    .find_map(|ext| name.strip_suffix(ext))?;
    let candidate = head.with_file_name(format!("{stem}.labels.txt"));
    candidate.is_file().then_some(candidate)
}

/// Why `head` may be stored `[features, classes]` and want `--transpose` (or want it no more):
/// its name is a Keras/TF `kernel`, or the bias beside it is as long as its features, not its
/// classes. `None` when nothing says so.
pub fn orientation_hint(head: &Head) -> Option<String> {
    let flip = if head.transposed {
        "drop --transpose"
    } else {
        "pass --transpose"
    };
    let name = head.tensor.as_str();
    if name.ends_with("kernel") && !head.transposed {
        return Some(format!(
            "`{name}` is a Keras/TensorFlow kernel, stored [features, classes]: {flip} to \
             analyse its {} columns as the classes",
            head.features
        ));
    }
    if let Some(n) = hf::id2label_len(&head.path) {
        if n == head.features && n != head.classes {
            return Some(format!(
                "config.json's id2label names {n} classes, as many as the head's features, not \
                 its {} rows: the matrix looks stored [features, classes]; {flip}",
                head.classes
            ));
        }
    }
    let stem = name
        .strip_suffix("weight")
        .or_else(|| name.strip_suffix("kernel"))?;
    let bias = format!("{stem}bias");
    let tensors = list_file(&head.path, &head.file).ok()?;
    let b = tensors.iter().find(|t| t.name == bias)?;
    (b.shape.len() == 1 && b.shape[0] == head.features && head.features != head.classes).then(
        || {
            format!(
            "the bias `{bias}` beside it has {} entries, as many as the head's features, not its \
             {} classes: the matrix looks stored [features, classes]; {flip}",
            head.features, head.classes
        )
        },
    )
}
