//! The CUDA backend: every primitive in hand-written CUDA (kernels/*.cu), compiled at run time by
//! NVRTC for the device's architecture and run through cudarc.
//!
//! cudarc loads libcuda and libnvrtc dynamically, so this module builds on any machine; but
//! cudarc panics when a library it needs is missing, so [`Cuda::open`] and [`compile`]
//! look for each one first and turn its absence into one sentence saying what to install.
//!
//! Unlike WGSL, CUDA has f64 on every device, and a data-centre GPU runs it fast: the segment
//! kernels carry their sums in f64 as `ald.rs` does, so they agree with the CPU to rounding.
//! Sorting is CUB's block radix sort in shared memory, tile by tile, plus merge passes for rows
//! wider than a tile.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DriverError, LaunchConfig,
    PushKernelArg,
};
use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};

use super::gpu::{read_spans, Device, GpuBackend, Held, SpanPlace, READ_GAP};
use super::{abi, BackendInfo, Limits, Segment, SegmentStats, Side, SortedSegment};
use crate::ald::{AldFit, Baselines, StudyLine, TailSums};
use crate::error::{Error, Result};

const COMMON: &str = include_str!("../../kernels/common.cuh");

/// Every kernel file, in the order they go into the one NVRTC program.
pub const KERNEL_FILES: [(&str, &str); 9] = [
    ("sort_rows.cu", include_str!("../../kernels/sort_rows.cu")),
    ("merge_runs.cu", include_str!("../../kernels/merge_runs.cu")),
    ("partition.cu", include_str!("../../kernels/partition.cu")),
    (
        "segment_stats.cu",
        include_str!("../../kernels/segment_stats.cu"),
    ),
    ("ks.cu", include_str!("../../kernels/ks.cu")),
    ("study_line.cu", include_str!("../../kernels/study_line.cu")),
    ("nll_grad.cu", include_str!("../../kernels/nll_grad.cu")),
    ("generate.cu", include_str!("../../kernels/generate.cu")),
    ("loglik.cu", include_str!("../../kernels/loglik.cu")),
];

/// Tile sizes of sort_rows.cu, smallest first; rows wider than the last are merged.
const TILES: [usize; 5] = [
    abi::SORT_TILES[0].0,
    abi::SORT_TILES[1].0,
    abi::SORT_TILES[2].0,
    abi::SORT_TILES[3].0,
    abi::SORT_TILES[4].0,
];

/// Every entry point the backend launches.
pub const ENTRY_POINTS: [&str; 19] = [
    "sort_tile_256_k",
    "sort_tile_1024_k",
    "sort_tile_2048_k",
    "sort_tile_4096_k",
    "sort_tile_8192_k",
    "sort_tile_256_kv",
    "sort_tile_1024_kv",
    "sort_tile_2048_kv",
    "sort_tile_4096_kv",
    "sort_tile_8192_kv",
    "merge_runs",
    "partition",
    "segment_stats",
    "ks",
    "study_line",
    "nll_grad",
    "generate",
    "philox_raw",
    "loglik",
];

/// Threads per block of the segment kernels (SEG_THREADS in common.cuh; tests/abi.rs checks it).
const SEG_THREADS: u32 = super::abi::SEGMENT_THREADS;

fn unavailable(reason: impl Into<String>) -> Error {
    Error::BackendUnavailable {
        backend: "cuda".into(),
        reason: reason.into(),
    }
}

fn failed(msg: impl Into<String>) -> Error {
    Error::Backend {
        backend: "cuda".into(),
        msg: msg.into(),
    }
}

/// Attaches what was being done to a driver error.
fn drv<T>(r: std::result::Result<T, DriverError>, what: &str) -> Result<T> {
    r.map_err(|e| failed(format!("{what}: {e}")))
}

/// The source NVRTC compiles: the shared header, then each kernel file, whose own
/// `#include "common.cuh"` (there for nvcc) is dropped.
pub fn program_source() -> String {
    let mut src = String::from(COMMON);
    for (name, text) in KERNEL_FILES {
        src.push_str(&format!("\n// ---- kernels/{name}\n"));
        for line in text.lines() {
            if line.trim() != "#include \"common.cuh\"" {
                src.push_str(line);
                src.push('\n');
            }
        }
    }
    src
}

/// Whether libnvrtc can be loaded; if not, what to install.
pub fn nvrtc_status() -> Result<()> {
    // SAFETY: only tries to dlopen the library's candidate names.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(unavailable(
            "NVRTC (libnvrtc.so.13) was not found: install the CUDA 13 toolkit, or \
             `pip install nvidia-cuda-nvrtc==13.0.88` and add its nvidia/cu13/lib directory to \
             LD_LIBRARY_PATH",
        ))
    }
}

/// NVRTC's version, e.g. (13, 0).
fn nvrtc_version() -> Option<(i32, i32)> {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: nvrtc_status() was checked by the caller; the call writes two ints.
    let r = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    (r == cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS).then_some((major, minor))
}

/// The CUDA version the driver supports, e.g. (13, 0).
fn driver_version() -> Option<(i32, i32)> {
    let mut v = 0;
    // SAFETY: libcuda is present (checked by the caller); the call writes one int.
    let r = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
    (r == cudarc::driver::sys::CUresult::CUDA_SUCCESS).then_some((v / 1000, v % 1000 / 10))
}

/// The directory of the libnvrtc this process has loaded, from `/proc/self/maps`: its headers
/// are the ones to compile with (another toolkit's CCCL may not match this NVRTC).
pub fn loaded_nvrtc_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("libnvrtc.so"))
        .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
}

/// Directories holding CUDA's C++ headers (CUB, from CCCL) for NVRTC, and why they were chosen.
/// Looked for in `ALDFIT_CUDA_INCLUDE`, beside the libnvrtc actually loaded (`../include`, as
/// the toolkit and the pip wheels lay them out), `ALDFIT_CUDA_ROOT/include` (carried wheels),
/// `CUDA_PATH`/`CUDA_HOME`, `/usr/local/cuda`, and beside every directory on `LD_LIBRARY_PATH`.
pub fn include_dirs_why() -> Result<(Vec<PathBuf>, String)> {
    let mut bases: Vec<(PathBuf, String)> = Vec::new();
    if let Some(p) = std::env::var_os("ALDFIT_CUDA_INCLUDE") {
        bases.push((PathBuf::from(p), "ALDFIT_CUDA_INCLUDE".into()));
    }
    // SAFETY: only tries to dlopen the library's candidate names; loading it maps it.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        let _ = nvrtc_version();
        if let Some(dir) = loaded_nvrtc_dir() {
            let why = format!("beside the loaded NVRTC ({})", dir.display());
            bases.push((dir.join("..").join("include"), why));
        }
    }
    if let Some(p) = std::env::var_os("ALDFIT_CUDA_ROOT") {
        bases.push((Path::new(&p).join("include"), "ALDFIT_CUDA_ROOT".into()));
    }
    for var in ["CUDA_PATH", "CUDA_HOME"] {
        if let Some(p) = std::env::var_os(var) {
            bases.push((Path::new(&p).join("include"), var.into()));
        }
    }
    bases.push(("/usr/local/cuda/include".into(), "/usr/local/cuda".into()));
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        for dir in std::env::split_paths(&paths) {
            bases.push((dir.join("..").join("include"), "LD_LIBRARY_PATH".into()));
        }
    }
    for (base, why) in &bases {
        if base.join("cccl").join("cub").is_dir() {
            return Ok((vec![base.clone(), base.join("cccl")], why.clone()));
        }
        if base.join("cub").is_dir() {
            return Ok((vec![base.clone()], why.clone()));
        }
    }
    Err(unavailable(
        "CUDA's C++ headers (CUB) were not found: install the CUDA 13 toolkit, or \
         `pip install nvidia-cuda-cccl==13.0.85` and set ALDFIT_CUDA_INCLUDE to its \
         nvidia/cu13/include directory (or ALDFIT_CUDA_ROOT to its nvidia/cu13)",
    ))
}

/// [`include_dirs_why`] without the reason.
pub fn include_dirs() -> Result<Vec<PathBuf>> {
    include_dirs_why().map(|(dirs, _)| dirs)
}

/// NVRTC's options for `arch`, besides the include paths: in the cache key too, so that a
/// changed option never reuses kernels compiled without it.
fn compile_flags(arch: &str) -> Vec<String> {
    vec![
        format!("--gpu-architecture={arch}"),
        "--std=c++17".into(),
        "--device-as-default-execution-space".into(),
        // No contraction into fused multiply-adds: the same roundings as the f64 reference.
        "--fmad=false".into(),
    ]
}

/// Where NVRTC and the headers were found, and their versions: one line for `gpu-check.sh`.
pub fn toolkit_report() -> String {
    let nvrtc = match nvrtc_status() {
        Ok(()) => format!(
            "NVRTC {} at {}",
            nvrtc_version().map_or("?".into(), |(a, b)| format!("{a}.{b}")),
            loaded_nvrtc_dir().map_or("?".into(), |d| d.display().to_string())
        ),
        Err(e) => e.to_string(),
    };
    let headers = match include_dirs_why() {
        Ok((dirs, why)) => format!("CUB headers in {} ({why})", dirs[0].display()),
        Err(e) => e.to_string(),
    };
    format!("{nvrtc}; {headers}")
}

/// Compiles every kernel for `arch` (e.g. `sm_90`) through NVRTC: exactly what the backend
/// loads, and what CI checks on a machine without a GPU.
pub fn compile(arch: &str) -> Result<Ptx> {
    nvrtc_status()?;
    let include_paths = include_dirs()?
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let opts = CompileOptions {
        include_paths,
        options: compile_flags(arch),
        name: Some("aldfit.cu".into()),
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(program_source(), opts).map_err(|e| match e {
        CompileError::CompileError { log, .. } => failed(format!(
            "NVRTC could not compile the kernels for {arch}:\n{}",
            log.to_string_lossy()
        )),
        other => failed(format!("NVRTC failed: {other:?}")),
    })
}

/// Compiles every kernel for the real architecture `arch` (e.g. `sm_90`) to CUBIN: device code
/// for exactly this GPU, loaded without the driver's JIT (which refuses PTX from an NVRTC newer
/// than the driver, and takes seconds). The same program and options as [`compile`].
pub fn compile_cubin(arch: &str) -> Result<Vec<u8>> {
    use cudarc::nvrtc::{result, sys};
    nvrtc_status()?;
    let mut options = compile_flags(arch);
    options.extend(
        include_dirs()?
            .into_iter()
            .map(|p| format!("--include-path={}", p.display())),
    );
    let src = std::ffi::CString::new(program_source())
        .map_err(|_| failed("the kernel source holds a NUL byte"))?;
    let prog = result::create_program(&src, Some(c"aldfit.cu"))
        .map_err(|e| failed(format!("NVRTC could not create the program: {e:?}")))?;
    // SAFETY: `prog` was created above and is destroyed once, below; the buffers are sized by
    // NVRTC's own size queries.
    let out = unsafe {
        let built = result::compile_program(prog, &options);
        let cubin = built.map_err(|_| {
            let log = result::get_program_log(prog).unwrap_or_default();
            let log: Vec<u8> = log
                .iter()
                .map(|&c| c as u8)
                .take_while(|&c| c != 0)
                .collect();
            failed(format!(
                "NVRTC could not compile the kernels for {arch}:\n{}",
                String::from_utf8_lossy(&log)
            ))
        });
        let cubin = cubin.and_then(|()| {
            let mut size = 0usize;
            sys::nvrtcGetCUBINSize(prog, &mut size)
                .result()
                .map_err(|e| failed(format!("NVRTC has no CUBIN for {arch}: {e:?}")))?;
            let mut buf = vec![0u8; size];
            sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr().cast())
                .result()
                .map_err(|e| failed(format!("NVRTC has no CUBIN for {arch}: {e:?}")))?;
            Ok(buf)
        });
        let _ = result::destroy_program(prog);
        cubin
    };
    out
}

/// Where compiled kernels are kept between runs: `ALDFIT_CACHE_DIR`, else the user's cache
/// directory. NVRTC takes seconds over the CUB headers; a cached PTX loads in milliseconds.
fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("ALDFIT_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .map(|d| d.join("aldfit"))
}

/// The cache file for `arch`: named by a hash of everything that goes into the compilation.
fn cache_path(arch: &str) -> Option<PathBuf> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(program_source());
    h.update(arch);
    h.update(format!("{:?}", nvrtc_version()));
    h.update(format!("{:?}", include_dirs().ok()));
    h.update(compile_flags(arch).join(" "));
    let hex: String = h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    cache_dir().map(|d| d.join(format!("kernels-{arch}-{hex}.ptx")))
}

/// The cache file of the CUBIN for `arch` (beside the PTX, with the same key).
fn cubin_cache_path(arch: &str) -> Option<PathBuf> {
    cache_path(arch).map(|p| p.with_extension("cubin"))
}

/// Keeps compiled kernels for the next run; a cache that cannot be written is no error.
fn store(path: &Path, bytes: &[u8]) {
    let write = || -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, bytes)?;
        tmp.persist(path).map(|_| ()).map_err(|e| e.error)
    };
    let _ = write();
}

struct Functions {
    tiles_k: Vec<CudaFunction>,
    tiles_kv: Vec<CudaFunction>,
    merge: CudaFunction,
    partition: CudaFunction,
    segment_stats: CudaFunction,
    ks: CudaFunction,
    study_line: CudaFunction,
    nll_grad: CudaFunction,
    generate: CudaFunction,
    philox: CudaFunction,
    loglik: CudaFunction,
}

/// The sorted chunk on the device: values and, where asked for, feature indices.
pub struct Sorted {
    values: CudaSlice<f32>,
    indices: Option<CudaSlice<u32>>,
}

/// A CUDA device with aldfit's kernels loaded.
pub struct Cuda {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    _module: Arc<CudaModule>,
    f: Functions,
    device: String,
}

/// The CUDA backend: the GPU host layer over a CUDA device.
pub type CudaBackend = GpuBackend<Cuda>;

impl GpuBackend<Cuda> {
    /// Opens device 0 (see [`Cuda::open`]).
    pub fn new() -> Result<Self> {
        Ok(Self::with_device(Cuda::open()?))
    }
}

impl Cuda {
    /// Opens device 0 and compiles the kernels for it, or says in one sentence what is missing.
    pub fn open() -> Result<Self> {
        // SAFETY: only tries to dlopen the library's candidate names.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(unavailable(
                "no NVIDIA driver was found (libcuda.so); install the NVIDIA driver, or use \
                 --backend cpu or wgpu",
            ));
        }
        let count = CudaContext::device_count().map_err(|e| {
            unavailable(format!(
                "the CUDA driver did not start ({e}); check the GPU with nvidia-smi"
            ))
        })?;
        if count < 1 {
            return Err(unavailable("the CUDA driver sees no device"));
        }
        let ctx = drv(CudaContext::new(0), "opening device 0")?;
        let (major, minor) = drv(ctx.compute_capability(), "reading the compute capability")?;
        let name = drv(ctx.name(), "reading the device name")?;
        let arch = format!("sm_{major}{minor}");
        nvrtc_status()?;
        let (module, form) = Self::module(&ctx, &arch)?;
        let f = Self::functions(&module)?;
        let mem = ctx.total_mem().unwrap_or(0) as f64 / (1u64 << 30) as f64;
        let device = format!("{name} ({arch}, {mem:.0} GiB, kernels as {form})");
        let stream = ctx.default_stream();
        Ok(Cuda {
            ctx,
            stream,
            _module: module,
            f,
            device,
        })
    }

    /// The kernels for `arch` and which form was loaded: CUBIN for exactly this GPU (cached, or
    /// compiled and cached), else PTX through the driver's JIT (cached, or compiled and cached).
    fn module(ctx: &Arc<CudaContext>, arch: &str) -> Result<(Arc<CudaModule>, &'static str)> {
        let cubin = cubin_cache_path(arch);
        let cached = cubin.as_ref().and_then(|p| std::fs::read(p).ok());
        if let Some(m) = cached.and_then(|b| ctx.load_module(Ptx::from_binary(b)).ok()) {
            return Ok((m, "CUBIN, cached"));
        }
        let cubin_err = match compile_cubin(arch) {
            Ok(bytes) => match ctx.load_module(Ptx::from_binary(bytes.clone())) {
                Ok(m) => {
                    if let Some(p) = &cubin {
                        store(p, &bytes);
                    }
                    return Ok((m, "CUBIN"));
                }
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        let cache = cache_path(arch);
        let cached = cache
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|src| ctx.load_module(Ptx::from_src(src)).ok());
        let module = match cached {
            Some(m) => Ok(m),
            None => {
                let ptx = compile(arch)?;
                if let Some(p) = &cache {
                    store(p, ptx.to_src().as_bytes());
                }
                ctx.load_module(ptx)
            }
        };
        module.map(|m| (m, "PTX (JIT)")).map_err(|e| {
            let versions = match (driver_version(), nvrtc_version()) {
                (Some(d), Some(n)) => format!(
                    " (the driver supports CUDA {}.{}, NVRTC is {}.{}: NVRTC must not be newer)",
                    d.0, d.1, n.0, n.1
                ),
                _ => String::new(),
            };
            let cubin = format!("; CUBIN failed first: {cubin_err}");
            failed(format!(
                "the driver rejected the compiled kernels: {e}{versions}{cubin}"
            ))
        })
    }

    fn functions(module: &Arc<CudaModule>) -> Result<Functions> {
        let load = |n: &str| drv(module.load_function(n), &format!("loading kernel {n}"));
        Ok(Functions {
            tiles_k: TILES
                .iter()
                .map(|t| load(&format!("sort_tile_{t}_k")))
                .collect::<Result<_>>()?,
            tiles_kv: TILES
                .iter()
                .map(|t| load(&format!("sort_tile_{t}_kv")))
                .collect::<Result<_>>()?,
            merge: load("merge_runs")?,
            partition: load("partition")?,
            segment_stats: load("segment_stats")?,
            ks: load("ks")?,
            study_line: load("study_line")?,
            nll_grad: load("nll_grad")?,
            generate: load("generate")?,
            philox: load("philox_raw")?,
            loglik: load("loglik")?,
        })
    }

    fn to_device<T: cudarc::driver::DeviceRepr>(
        &self,
        data: &[T],
        what: &str,
    ) -> Result<CudaSlice<T>> {
        // Callers return early on empty input: the driver rejects zero-byte allocations.
        debug_assert!(!data.is_empty());
        drv(self.stream.clone_htod(data), what)
    }

    fn output<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        n: usize,
    ) -> Result<CudaSlice<T>> {
        drv(
            self.stream.alloc_zeros::<T>(n.max(1)),
            "allocating an output",
        )
    }

    /// A buffer of `n` values left as the allocator gives it, for a kernel that writes every
    /// one of them before anything reads it (the sort's tiles and merge passes, `generate`):
    /// zero-filling 2 GB before a sort that overwrites it costs a memset of 2 GB.
    fn written<T: cudarc::driver::DeviceRepr>(&self, n: usize) -> Result<CudaSlice<T>> {
        // SAFETY: every caller launches, next on this stream, a kernel that writes all `n`
        // values (sort_rows.cu writes each position of each tile, merge_runs.cu each position
        // of each row, generate.cu each value of each row), so nothing reads them unwritten.
        drv(
            unsafe { self.stream.alloc::<T>(n.max(1)) },
            "allocating an output",
        )
    }

    fn download<T: cudarc::driver::DeviceRepr>(
        &self,
        src: &CudaSlice<T>,
        n: usize,
    ) -> Result<Vec<T>> {
        let mut v = drv(self.stream.clone_dtoh(src), "reading results back")?;
        v.truncate(n);
        Ok(v)
    }

    /// The `spans` of `buf`, one blocking copy each.
    fn spans_back<T: cudarc::driver::DeviceRepr>(
        &self,
        buf: &CudaSlice<T>,
        spans: &[std::ops::Range<usize>],
        what: &str,
    ) -> Result<Vec<Vec<T>>> {
        spans
            .iter()
            .map(|span| drv(self.stream.clone_dtoh(&buf.slice(span.clone())), what))
            .collect()
    }

    /// One launch of a segment kernel (segment_stats, ks, study_line or loglik: they take their
    /// arguments in one order, see common.cuh) over `segs`, with its flag and per-segment input
    /// structs `params` (as f64 words); one `T` (an `abi` output of f64 fields) comes back per
    /// segment.
    fn segment_kernel<T: bytemuck::Pod>(
        &self,
        func: &CudaFunction,
        name: &str,
        chunk: &Held<Sorted>,
        segs: &[abi::Seg],
        flag: u32,
        params: &[f64],
    ) -> Result<Vec<T>> {
        let words = std::mem::size_of::<T>() / 8;
        debug_assert_eq!(words * 8, std::mem::size_of::<T>());
        let seg_words: &[u32] = bytemuck::cast_slice(segs);
        let seg_buf = self.to_device(seg_words, "uploading segments")?;
        let param_buf = if params.is_empty() {
            self.output::<f64>(1)?
        } else {
            self.to_device(params, "uploading parameters")?
        };
        let mut out = self.output::<f64>(segs.len() * words)?;
        let (count, cols) = (segs.len() as u32, chunk.cols as u32);
        let mut launch = self.stream.launch_builder(func);
        launch
            .arg(&chunk.buf.values)
            .arg(&seg_buf)
            .arg(&count)
            .arg(&cols)
            .arg(&flag)
            .arg(&param_buf)
            .arg(&mut out);
        // SAFETY: the segment kernels take these arguments in this order (common.cuh); every
        // segment was checked against the resident chunk, the parameters are the input structs
        // the kernel reads per segment (or unread), and `out` holds one output struct per
        // segment.
        drv(
            unsafe { launch.launch(per_segment(segs.len())) },
            &format!("launching {name}"),
        )?;
        let out = self.download(&out, segs.len() * words)?;
        Ok(bytemuck::pod_collect_to_vec(&out))
    }

    fn segment_stats(
        &self,
        chunk: &Held<Sorted>,
        segs: &[abi::Seg],
        with_ks: bool,
    ) -> Result<Vec<abi::SegmentStatsOut>> {
        let f = &self.f.segment_stats;
        self.segment_kernel(f, "segment_stats", chunk, segs, with_ks as u32, &[])
    }

    /// Sorts `src` (rows × cols) into a new buffer on the device: tiles, then merge passes.
    fn sort_device(
        &self,
        src: &CudaSlice<f32>,
        with_indices: bool,
        rows: usize,
        cols: usize,
    ) -> Result<Sorted> {
        let mut values = self.written::<f32>(rows * cols)?;
        let mut indices = if with_indices {
            Some(self.written::<u32>(rows * cols)?)
        } else {
            None
        };
        let tile = self.sort_tiles(src, &mut values, indices.as_mut(), rows, cols)?;
        let mut width = tile;
        if width < cols {
            let mut scratch = Sorted {
                values: self.written::<f32>(rows * cols)?,
                indices: if with_indices {
                    Some(self.written::<u32>(rows * cols)?)
                } else {
                    None
                },
            };
            let mut sorted = Sorted { values, indices };
            while width < cols {
                self.merge_pass(&sorted, &mut scratch, rows, cols, width)?;
                std::mem::swap(&mut sorted, &mut scratch);
                width *= 2;
            }
            return Ok(sorted);
        }
        Ok(Sorted { values, indices })
    }

    /// Sorts every tile of every row of `src` into `values` (and `indices`); returns the tile.
    fn sort_tiles(
        &self,
        src: &CudaSlice<f32>,
        values: &mut CudaSlice<f32>,
        indices: Option<&mut CudaSlice<u32>>,
        rows: usize,
        cols: usize,
    ) -> Result<usize> {
        let dummy = self.output::<u32>(1)?;
        let which = TILES
            .iter()
            .position(|&t| t >= cols)
            .unwrap_or(TILES.len() - 1);
        let tile = TILES[which];
        let func = if indices.is_some() {
            &self.f.tiles_kv[which]
        } else {
            &self.f.tiles_k[which]
        };
        let blocks = rows * cols.div_ceil(tile);
        if blocks > i32::MAX as usize {
            return Err(Error::Invalid(format!(
                "{rows} rows of {cols} are too many tiles for one launch"
            )));
        }
        let threads = abi::SORT_TILES[which].1;
        let (r32, c32) = (rows as u32, cols as u32);
        let mut launch = self.stream.launch_builder(func);
        launch.arg(src).arg(values);
        match indices {
            Some(ix) => launch.arg(ix),
            None => launch.arg(&dummy),
        };
        launch.arg(&r32).arg(&c32);
        let cfg = LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: matches sort_rows.cu's signature; the buffers hold rows × cols values.
        drv(unsafe { launch.launch(cfg) }, "launching the tile sort")?;
        Ok(tile)
    }

    /// One merge pass: runs of `width` in `from` merged pairwise into runs of 2·width in `to`.
    fn merge_pass(
        &self,
        from: &Sorted,
        to: &mut Sorted,
        rows: usize,
        cols: usize,
        width: usize,
    ) -> Result<()> {
        let dummy = self.output::<u32>(1)?;
        let total = rows * cols;
        let cfg = LaunchConfig {
            grid_dim: (total.div_ceil(256) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let flag = from.indices.is_some() as u32;
        let (r32, c32, w32) = (rows as u32, cols as u32, width as u32);
        let mut launch = self.stream.launch_builder(&self.f.merge);
        launch.arg(&from.values);
        match from.indices.as_ref() {
            Some(ix) => launch.arg(ix),
            None => launch.arg(&dummy),
        };
        launch.arg(&mut to.values);
        match to.indices.as_mut() {
            Some(ix) => launch.arg(ix),
            None => launch.arg(&dummy),
        };
        launch.arg(&r32).arg(&c32).arg(&w32).arg(&flag);
        // SAFETY: matches merge_runs.cu; every buffer holds rows × cols values.
        drv(unsafe { launch.launch(cfg) }, "launching a merge pass")?;
        Ok(())
    }
}

/// One thread per item, 256 to a block.
fn per_thread(items: u64) -> Result<LaunchConfig> {
    let threads = super::abi::DRAW_THREADS as u64;
    let blocks = items.div_ceil(threads).max(1);
    if blocks > i32::MAX as u64 {
        return Err(failed(format!(
            "{items} items are more than one launch covers"
        )));
    }
    Ok(LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (threads as u32, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// One block of SEG_THREADS per segment.
fn per_segment(count: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (count.max(1) as u32, 1, 1),
        block_dim: (SEG_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

impl Device for Cuda {
    type Rows = CudaSlice<f32>;
    type Sorted = Sorted;

    fn info(&self, limits: Limits) -> BackendInfo {
        BackendInfo {
            name: "cuda".into(),
            device: self.device.clone(),
            software: false,
            limits,
        }
    }

    fn limits(&self) -> Limits {
        let free = self.ctx.mem_get_info().map(|(free, _)| free as u64).ok();
        Limits {
            memory_bytes: free,
            max_binding_bytes: free,
            // The tiles' shared memory is static (≤ 48 KiB: no opt-in needed).
            workgroup_memory_bytes: Some(48 << 10),
            max_workgroups_per_dim: Some(i32::MAX as u64),
            sort_tile: Some(TILES[TILES.len() - 1]),
            chunk_values: None,
        }
    }

    fn max_chunk_rows(&self, cols: usize) -> usize {
        // Upload, values, indices and their merge scratch: 20 bytes per value, in half the free
        // memory.
        let free = self
            .ctx
            .mem_get_info()
            .map(|(free, _)| free)
            .unwrap_or(1 << 30);
        let rows = free / 2 / (20 * cols.max(1));
        // Launch grids are u32 and one tile-sort launch takes rows × tiles blocks.
        rows.clamp(
            1,
            (i32::MAX as usize / cols.div_ceil(TILES[TILES.len() - 1]).max(1)).min(1 << 22),
        )
    }

    fn nll_rows_per_launch(&self, cols: usize) -> usize {
        // Only the rows and four sums per row are on the device: 4 chunks' worth.
        self.max_chunk_rows(cols) * 4
    }

    fn upload(&self, rows: &[f32], _cols: usize) -> Result<CudaSlice<f32>> {
        if rows.is_empty() {
            self.output::<f32>(1)
        } else {
            self.to_device(rows, "uploading the chunk")
        }
    }

    fn sort(&self, rows: &Held<CudaSlice<f32>>, with_indices: bool) -> Result<Sorted> {
        if rows.rows == 0 {
            return Ok(Sorted {
                values: self.output::<f32>(1)?,
                indices: None,
            });
        }
        self.sort_device(&rows.buf, with_indices, rows.rows, rows.cols)
    }

    fn generate(
        &self,
        reps: &[abi::Replicate],
        cols: usize,
        key: [u32; 2],
    ) -> Result<CudaSlice<f32>> {
        if reps.is_empty() {
            return self.output::<f32>(0);
        }
        let mut values = self.written::<f32>(reps.len() * cols)?;
        let words: &[u32] = bytemuck::cast_slice(reps);
        let reps_buf = self.to_device(words, "uploading replicate rows")?;
        let blocks = (reps.len() * cols.div_ceil(4)) as u64;
        let [k0, k1] = key;
        let c32 = cols as u32;
        let mut launch = self.stream.launch_builder(&self.f.generate);
        launch
            .arg(&reps_buf)
            .arg(&blocks)
            .arg(&c32)
            .arg(&k0)
            .arg(&k1)
            .arg(&mut values);
        // SAFETY: matches generate.cu; 8 words per replicate row, `blocks` threads each
        // writing at most 4 values inside its row of `values` (rows × cols).
        drv(
            unsafe { launch.launch(per_thread(blocks)?) },
            "launching generate",
        )?;
        Ok(values)
    }

    fn philox(&self, key: [u32; 2], counters: &[[u32; 4]]) -> Result<Vec<[u32; 4]>> {
        let flat: &[u32] = bytemuck::cast_slice(counters);
        let input = self.to_device(flat, "uploading counters")?;
        let mut out = self.output::<u32>(flat.len())?;
        let count = counters.len() as u64;
        let mut launch = self.stream.launch_builder(&self.f.philox);
        launch
            .arg(&input)
            .arg(&count)
            .arg(&0u32)
            .arg(&key[0])
            .arg(&key[1])
            .arg(&mut out);
        // SAFETY: matches philox_raw in generate.cu; `count` uint4 in and out.
        drv(
            unsafe { launch.launch(per_thread(count)?) },
            "launching philox_raw",
        )?;
        Ok(bytemuck::pod_collect_to_vec(
            &self.download(&out, flat.len())?,
        ))
    }

    fn partition(
        &self,
        chunk: &Held<Sorted>,
        segs: &[abi::Seg],
        pivots: &[f32],
        strict: bool,
    ) -> Result<Vec<u32>> {
        let seg_words: &[u32] = bytemuck::cast_slice(segs);
        let seg_buf = self.to_device(seg_words, "uploading segments")?;
        let pivot_buf = self.to_device(pivots, "uploading pivots")?;
        let mut out = self.output::<u32>(segs.len())?;
        let (count, cols, flag) = (segs.len() as u32, chunk.cols as u32, strict as u32);
        let mut launch = self.stream.launch_builder(&self.f.partition);
        launch
            .arg(&chunk.buf.values)
            .arg(&seg_buf)
            .arg(&count)
            .arg(&cols)
            .arg(&pivot_buf)
            .arg(&flag)
            .arg(&mut out);
        let cfg = LaunchConfig {
            grid_dim: (segs.len().div_ceil(256) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: matches partition.cu; one pivot and one output per checked segment.
        drv(unsafe { launch.launch(cfg) }, "launching partition")?;
        self.download(&out, segs.len())
    }

    fn fit(&self, chunk: &Held<Sorted>, segs: &[abi::Seg]) -> Result<Vec<AldFit>> {
        let out = self.segment_stats(chunk, segs, false)?;
        Ok(out.iter().map(abi::SegmentStatsOut::fit).collect())
    }

    fn baselines(&self, chunk: &Held<Sorted>, segs: &[abi::Seg]) -> Result<Vec<Baselines>> {
        let out = self.segment_stats(chunk, segs, false)?;
        Ok(out.iter().map(abi::SegmentStatsOut::baselines).collect())
    }

    /// Fit, KS at the fitted parameters and baselines in one launch.
    fn fused_stats(
        &self,
        chunk: &Held<Sorted>,
        segs: &[abi::Seg],
    ) -> Option<Result<Vec<SegmentStats>>> {
        Some(
            self.segment_stats(chunk, segs, true)
                .map(|out| out.iter().map(abi::SegmentStatsOut::stats).collect()),
        )
    }

    fn ks(&self, chunk: &Held<Sorted>, segs: &[abi::Seg], laws: &[abi::KsLaw]) -> Result<Vec<f64>> {
        let words: &[f64] = bytemuck::cast_slice(laws);
        self.segment_kernel(&self.f.ks, "ks", chunk, segs, 0, words)
    }

    fn study_line(
        &self,
        chunk: &Held<Sorted>,
        segs: &[abi::Seg],
        side: Side,
    ) -> Result<Vec<StudyLine>> {
        let flag = (side == Side::Negative) as u32;
        let f = &self.f.study_line;
        let out: Vec<abi::LineSums> =
            self.segment_kernel(f, "study_line", chunk, segs, flag, &[])?;
        Ok(out.iter().zip(segs).map(|(o, s)| o.line(s.len())).collect())
    }

    fn loglik(
        &self,
        chunk: &Held<Sorted>,
        segs: &[abi::Seg],
        laws: &[abi::LoglikLaw],
    ) -> Result<Vec<abi::LoglikSums>> {
        let words: &[f64] = bytemuck::cast_slice(laws);
        self.segment_kernel(&self.f.loglik, "loglik", chunk, segs, 0, words)
    }

    /// The four tail sums of every row of `rows` (one row per location) on the device.
    fn tail_sums(&self, rows: &CudaSlice<f32>, cols: usize, locs: &[f64]) -> Result<Vec<TailSums>> {
        let n = locs.len();
        let loc_buf = self.to_device(locs, "uploading locations")?;
        let words = std::mem::size_of::<abi::TailSumsOut>() / 8;
        let mut out = self.output::<f64>(n * words)?;
        let (count, c32) = (n as u32, cols as u32);
        let mut launch = self.stream.launch_builder(&self.f.nll_grad);
        launch
            .arg(rows)
            .arg(&count)
            .arg(&c32)
            .arg(&loc_buf)
            .arg(&mut out);
        // SAFETY: matches nll_grad.cu; n rows of cols values, one location and one TailSumsOut
        // per row.
        drv(
            unsafe { launch.launch(per_segment(n)) },
            "launching nll_grad",
        )?;
        let sums: Vec<abi::TailSumsOut> =
            bytemuck::pod_collect_to_vec(&self.download(&out, n * words)?);
        Ok(sums.iter().map(|s| s.sums(cols)).collect())
    }

    /// One copy per span of [`read_spans`], not one per segment: a 128k-row split level would
    /// otherwise wait on 128k tiny blocking copies.
    fn read(
        &self,
        chunk: &Held<Sorted>,
        segs: &[Segment],
        values: bool,
    ) -> Result<Vec<SortedSegment>> {
        let r = &chunk.buf;
        let (spans, places) = read_spans(segs, chunk.cols, READ_GAP);
        let value_spans: Vec<Vec<f32>> = if values {
            self.spans_back(&r.values, &spans, "reading segments back")?
        } else {
            Vec::new()
        };
        let index_spans: Vec<Vec<u32>> = match &r.indices {
            Some(ix) => self.spans_back(ix, &spans, "reading segments' indices back")?,
            None => Vec::new(),
        };
        fn part<T: Clone>(spans: &[Vec<T>], p: &SpanPlace, len: usize) -> Vec<T> {
            match spans.get(p.span) {
                Some(span) if len > 0 => span[p.at..p.at + len].to_vec(),
                _ => Vec::new(),
            }
        }
        Ok(segs
            .iter()
            .zip(&places)
            .map(|(s, p)| SortedSegment {
                values: part(&value_spans, p, s.len()),
                indices: part(&index_spans, p, s.len()),
            })
            .collect())
    }

    fn synchronize(&self) -> Result<()> {
        drv(self.stream.synchronize(), "waiting for the device")
    }

    fn copy_bandwidth(&self, bytes: usize) -> Result<f64> {
        let n = (bytes / 4).max(1 << 18);
        let src = self.output::<f32>(n)?;
        let mut dst = self.output::<f32>(n)?;
        let mut copy = || -> Result<()> {
            drv(
                self.stream.memcpy_dtod(&src, &mut dst),
                "copying on the device",
            )?;
            drv(self.stream.synchronize(), "waiting for the device")
        };
        copy()?;
        let t = super::best_time(5, copy)?;
        Ok(2.0 * (n * 4) as f64 / t)
    }
}
