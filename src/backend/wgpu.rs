//! The wgpu device and its kernels (shaders/*.wgsl). Work in progress towards the wgpu backend
//! of issue 3: the device, its limits and the per-row sort are here and validated against the
//! CPU; the statistics kernels are not yet, so `--backend wgpu` still reports the backend as
//! unavailable.

use std::sync::mpsc;

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
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    /// The longest (power-of-two) row the workgroup-memory sort takes.
    tile: usize,
    sort: wgpu::ComputePipeline,
}

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
        // Keys and indices of a row in workgroup memory: 8 bytes per value.
        let tile_limit = (limits.max_compute_workgroup_storage_size as usize / 8).min(1 << 14);
        if tile_limit < 256 {
            return Err(unavailable(format!(
                "{} has only {} bytes of workgroup memory",
                info.name, limits.max_compute_workgroup_storage_size
            )));
        }
        let tile = 1usize << tile_limit.ilog2();
        let source =
            include_str!("../../shaders/sort_rows.wgsl").replace("{{TILE}}", &tile.to_string());
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("sort_rows.wgsl"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let sort = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("sort_rows"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            tile,
            sort,
        })
    }

    /// The adapter, as `fit` prints it and benchmark ids name it.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}, driver {})",
            self.info.name, self.info.device_type, self.info.backend, self.info.driver_info
        )
    }

    pub fn is_cpu(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The widest row [`sort_rows`](Self::sort_rows) takes.
    pub fn max_sort_width(&self) -> usize {
        self.tile
    }

    /// Rows of `cols` values that one storage binding holds.
    pub fn max_rows_per_binding(&self, cols: usize) -> usize {
        let bytes = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        (bytes as usize / (4 * cols.max(1))).max(1)
    }

    /// Sorts each row of `values` (row-major, `cols` per row) ascending, with each value's
    /// feature index; ties in feature order. Rows go to the device in chunks that respect its
    /// binding limits.
    pub fn sort_rows(&self, values: &[f32], cols: usize) -> Result<(Vec<f32>, Vec<u32>)> {
        if cols == 0 || !values.len().is_multiple_of(cols) {
            return Err(Error::Invalid(format!(
                "{} values are not whole rows of {cols}",
                values.len()
            )));
        }
        if cols > self.tile {
            return Err(failed(format!(
                "rows of {cols} values are wider than the {} this device sorts in workgroup memory",
                self.tile
            )));
        }
        let per_chunk = self.max_rows_per_binding(cols).min(MAX_GROUPS * MAX_GROUPS);
        let mut out_values = Vec::with_capacity(values.len());
        let mut out_indices = Vec::with_capacity(values.len());
        for chunk in values.chunks(per_chunk * cols) {
            let (v, i) = self.sort_chunk(chunk, cols)?;
            out_values.extend_from_slice(&v);
            out_indices.extend_from_slice(&i);
        }
        Ok((out_values, out_indices))
    }

    fn sort_chunk(&self, values: &[f32], cols: usize) -> Result<(Vec<f32>, Vec<u32>)> {
        use wgpu::util::DeviceExt;
        let rows = values.len() / cols;
        let bytes = (values.len() * 4) as u64;
        let groups_x = rows.min(MAX_GROUPS);
        let groups_y = rows.div_ceil(groups_x);
        let params = [
            cols as u32,
            cols.next_power_of_two() as u32,
            rows as u32,
            groups_x as u32,
        ];
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let d = &self.device;
        let values_buf = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("values"),
            contents: bytemuck::cast_slice(values),
            usage: storage,
        });
        let indices_buf = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("indices"),
            size: bytes,
            usage: storage,
            mapped_at_creation: false,
        });
        let params_buf = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::cast_slice(&params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let bind = d.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("sort_rows"),
            layout: &self.sort.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: values_buf.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: indices_buf.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: params_buf.as_entire_binding(),
                },
            ],
        });
        let mut encoder = d.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.sort);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(groups_x as u32, groups_y as u32, 1);
        }
        let read = |encoder: &mut wgpu::CommandEncoder, src: &wgpu::Buffer| {
            let dst = d.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            encoder.copy_buffer_to_buffer(src, 0, &dst, 0, bytes);
            dst
        };
        let values_back = read(&mut encoder, &values_buf);
        let indices_back = read(&mut encoder, &indices_buf);
        self.queue.submit([encoder.finish()]);
        let sorted: Vec<f32> = bytemuck::cast_slice(&self.map(&values_back)?).to_vec();
        let indices: Vec<u32> = bytemuck::cast_slice(&self.map(&indices_back)?).to_vec();
        Ok((sorted, indices))
    }

    /// Maps a readback buffer and copies it out, polling the device until the map completes.
    fn map(&self, buffer: &wgpu::Buffer) -> Result<Vec<u8>> {
        let slice = buffer.slice(..);
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
        let bytes = slice
            .get_mapped_range()
            .map_err(|e| failed(format!("reading results back: {e}")))?
            .to_vec();
        buffer.unmap();
        Ok(bytes)
    }
}
