//! The wgpu backend: every primitive in hand-written WGSL (shaders/*.wgsl), run through wgpu.
//!
//! WGSL has no f64: segment sums are shifted, scaled by powers of two and carried as double-f32
//! pairs where cancellation would cost accuracy (shaders/df.wgsl); the host finishes every closed
//! form in f64. Rows up to the workgroup-memory tile are sorted in one pass, wider rows by a
//! multi-pass bitonic sort in global memory; chunks respect the device's binding limits.

use std::sync::mpsc;

use super::gpu::{read_spans, Device, GpuBackend, Held, READ_GAP};
use super::{abi, BackendInfo, Limits, Segment, Side, SortedSegment};
use crate::ald::{AldFit, Baselines, StudyLine, TailSums};
use crate::error::{Error, Result};

fn unavailable(reason: impl Into<String>) -> Error {
    Error::BackendUnavailable {
        backend: "wgpu".into(),
        reason: reason.into(),
    }
}

fn failed(msg: impl Into<String>) -> Error {
    Error::Backend {
        backend: "wgpu".into(),
        msg: msg.into(),
    }
}

/// A wgpu device with the pipelines aldfit runs on it.
pub struct Gpu {
    /// The first error the device reported outside any call's own result (wgpu's default is to
    /// panic on those); every readback and synchronisation hands it back as an error.
    errors: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    /// The longest (power-of-two) row the workgroup-memory sort takes.
    tile: usize,
    sort: wgpu::ComputePipeline,
    wide: WideSort,
    kernels: Kernels,
    binding_cap: Option<u64>,
}

/// The multi-pass sort of sort_wide.wgsl: three entry points over one explicit layout.
struct WideSort {
    layout: wgpu::BindGroupLayout,
    load: wgpu::ComputePipeline,
    step: wgpu::ComputePipeline,
    store: wgpu::ComputePipeline,
}

struct Kernels {
    partition: wgpu::ComputePipeline,
    fit: wgpu::ComputePipeline,
    ks: wgpu::ComputePipeline,
    baselines: wgpu::ComputePipeline,
    study_line: wgpu::ComputePipeline,
    nll_grad: wgpu::ComputePipeline,
    generate: wgpu::ComputePipeline,
    philox: wgpu::ComputePipeline,
    loglik: wgpu::ComputePipeline,
}

/// Double-f32 arithmetic shared by kernels (shaders/df.wgsl).
const DF: &str = include_str!("../../shaders/df.wgsl");

/// Workgroups per dimension of a dispatch: the WebGPU limit, whatever the device says.
const MAX_GROUPS: usize = 65_535;

impl Gpu {
    /// Opens the best adapter (discrete, integrated, virtual, then CPU). A software adapter such
    /// as lavapipe is taken only with `allow_cpu`. `WGPU_BACKEND` (e.g. `vulkan`) restricts the
    /// search as wgpu documents.
    pub fn new(allow_cpu: bool) -> Result<Self> {
        pollster::block_on(Self::open(allow_cpu))
    }

    async fn open(allow_cpu: bool) -> Result<Self> {
        let adapter = Self::adapter(allow_cpu).await?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("aldfit"),
                required_features: wgpu::Features::empty(),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(format!("{} refused a device: {e}", info.name)))?;
        let errors = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        device.on_uncaptured_error(std::sync::Arc::new({
            let errors = errors.clone();
            move |e: wgpu::Error| {
                if let Ok(mut slot) = errors.lock() {
                    slot.get_or_insert_with(|| e.to_string());
                }
            }
        }));
        // Keys and indices of a row in workgroup memory: 8 bytes per value.
        let tile_limit = (limits.max_compute_workgroup_storage_size as usize / 8).min(1 << 14);
        if tile_limit < 256 {
            return Err(unavailable(format!(
                "{} has only {} bytes of workgroup memory",
                info.name, limits.max_compute_workgroup_storage_size
            )));
        }
        let tile = 1usize << tile_limit.ilog2();
        let (sort, wide, kernels) = Self::pipelines(&device, tile);
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            tile,
            sort,
            wide,
            kernels,
            binding_cap: None,
            errors,
        })
    }

    /// The best adapter there is (discrete, integrated, virtual, other, then CPU), or why none.
    async fn adapter(allow_cpu: bool) -> Result<wgpu::Adapter> {
        let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        if wgpu::Instance::enabled_backend_features().is_empty() {
            return Err(unavailable(
                "this build of wgpu has no backend for this platform",
            ));
        }
        let backends = desc.backends;
        let instance = wgpu::Instance::new(desc);
        let mut adapters = instance.enumerate_adapters(backends).await;
        let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Other => 3,
            wgpu::DeviceType::Cpu => 4,
        };
        adapters.sort_by_key(rank);
        let found: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?}, {:?})", i.name, i.device_type, i.backend)
            })
            .collect();
        let adapter = adapters
            .into_iter()
            .find(|a| allow_cpu || a.get_info().device_type != wgpu::DeviceType::Cpu)
            .ok_or_else(|| {
                if found.is_empty() {
                    unavailable(
                        "no GPU adapter found; install a Vulkan driver (for a software one: \
                         apt-get install mesa-vulkan-drivers libvulkan1)",
                    )
                } else {
                    unavailable(format!(
                        "only software adapters found ({}); ask for --backend wgpu to use one",
                        found.join(", ")
                    ))
                }
            })?;
        Ok(adapter)
    }

    /// Every kernel compiled for `device`, the row sort for rows of up to `tile` values.
    fn pipelines(device: &wgpu::Device, tile: usize) -> (wgpu::ComputePipeline, WideSort, Kernels) {
        let pipeline = |name: &str, source: String| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let common = include_str!("../../shaders/segments.wgsl");
        let segment = |name: &str, body: &str| pipeline(name, format!("{common}\n{body}"));
        let philox = include_str!("../../shaders/philox.wgsl");
        let drawing = |name: &str, body: &str| pipeline(name, format!("{philox}\n{body}"));
        let sort = pipeline(
            "sort_rows.wgsl",
            include_str!("../../shaders/sort_rows.wgsl").replace("{{TILE}}", &tile.to_string()),
        );
        let wide = Self::wide_sort(device);
        let kernels = Kernels {
            partition: segment(
                "partition.wgsl",
                include_str!("../../shaders/partition.wgsl"),
            ),
            fit: segment(
                "fit.wgsl",
                &format!("{DF}\n{}", include_str!("../../shaders/fit.wgsl")),
            ),
            ks: segment("ks.wgsl", include_str!("../../shaders/ks.wgsl")),
            baselines: segment(
                "baselines.wgsl",
                include_str!("../../shaders/baselines.wgsl"),
            ),
            study_line: segment(
                "study_line.wgsl",
                include_str!("../../shaders/study_line.wgsl"),
            ),
            nll_grad: segment("nll_grad.wgsl", include_str!("../../shaders/nll_grad.wgsl")),
            generate: drawing("generate.wgsl", include_str!("../../shaders/generate.wgsl")),
            philox: drawing(
                "philox_raw.wgsl",
                include_str!("../../shaders/philox_raw.wgsl"),
            ),
            loglik: segment("loglik.wgsl", include_str!("../../shaders/loglik.wgsl")),
        };
        (sort, wide, kernels)
    }

    /// The three entry points of sort_wide.wgsl over one explicit layout.
    fn wide_sort(device: &wgpu::Device) -> WideSort {
        let storage = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: false },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("sort_wide"),
            entries: &[
                storage(0),
                storage(1),
                storage(2),
                storage(3),
                wgpu::BindGroupLayoutEntry {
                    binding: 4,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("sort_wide"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("sort_wide.wgsl"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/sort_wide.wgsl").into()),
        });
        let entry = |name: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(name),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        WideSort {
            load: entry("load"),
            step: entry("step"),
            store: entry("store"),
            layout,
        }
    }

    /// The error the device reported since the last check, if any.
    fn check_errors(&self) -> Result<()> {
        let taken = self.errors.lock().ok().and_then(|mut slot| slot.take());
        match taken {
            Some(msg) => Err(failed(format!("the device reported an error: {msg}"))),
            None => Ok(()),
        }
    }

    /// Runs a one-off kernel `main(@builtin(global_invocation_id))` over `n` invocations with
    /// the double-f32 helpers prepended, binding 0 = `input` (f32, read), binding 1 = an output of
    /// `out_per` f32 per invocation, binding 2 = a uniform holding 1.0 and `n`. For testing
    /// kernel helpers against exact arithmetic on the host.
    pub fn probe(&self, body: &str, input: &[f32], n: usize, out_per: usize) -> Result<Vec<f32>> {
        let source = format!("{DF}\n{body}");
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("probe"),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("probe"),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        let input_buf = self.buffer_with(bytemuck::cast_slice(input), wgpu::BufferUsages::STORAGE);
        let out = self.output((n * out_per * 4) as u64);
        // The probe bodies' own uniform: (1.0 as bits, n, 0, 0).
        let params = self.uniform(&[1f32.to_bits(), n as u32, 0, 0]);
        let groups = n.div_ceil(64).min(MAX_GROUPS) as u32;
        self.dispatch(&pipeline, &[&input_buf, &out, &params], groups, 1);
        self.read_as(&out, n * out_per)
    }

    /// The adapter, as `fit` prints it and benchmark ids name it.
    pub fn adapter_name(&self) -> String {
        format!(
            "{} ({:?}, {:?}, driver {})",
            self.info.name, self.info.device_type, self.info.backend, self.info.driver_info
        )
    }

    pub fn is_cpu(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The widest row sorted in one pass in workgroup memory; wider rows take the multi-pass sort.
    pub fn max_sort_width(&self) -> usize {
        self.tile
    }

    /// Rows of `cols` values that one storage binding holds.
    pub fn max_rows_per_binding(&self, cols: usize) -> usize {
        let width = if cols > self.tile {
            cols.next_power_of_two()
        } else {
            cols.max(1)
        };
        (self.binding_bytes() as usize / (4 * width)).max(1)
    }

    /// The largest storage binding this device takes (or the cap set for tests).
    fn binding_bytes(&self) -> u64 {
        let device = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        self.binding_cap.map_or(device, |cap| cap.min(device))
    }

    /// Pretends the device binds at most `bytes` per storage buffer, so that tests run the
    /// chunking a real head needs on a big GPU with small data.
    pub fn cap_binding_size(&mut self, bytes: u64) {
        self.binding_cap = Some(bytes);
    }

    /// Sorts each row of `values` (row-major, `cols` per row) ascending, with each value's
    /// feature index; ties in feature order. Rows go to the device in chunks that respect its
    /// binding limits.
    pub fn sort_rows(&self, values: &[f32], cols: usize) -> Result<(Vec<f32>, Vec<u32>)> {
        super::check_whole_rows(values.len(), cols)?;
        let per_chunk = self.max_rows_per_binding(cols).min(MAX_GROUPS * MAX_GROUPS);
        let mut out_values = Vec::with_capacity(values.len());
        let mut out_indices = Vec::with_capacity(values.len());
        for chunk in values.chunks(per_chunk * cols) {
            let r = self.upload_sorted(chunk, cols, true)?;
            out_values.extend(self.read_as::<f32>(&r.values, chunk.len())?);
            out_indices.extend(self.read_as::<u32>(&r.indices, chunk.len())?);
        }
        Ok((out_values, out_indices))
    }

    /// Sorts the rows in `values` where they are, with a new buffer of feature indices.
    fn sort_in_place(&self, values: wgpu::Buffer, rows: usize, cols: usize) -> Sorted {
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let indices = self.empty((rows * cols * 4) as u64, usage);
        if cols <= self.tile {
            let (gx, gy) = grid(rows);
            let padded = cols.next_power_of_two() as u32;
            let params = self.uniform(&abi::SortParams {
                cols: cols as u32,
                padded,
                rows: rows as u32,
                groups_x: gx,
            });
            self.dispatch(&self.sort, &[&values, &indices, &params], gx, gy);
        } else {
            self.sort_wide(&values, &indices, rows, cols);
        }
        Sorted { values, indices }
    }

    /// Rows wider than workgroup memory: the bitonic network in global memory, one dispatch per
    /// step, on scratch copies padded to a power of two.
    fn sort_wide(&self, values: &wgpu::Buffer, indices: &wgpu::Buffer, rows: usize, cols: usize) {
        let padded = cols.next_power_of_two();
        let scratch = (rows * padded * 4) as u64;
        let keys = self.empty(scratch, wgpu::BufferUsages::STORAGE);
        let ids = self.empty(scratch, wgpu::BufferUsages::STORAGE);
        let w = &self.wide;
        // (pipeline, invocations, k, j) for every dispatch, in order.
        let mut steps = vec![(&w.load, rows * padded, 0, 0)];
        let mut k = 2;
        while k <= padded {
            let mut j = k / 2;
            while j > 0 {
                steps.push((&w.step, rows * padded / 2, k, j));
                j /= 2;
            }
            k *= 2;
        }
        steps.push((&w.store, rows * cols, 0, 0));
        let binds: Vec<(wgpu::BindGroup, u32, u32)> = steps
            .iter()
            .map(|&(_, invocations, k, j)| {
                let (gx, gy) = grid(invocations.div_ceil(256));
                let params = self.uniform(&abi::WideSortParams {
                    cols: cols as u32,
                    padded: padded as u32,
                    rows: rows as u32,
                    groups_x: gx,
                    k: k as u32,
                    j: j as u32,
                    ..Default::default()
                });
                let bind = self.bind(&w.layout, &[values, indices, &keys, &ids, &params]);
                (bind, gx, gy)
            })
            .collect();
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            // Each dispatch sees the writes of the ones before it (WebGPU usage scopes).
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for ((pipeline, ..), (bind, gx, gy)) in steps.iter().zip(&binds) {
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, bind, &[]);
                pass.dispatch_workgroups(*gx, *gy, 1);
            }
        }
        self.queue.submit([encoder.finish()]);
    }

    /// A bind group of `buffers` at bindings 0, 1, … in order.
    fn bind(&self, layout: &wgpu::BindGroupLayout, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout,
            entries: &entries,
        })
    }

    /// A buffer initialised with `bytes`.
    fn buffer_with(&self, bytes: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        // Zero-length bindings are invalid: bind at least one word.
        let contents: &[u8] = if bytes.is_empty() { &[0; 4] } else { bytes };
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents,
                usage,
            })
    }

    fn empty(&self, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes.max(4),
            usage,
            mapped_at_creation: false,
        })
    }

    /// A uniform holding one of the kernels' parameter structs (`abi`).
    fn uniform<T: bytemuck::Pod>(&self, p: &T) -> wgpu::Buffer {
        self.buffer_with(bytemuck::bytes_of(p), wgpu::BufferUsages::UNIFORM)
    }

    fn output(&self, bytes: u64) -> wgpu::Buffer {
        self.empty(
            bytes,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        )
    }

    /// Runs `pipeline` over a gx × gy grid with `buffers` bound in order.
    fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
        gx: u32,
        gy: u32,
    ) {
        let bind = self.bind(&pipeline.get_bind_group_layout(0), buffers);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind, &[]);
            if gx > 0 && gy > 0 {
                pass.dispatch_workgroups(gx, gy, 1);
            }
        }
        self.queue.submit([encoder.finish()]);
    }

    /// Copies `bytes` from `src` at `offset` back to the host, polling until it arrives.
    fn read(&self, src: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        self.check_errors()?;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let dst = self.empty(
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(src, offset, &dst, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let slice = dst.slice(..bytes);
        let (tx, rx) = mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| failed(format!("waiting for the device: {e}")))?;
        rx.recv()
            .map_err(|_| failed("the device dropped a readback"))?
            .map_err(|e| failed(format!("reading results back: {e}")))?;
        let out = slice
            .get_mapped_range()
            .map_err(|e| failed(format!("reading results back: {e}")))?
            .to_vec();
        dst.unmap();
        self.check_errors()?;
        Ok(out)
    }

    /// The first `n` values of type `T` in `src`.
    fn read_as<T: bytemuck::Pod>(&self, src: &wgpu::Buffer, n: usize) -> Result<Vec<T>> {
        let bytes = self.read(src, 0, (n * std::mem::size_of::<T>()) as u64)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}

impl Gpu {
    /// Runs a drawing kernel (philox.wgsl) over `blocks` invocations: `input` bound first, then
    /// the `Draw` uniform, then `out`.
    fn draw(
        &self,
        pipeline: &wgpu::ComputePipeline,
        input: &wgpu::Buffer,
        out: &wgpu::Buffer,
        cols: usize,
        blocks: usize,
        key: [u32; 2],
    ) -> Result<()> {
        if blocks > u32::MAX as usize {
            return Err(failed(format!(
                "{blocks} blocks are more than one dispatch draws"
            )));
        }
        let (gx, gy) = grid(blocks.div_ceil(abi::DRAW_THREADS as usize));
        let uniform = self.uniform(&abi::Draw {
            cols: cols as u32,
            blocks_per_row: cols.div_ceil(4).max(1) as u32,
            blocks: blocks as u32,
            groups_x: gx,
            key,
            pad: [0; 2],
        });
        self.dispatch(pipeline, &[input, &uniform, out], gx, gy);
        Ok(())
    }
}

impl Gpu {
    /// The words of `segs` (of rows `cols` wide) from each of `buffers`, through one staging
    /// buffer and one map: per buffer, per segment.
    fn gather(
        &self,
        buffers: &[&wgpu::Buffer],
        cols: usize,
        segs: &[Segment],
    ) -> Result<Vec<Vec<Vec<u32>>>> {
        // Segments close together come back in one copy (see `read_spans`): a 128k-row split
        // level is then a handful of copy commands, not 128k.
        let (spans, places) = read_spans(segs, cols, READ_GAP);
        let total: usize = spans.iter().map(|s| s.len()).sum();
        if total == 0 {
            return Ok(vec![vec![Vec::new(); segs.len()]; buffers.len()]);
        }
        let bytes_per = (total * 4) as u64;
        let staging = self.empty(
            bytes_per * buffers.len() as u64,
            wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        );
        let mut encoder = self.device.create_command_encoder(&Default::default());
        let mut starts = Vec::with_capacity(spans.len());
        let mut at = 0u64;
        for span in &spans {
            starts.push(at as usize / 4);
            let bytes = (span.len() * 4) as u64;
            for (k, b) in buffers.iter().enumerate() {
                let to = at + k as u64 * bytes_per;
                encoder.copy_buffer_to_buffer(b, (span.start * 4) as u64, &staging, to, bytes);
            }
            at += bytes;
        }
        self.queue.submit([encoder.finish()]);
        let words: Vec<u32> = self.read_as(&staging, total * buffers.len())?;
        Ok(words
            .chunks(total)
            .map(|part| {
                segs.iter()
                    .zip(&places)
                    .map(|(s, p)| match s.len() {
                        0 => Vec::new(),
                        len => part[starts[p.span] + p.at..][..len].to_vec(),
                    })
                    .collect()
            })
            .collect())
    }
}

/// A sorted chunk kept on the device: values and each value's feature index (the sort carries
/// them whether or not they are asked for).
pub struct Sorted {
    values: wgpu::Buffer,
    indices: wgpu::Buffer,
}

/// A 2-D grid of at least `n` workgroups, at most 65 535 per dimension.
fn grid(n: usize) -> (u32, u32) {
    let gx = n.clamp(1, MAX_GROUPS);
    (gx as u32, n.div_ceil(gx) as u32)
}

/// The wgpu backend: the GPU host layer over a wgpu device.
pub type WgpuBackend = GpuBackend<Gpu>;

impl GpuBackend<Gpu> {
    /// Opens the best adapter (see [`Gpu::new`]).
    pub fn new(allow_cpu: bool) -> Result<Self> {
        Ok(Self::with_device(Gpu::new(allow_cpu)?))
    }
}

impl Gpu {
    /// Runs a per-segment kernel over `segs` of `chunk`, `per_group` segments to a workgroup:
    /// (values, segments, params) bind first, then `extra`, then the output of one `T` per
    /// segment, which comes back.
    fn segment_kernel<T: bytemuck::Pod>(
        &self,
        pipeline: &wgpu::ComputePipeline,
        chunk: &Held<Sorted>,
        segs: &[abi::Seg],
        flag: u32,
        extra: &[&wgpu::Buffer],
        per_group: usize,
    ) -> Result<Vec<T>> {
        let seg_buf = self.buffer_with(bytemuck::cast_slice(segs), wgpu::BufferUsages::STORAGE);
        let (gx, gy) = grid(segs.len().div_ceil(per_group));
        let params = self.uniform(&abi::SegmentParams {
            cols: chunk.cols as u32,
            count: segs.len() as u32,
            groups_x: gx,
            flag,
        });
        let out = self.output((segs.len() * std::mem::size_of::<T>()) as u64);
        let mut buffers = vec![&chunk.buf.values, &seg_buf, &params];
        buffers.extend_from_slice(extra);
        buffers.push(&out);
        self.dispatch(pipeline, &buffers, gx, gy);
        self.read_as(&out, segs.len())
    }
}

impl Device for Gpu {
    type Rows = wgpu::Buffer;
    type Sorted = Sorted;

    fn info(&self, limits: Limits) -> BackendInfo {
        BackendInfo {
            name: "wgpu".into(),
            device: self.adapter_name(),
            software: self.is_cpu(),
            limits,
        }
    }

    fn limits(&self) -> Limits {
        let l = &self.limits;
        Limits {
            memory_bytes: None,
            max_binding_bytes: Some(self.binding_bytes()),
            workgroup_memory_bytes: Some(l.max_compute_workgroup_storage_size as u64),
            max_workgroups_per_dim: Some(l.max_compute_workgroups_per_dimension as u64),
            sort_tile: Some(self.tile),
            chunk_values: None,
        }
    }

    fn max_chunk_rows(&self, cols: usize) -> usize {
        self.max_rows_per_binding(cols).min(1 << 20)
    }

    /// The kernels accumulate in f32, and GPUs may flush subnormals to zero. Measured on
    /// lavapipe with the nasty rows scaled by powers of two (`validate`): right for a row's
    /// largest |value| from 2^-110 to 2^122, wrong from 2^-118 down (KS 0.5, study line
    /// slope off by 1) and at 2^126 (NLL gradients overflow). The bounds keep a margin of 2^6
    /// and 2^22 on that.
    fn row_scales(&self) -> Option<(f32, f32)> {
        Some((2f32.powi(-104), 2f32.powi(100)))
    }

    fn nll_rows_per_launch(&self, cols: usize) -> usize {
        self.max_rows_per_binding(cols)
    }

    fn upload(&self, rows: &[f32], _cols: usize) -> Result<wgpu::Buffer> {
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        Ok(self.buffer_with(bytemuck::cast_slice(rows), usage))
    }

    fn sort(&self, rows: &Held<wgpu::Buffer>, _with_indices: bool) -> Result<Sorted> {
        let bytes = (rows.rows * rows.cols * 4) as u64;
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let values = self.empty(bytes, usage);
        if bytes > 0 {
            let mut encoder = self.device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(&rows.buf, 0, &values, 0, bytes);
            self.queue.submit([encoder.finish()]);
        }
        Ok(self.sort_in_place(values, rows.rows, rows.cols))
    }

    /// Sorts in the uploaded buffer itself: no unsorted copy stays.
    fn upload_sorted(&self, rows: &[f32], cols: usize, _with_indices: bool) -> Result<Sorted> {
        let values = Device::upload(self, rows, cols)?;
        Ok(self.sort_in_place(values, rows.len() / cols, cols))
    }

    fn generate(
        &self,
        reps: &[abi::Replicate],
        cols: usize,
        key: [u32; 2],
    ) -> Result<wgpu::Buffer> {
        let reps_buf = self.buffer_with(bytemuck::cast_slice(reps), wgpu::BufferUsages::STORAGE);
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let values = self.empty((reps.len() * cols * 4) as u64, usage);
        let blocks = reps.len() * cols.div_ceil(4);
        self.draw(
            &self.kernels.generate,
            &reps_buf,
            &values,
            cols,
            blocks,
            key,
        )?;
        Ok(values)
    }

    fn philox(&self, key: [u32; 2], counters: &[[u32; 4]]) -> Result<Vec<[u32; 4]>> {
        let input = self.buffer_with(bytemuck::cast_slice(counters), wgpu::BufferUsages::STORAGE);
        let out = self.output((counters.len() * 16) as u64);
        self.draw(&self.kernels.philox, &input, &out, 0, counters.len(), key)?;
        self.read_as(&out, counters.len())
    }

    fn partition(
        &self,
        chunk: &Held<Sorted>,
        segs: &[abi::Seg],
        pivots: &[f32],
        strict: bool,
    ) -> Result<Vec<u32>> {
        let pivot_buf = self.buffer_with(bytemuck::cast_slice(pivots), wgpu::BufferUsages::STORAGE);
        let p = &self.kernels.partition;
        self.segment_kernel(p, chunk, segs, strict as u32, &[&pivot_buf], 256)
    }

    fn fit(&self, chunk: &Held<Sorted>, segs: &[abi::Seg]) -> Result<Vec<AldFit>> {
        // flag carries 1.0 for the kernel's exact arithmetic (see fit.wgsl).
        let one = 1f32.to_bits();
        let out: Vec<abi::FitOut> =
            self.segment_kernel(&self.kernels.fit, chunk, segs, one, &[], 1)?;
        Ok(out.iter().map(abi::FitOut::fit).collect())
    }

    fn baselines(&self, chunk: &Held<Sorted>, segs: &[abi::Seg]) -> Result<Vec<Baselines>> {
        let b = &self.kernels.baselines;
        let out: Vec<abi::BaselineSums> = self.segment_kernel(b, chunk, segs, 0, &[], 1)?;
        Ok(out.iter().map(abi::BaselineSums::baselines).collect())
    }

    fn ks(&self, chunk: &Held<Sorted>, segs: &[abi::Seg], laws: &[abi::KsLaw]) -> Result<Vec<f64>> {
        let words: Vec<abi::KsLawF32> = laws.iter().map(abi::KsLawF32::from).collect();
        let laws_buf = self.buffer_with(bytemuck::cast_slice(&words), wgpu::BufferUsages::STORAGE);
        let d: Vec<f32> = self.segment_kernel(&self.kernels.ks, chunk, segs, 0, &[&laws_buf], 1)?;
        Ok(d.into_iter().map(f64::from).collect())
    }

    fn study_line(
        &self,
        chunk: &Held<Sorted>,
        segs: &[abi::Seg],
        side: Side,
    ) -> Result<Vec<StudyLine>> {
        let flag = (side == Side::Negative) as u32;
        let l = &self.kernels.study_line;
        let out: Vec<abi::LineSumsF32> = self.segment_kernel(l, chunk, segs, flag, &[], 1)?;
        Ok(out.iter().zip(segs).map(|(o, s)| o.line(s.len())).collect())
    }

    fn loglik(
        &self,
        chunk: &Held<Sorted>,
        segs: &[abi::Seg],
        laws: &[abi::LoglikLaw],
    ) -> Result<Vec<abi::LoglikSums>> {
        let words: Vec<abi::LoglikLawF32> = laws.iter().map(abi::LoglikLawF32::from).collect();
        let laws_buf = self.buffer_with(bytemuck::cast_slice(&words), wgpu::BufferUsages::STORAGE);
        let l = &self.kernels.loglik;
        let out: Vec<abi::LoglikSumsF32> =
            self.segment_kernel(l, chunk, segs, 0, &[&laws_buf], 1)?;
        Ok(out.iter().map(abi::LoglikSums::from).collect())
    }

    fn tail_sums(&self, rows: &wgpu::Buffer, cols: usize, locs: &[f64]) -> Result<Vec<TailSums>> {
        let n = locs.len();
        // μ as an f32 pair (hi, lo): x − hi − lo keeps the f64 location's precision.
        let pairs: Vec<[f32; 2]> = locs.iter().map(|&m| abi::split_f64(m)).collect();
        let loc_buf = self.buffer_with(bytemuck::cast_slice(&pairs), wgpu::BufferUsages::STORAGE);
        let (gx, gy) = grid(n);
        let params = self.uniform(&abi::SegmentParams {
            cols: cols as u32,
            count: n as u32,
            groups_x: gx,
            flag: 0,
        });
        let out = self.output((n * std::mem::size_of::<abi::TailSumsF32>()) as u64);
        let buffers = [rows, &params, &loc_buf, &out];
        self.dispatch(&self.kernels.nll_grad, &buffers, gx, gy);
        let sums: Vec<abi::TailSumsF32> = self.read_as(&out, n)?;
        Ok(sums.iter().map(|s| s.sums(cols)).collect())
    }

    fn read(
        &self,
        chunk: &Held<Sorted>,
        segs: &[Segment],
        values: bool,
    ) -> Result<Vec<SortedSegment>> {
        let r = &chunk.buf;
        let buffers: &[&wgpu::Buffer] = if values {
            &[&r.indices, &r.values]
        } else {
            &[&r.indices]
        };
        let mut parts = self.gather(buffers, chunk.cols, segs)?.into_iter();
        let indices = parts.next().unwrap_or_default();
        let values = parts.next().unwrap_or_else(|| vec![Vec::new(); segs.len()]);
        Ok(indices
            .into_iter()
            .zip(values)
            .map(|(i, v)| SortedSegment {
                values: v.into_iter().map(f32::from_bits).collect(),
                indices: i,
            })
            .collect())
    }

    fn synchronize(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| failed(format!("waiting for the device: {e}")))?;
        self.check_errors()
    }

    /// Bytes per second of a buffer-to-buffer copy on the device, read and write counted.
    fn copy_bandwidth(&self, bytes: usize) -> Result<f64> {
        let bytes = (bytes as u64).min(self.limits.max_buffer_size).max(1 << 20) & !3;
        let src = self.empty(bytes, wgpu::BufferUsages::COPY_SRC);
        let dst = self.empty(bytes, wgpu::BufferUsages::COPY_DST);
        let copy = || -> Result<()> {
            let mut encoder = self.device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(&src, 0, &dst, 0, bytes);
            self.queue.submit([encoder.finish()]);
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map(|_| ())
                .map_err(|e| failed(format!("waiting for the device: {e}")))
        };
        copy()?;
        let t = super::best_time(5, copy)?;
        Ok(2.0 * bytes as f64 / t)
    }
}
