//! `aldfit._aldfit`: the Rust side of the Python module. The pure-Python package (`aldfit/`)
//! wraps it: it turns anything array-like into a numpy array, names the options and builds the
//! result object. Here an array becomes a [`Head`] over the array's own memory (no copy), `fit`
//! runs through the CLI's own code (the same options, parsed by the same clap definitions, and
//! the same outputs) with the GIL released, and every error becomes a Python exception carrying
//! the CLI's one-line message.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use aldfit::cli::{Cli, Command};
use aldfit::commands::{self, Opened, Ui};
use aldfit::head::{DType, Head};
use aldfit::report::{self, Column};
use clap::Parser;
use numpy::{dtype, PyArray1, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// A numpy array's memory, kept alive by a reference to the array for as long as the head
/// reads it.
struct ArrayMemory {
    _array: Py<PyAny>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the pointer is into the buffer of the array held by `_array`, which numpy does not
// free or move while a reference is held (an array with references cannot be resized), and the
// head only reads it.
unsafe impl Send for ArrayMemory {}
unsafe impl Sync for ArrayMemory {}

impl AsRef<[u8]> for ArrayMemory {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: see the Send impl; `len` is the array's nbytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The CLI's error, as the exception a Python user expects.
fn py_err(e: aldfit::Error) -> PyErr {
    use aldfit::Error as E;
    let msg = aldfit::text::printable(&e.to_string());
    match &e {
        E::Read { err, .. } if err.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(msg)
        }
        E::BackendUnavailable { .. } | E::Backend { .. } | E::Write { .. } => {
            PyRuntimeError::new_err(msg)
        }
        _ => PyValueError::new_err(msg),
    }
}

/// Messages kept for the result's `info`; progress handed to a Python callable (a tqdm bar).
struct PyUi {
    notes: Vec<String>,
    progress: Option<Py<PyAny>>,
}

impl Ui for PyUi {
    fn note(&mut self, msg: &str) {
        self.notes.push(msg.to_owned());
    }

    fn progress(&mut self, stage: &'static str, done: usize, total: usize) {
        if let Some(cb) = &self.progress {
            Python::with_gil(|py| {
                // A failing progress callable must not end the analysis.
                let _ = cb.call1(py, (stage, done, total));
            });
        }
    }
}

/// The head over a 2-D numpy array of f32, f16 or f64, C or Fortran order, without a copy.
fn head_of(array: &Bound<'_, PyUntypedArray>) -> PyResult<Head> {
    let py = array.py();
    if array.ndim() != 2 {
        return Err(PyValueError::new_err(format!(
            "weights must be a 2-D array [classes, features], not {}-D",
            array.ndim()
        )));
    }
    let d = array.dtype();
    let dt = if d.is_equiv_to(&dtype::<f32>(py)) {
        DType::F32
    } else if d.is_equiv_to(&dtype::<f64>(py)) {
        DType::F64
    } else if d.kind() == b'f' && d.itemsize() == 2 && d.byteorder() != b'>' {
        DType::F16
    } else {
        return Err(PyValueError::new_err(format!(
            "weights must hold floats (float32, float16 or float64), not {}",
            d.str().map(|s| s.to_string()).unwrap_or_default()
        )));
    };
    let (c, f) = (array.is_c_contiguous(), array.is_fortran_contiguous());
    if !c && !f {
        return Err(PyValueError::new_err(
            "weights must be C- or Fortran-contiguous (np.ascontiguousarray makes it so)",
        ));
    }
    let shape = array.shape();
    let (classes, features) = (shape[0], shape[1]);
    let itemsize = d.itemsize();
    // SAFETY: a contiguous array's data pointer, read-only, for its nbytes.
    let ptr = unsafe { (*array.as_array_ptr()).data as *const u8 };
    let memory = ArrayMemory {
        _array: array.clone().into_any().unbind(),
        ptr,
        len: classes * features * itemsize,
    };
    // A Fortran-ordered array that is also C-ordered (one row or column) is read as C.
    Head::from_memory("array", Arc::new(memory), [classes, features], dt, !c).map_err(py_err)
}

/// `aldfit fit` on an array: `argv` are the CLI's options (built by the Python wrapper), `out`
/// the folder the outputs are written to. Returns (columns, summary, run.json text, notes).
#[pyfunction]
#[pyo3(signature = (weights, labels, argv, out, progress=None))]
fn fit<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyUntypedArray>,
    labels: Option<Vec<String>>,
    argv: Vec<String>,
    out: PathBuf,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let head = head_of(weights)?;
    let mut args = vec!["aldfit".to_owned(), "fit".to_owned()];
    args.extend(argv);
    args.extend(["--out".to_owned(), out.display().to_string()]);
    let cli = Cli::try_parse_from(&args).map_err(|e| {
        let text = e.to_string();
        let first = text
            .lines()
            .next()
            .unwrap_or("invalid options")
            .trim_start_matches("error: ");
        PyValueError::new_err(first.to_owned())
    })?;
    let Command::Fit(fit_args) = cli.command else {
        return Err(PyRuntimeError::new_err("internal: not a fit command"));
    };
    let labels = labels.unwrap_or_default();
    if !labels.is_empty() && labels.len() != head.classes {
        return Err(PyValueError::new_err(format!(
            "{} labels for {} classes",
            labels.len(),
            head.classes
        )));
    }
    let shown = labels.clone();
    let opened = Opened {
        head,
        labels,
        labels_from: None,
        selected: None,
        arg: Some(PathBuf::from("array")),
    };
    let mut ui = PyUi {
        notes: Vec::new(),
        progress,
    };
    let done = py.allow_threads(|| -> aldfit::Result<_> {
        let (outputs, analysis) = commands::fit_opened(opened, &fit_args, &mut ui, Instant::now())?;
        let columns = report::class_columns(&analysis, &shown);
        let summary = outputs.summary.clone();
        let run = serde_json::to_string(&outputs.run).unwrap_or_default();
        report::save(outputs)?;
        Ok((columns, summary, run))
    });
    let (columns, summary, run) = done.map_err(py_err)?;
    let result = PyDict::new(py);
    let table = PyDict::new(py);
    for (name, col) in columns {
        match col {
            Column::Float(v) => table.set_item(name, PyArray1::from_vec(py, v))?,
            Column::Int(v) => table.set_item(name, PyArray1::from_vec(py, v))?,
            Column::Flag(v) => table.set_item(name, PyArray1::from_vec(py, v))?,
            Column::Text(v) => table.set_item(name, PyList::new(py, v)?)?,
        }
    }
    result.set_item("classes", table)?;
    result.set_item("summary", summary)?;
    result.set_item("run", run)?;
    result.set_item("notes", ui.notes)?;
    Ok(result)
}

/// `aldfit.load`: a checkpoint's head as an f32 array [classes, features] and its labels.
#[pyfunction]
#[pyo3(signature = (path, tensor=None, transpose=false))]
fn load<'py>(
    py: Python<'py>,
    path: PathBuf,
    tensor: Option<String>,
    transpose: bool,
) -> PyResult<(Bound<'py, numpy::PyArray2<f32>>, Vec<String>)> {
    let args = aldfit::cli::HeadArgs {
        head: Some(path),
        tensor,
        transpose,
        labels: None,
    };
    let mut ui = PyUi {
        notes: Vec::new(),
        progress: None,
    };
    let opened = py
        .allow_threads(|| commands::open_head(&args, &mut ui))
        .map_err(py_err)?;
    let (c, f) = (opened.head.classes, opened.head.features);
    let values = py.allow_threads(|| opened.head.to_f32());
    let matrix = numpy::ndarray::Array2::from_shape_vec((c, f), values)
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    let array = numpy::PyArray2::from_owned_array(py, matrix);
    Ok((array, opened.labels))
}

/// `aldfit.validate`: every backend asked for (default: every one here) against the f64
/// reference on the built-in nasty heads and the bundled head. Returns (table, all passed).
#[pyfunction]
#[pyo3(signature = (backends=None))]
fn validate(
    py: Python<'_>,
    backends: Option<Vec<String>>,
) -> PyResult<(String, bool, Vec<String>)> {
    let kinds = match backends {
        None => None,
        Some(names) => Some(
            names
                .iter()
                .map(|n| {
                    <aldfit::backend::BackendKind as clap::ValueEnum>::from_str(n, true)
                        .ok()
                        .filter(|k| *k != aldfit::backend::BackendKind::Auto)
                        .ok_or_else(|| {
                            PyValueError::new_err(format!(
                                "unknown backend `{n}`: choose from cpu, wgpu, cuda"
                            ))
                        })
                })
                .collect::<PyResult<Vec<_>>>()?,
        ),
    };
    let head = aldfit::cli::HeadArgs {
        head: None,
        tensor: None,
        transpose: false,
        labels: None,
    };
    let mut ui = PyUi {
        notes: Vec::new(),
        progress: None,
    };
    let (table, ok) = py
        .allow_threads(|| commands::validate(&head, kinds.as_deref(), &mut ui))
        .map_err(|e| match e {
            // A backend asked for by name that this machine cannot run.
            aldfit::Error::Invalid(m) if m.contains("unavailable") => PyRuntimeError::new_err(m),
            e => py_err(e),
        })?;
    Ok((table, ok, ui.notes))
}

/// `aldfit.backends`: each backend, whether it can be used here, and its device or why not.
#[pyfunction]
fn backends(py: Python<'_>) -> Vec<(String, bool, String)> {
    use aldfit::backend::BackendKind as K;
    py.allow_threads(|| {
        [K::Cpu, K::Wgpu, K::Cuda]
            .into_iter()
            .map(|k| {
                let name = format!("{k:?}").to_lowercase();
                match aldfit::backend::create(k) {
                    Ok(b) => (name, true, b.info().device),
                    Err(e) => (name, false, e.to_string()),
                }
            })
            .collect()
    })
}

#[pymodule]
fn _aldfit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(backends, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
