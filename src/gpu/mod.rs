//! The GPU context: adapter choice, device, pipelines built once and cached, buffers, dispatches
//! and readback. `layers` holds each layer kind's launchers, buffers and recording; `trainer` records whole epochs.

pub mod layers;
pub mod trainer;
pub mod tuning;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::shaders::Shader;

/// Which adapter to use: `backend` limits the search, `adapter` picks by name substring.
#[derive(Clone, Debug, Default)]
pub struct AdapterOptions {
    pub backend: Option<BackendName>,
    pub adapter: Option<String>,
    /// Tune the tunable passes' shapes missing from the tuning cache (`Gpu::tune`).
    pub tune: bool,
}

/// A graphics API wgpu drives, as `--backend` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendName {
    Vulkan,
    Metal,
    Dx12,
    #[value(alias = "gles", alias = "opengl")]
    Gl,
}

impl BackendName {
    pub fn backends(self) -> wgpu::Backends {
        match self {
            BackendName::Vulkan => wgpu::Backends::VULKAN,
            BackendName::Metal => wgpu::Backends::METAL,
            BackendName::Dx12 => wgpu::Backends::DX12,
            BackendName::Gl => wgpu::Backends::GL,
        }
    }
}

/// Lists every adapter the enabled backends can see.
pub fn enumerate_adapters(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    pollster::block_on(instance.enumerate_adapters(backends))
}

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// A storage buffer, or a range of one, of 4-byte elements (f32 or u32).
#[derive(Clone, Debug)]
pub struct Tensor {
    pub buffer: wgpu::Buffer,
    /// Offset in elements.
    pub offset: usize,
    pub len: usize,
}

impl Tensor {
    /// A sub-range; `offset` must keep the binding aligned to 64 elements (256 bytes).
    pub fn slice(&self, offset: usize, len: usize) -> Tensor {
        debug_assert!(offset + len <= self.len);
        Tensor {
            buffer: self.buffer.clone(),
            offset: self.offset + offset,
            len,
        }
    }
    fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: (self.offset * 4) as u64,
            size: wgpu::BufferSize::new((self.len.max(1) * 4) as u64),
        })
    }
}

/// One recorded compute dispatch: pipeline, its bind group (params uniform included) and grid.
pub struct Dispatch {
    /// `shader::entry`, or `layer pass` once the trainer names it; used by the profiler.
    pub label: String,
    /// Bytes of the storage bindings: what the dispatch may read and write, an upper bound of
    /// its memory traffic (bench sums it per step). Per-epoch buffers bound whole (the dataset,
    /// the row order, step records, metric slots) count what one step touches of them.
    pub bytes: u64,
    /// FLOPs of the multiply-adds it computes (2 each: conv and dense passes), 0 for the rest;
    /// bench's per-pass GFLOP/s.
    pub flops: f64,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

impl Dispatch {
    /// This dispatch, counted as computing `flops`.
    pub fn with_flops(mut self, flops: f64) -> Dispatch {
        self.flops = flops;
        self
    }

    /// Workgroups the dispatch launches (x * y * z).
    pub fn workgroup_count(&self) -> u64 {
        self.workgroups.iter().map(|&n| n as u64).product()
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }
}

/// Values of a pipeline's WGSL `override` constants, by name (empty: the shader's defaults).
pub type Overrides = Vec<(&'static str, u32)>;

pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// The device has subgroup operations with subgroups of at least 8 invocations (measured
    /// by `probe_subgroup`), so the `*_subgroup` shader variants may run. Clear it to force the
    /// portable kernels.
    pub subgroups: bool,
    /// The subgroup size a compute pipeline gets, measured at start-up (0: no subgroups).
    pub subgroup_size: u32,
    /// Use the fused passes where the pattern occurs (`conv2d_forward_pooled`,
    /// `conv2d_backward_pooled`, `dense_forward_chain`, `softmax_xent`, a layer's weight and
    /// input gradients in one dispatch, Adam keeping the convs' channel-last weights). Clear it
    /// to record the unfused ones (the same numbers; for tests and `bench --unfused`).
    pub fuse: bool,
    /// Most bytes of dataset images one buffer holds: the smaller of the storage binding and
    /// buffer size limits. A larger image set is split over several buffers (`GpuTrainer`);
    /// tests lower this to exercise the split.
    pub dataset_part_bytes: u64,
    /// Tune a tunable pass's shape missing from the tuning cache on its first use (and cache
    /// the choice); when clear, untuned shapes take the device type's default tiling
    /// (`gpu::tuning`). The CLI sets it unless `--no-tune`.
    pub tune: bool,
    /// Time the candidates again even for shapes the cache has (`gpu-cnn tune --again`).
    pub retune: bool,
    /// Every conv backward pass uses this tiling, tuned or not (tests; `None`: as tuned).
    pub conv_backward_tiling: Option<tuning::ConvBackwardTiling>,
    /// Blocks of 8 (rows, outputs or channels) per invocation of the subgroup kernels that take
    /// them: 1, 2 or 4, the same bits for each (`tuning::tile_blocks`, from the device type);
    /// tests change it.
    pub tile_blocks: u32,
    /// Invocations per workgroup of the dense passes and of a first conv's weight gradient from
    /// the pool's winners (`tuning::narrow_workgroup`, from the device type; the same bits for
    /// any); tests change it.
    pub narrow_workgroup: u32,
    /// Threads a CPU adapter runs workgroups on, one workgroup per thread at a time (lavapipe
    /// starts one per core: the host's available parallelism); 1 on GPUs. Kernels that choose
    /// between fewer, larger workgroups and more, smaller ones keep at least this many
    /// (`dense_forward_chain`); tests change it.
    pub cpu_threads: usize,
    /// The tilings chosen in this process, by shape key, with where they came from.
    tilings: Mutex<HashMap<String, (tuning::ConvBackwardTiling, tuning::Source)>>,
    pipelines: Mutex<HashMap<(Shader, &'static str, Overrides), wgpu::ComputePipeline>>,
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Gpu {
    /// Picks an adapter: `--adapter` by name, else the highest-performance one, falling back to a
    /// software adapter with a note on stderr.
    pub fn new(opts: &AdapterOptions) -> Result<Gpu> {
        let backends = match opts.backend {
            Some(b) => b.backends(),
            None => wgpu::Backends::PRIMARY | wgpu::Backends::GL,
        };
        let adapters = enumerate_adapters(backends);
        let names: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
            })
            .collect();
        let adapter = match &opts.adapter {
            Some(want) => adapters
                .into_iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&want.to_lowercase()))
                .ok_or_else(|| Error::NoAdapter(format!("no adapter name contains `{want}`; available: [{}]", names.join(", "))))?,
            None => adapters
                .into_iter()
                .min_by_key(|a| {
                    let i = a.get_info();
                    // Prefer Vulkan/Metal/DX12 over GL at equal device type.
                    (type_rank(i.device_type), (i.backend == wgpu::Backend::Gl) as u32)
                })
                .ok_or_else(|| {
                    let tried: Vec<&str> = [
                        (wgpu::Backends::VULKAN, "Vulkan"),
                        (wgpu::Backends::METAL, "Metal"),
                        (wgpu::Backends::DX12, "DX12"),
                        (wgpu::Backends::GL, "GL"),
                    ]
                    .iter()
                    .filter(|(b, _)| backends.contains(*b))
                    .map(|(_, n)| *n)
                    .collect();
                    let tried = tried.join(", ");
                    Error::NoAdapter(format!(
                        "none found for {tried}; without a GPU install a software adapter (Debian/Ubuntu: apt-get install mesa-vulkan-drivers), or train on the CPU reference with --cpu"
                    ))
                })?,
        };
        let info = adapter.get_info();
        if opts.adapter.is_none() && info.device_type == wgpu::DeviceType::Cpu {
            crate::output::note(format!(
                "no hardware GPU found; using the software adapter {} ({:?})",
                info.name, info.backend
            ));
        }
        let mut gpu = Self::from_adapter(adapter)?;
        // GPU_CNN_NO_TUNE=1 does what --no-tune does, for every command (tests set it).
        gpu.tune = opts.tune && std::env::var_os("GPU_CNN_NO_TUNE").is_none_or(|v| v == "0");
        Ok(gpu)
    }

    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Gpu> {
        let info = adapter.get_info();
        let alimits = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: alimits.max_storage_buffer_binding_size,
            max_buffer_size: alimits.max_buffer_size,
            max_storage_buffers_per_shader_stage: alimits
                .max_storage_buffers_per_shader_stage
                .min(16),
            max_compute_workgroups_per_dimension: alimits.max_compute_workgroups_per_dimension,
            ..wgpu::Limits::downlevel_defaults()
        };
        let has_subgroups = adapter.features().contains(wgpu::Features::SUBGROUP);
        let features = if has_subgroups {
            wgpu::Features::SUBGROUP
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("gpu-cnn"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("request_device on {}: {e}", info.name)))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        // A lost device (driver reset, watchdog, unplugged GPU) becomes an error at the next check.
        let lost = errors.clone();
        let name = info.name.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut v) = lost.lock() {
                let why = if msg.is_empty() {
                    String::new()
                } else {
                    format!(": {msg}")
                };
                v.push(format!("device {name} lost ({reason:?}){why}"));
            }
        });
        let info_type = info.device_type;
        let mut gpu = Gpu {
            device,
            queue,
            info,
            fuse: true,
            dataset_part_bytes: limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size),
            limits,
            subgroups: false,
            subgroup_size: 0,
            tune: false,
            retune: false,
            conv_backward_tiling: None,
            tile_blocks: tuning::tile_blocks(info_type),
            narrow_workgroup: tuning::narrow_workgroup(info_type),
            cpu_threads: match info_type {
                wgpu::DeviceType::Cpu => {
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                }
                _ => 1,
            },
            tilings: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            modules: Mutex::new(HashMap::new()),
            errors,
        };
        if has_subgroups {
            gpu.subgroup_size = gpu.probe_subgroup_size()?;
            gpu.subgroups = gpu.subgroup_size >= 8;
        }
        Ok(gpu)
    }

    /// The smallest subgroup size one workgroup of `probe_subgroup` sees. Adapters only report
    /// ranges (wgpu says 4 on Metal; Vulkan drivers without size control may pick any size in
    /// theirs), so the subgroup kernels are gated on what a pipeline really gets.
    pub fn probe_subgroup_size(&self) -> Result<u32> {
        let sizes = self.zeros("subgroup probe", 64)?;
        let pipeline = self.build_pipeline(Shader::ProbeSubgroup, "main", &Overrides::new())?;
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("subgroup probe"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: sizes.binding(),
            }],
        });
        let d = Dispatch {
            label: "probe_subgroup::main".into(),
            bytes: 8,
            flops: 0.0,
            pipeline,
            bind_group,
            workgroups: [1, 1, 1],
        };
        self.run(&[&d])?;
        let got = self.read::<u32>(&[&sizes])?.remove(0);
        Ok(got.into_iter().min().unwrap_or(0))
    }

    /// The adapter's multiply-add throughput in GFLOP/s (2 FLOPs per multiply-add), as bench's
    /// "% of peak" reference: `probe_fma` over 4,096 workgroups of 64 invocations, each with 8
    /// independent vec4 chains in registers, repeated until a submit takes at least 20 ms; the
    /// best of three. What the kernels could reach with every operand in a register.
    pub fn probe_fma_gflops(&self) -> Result<f64> {
        const GROUPS: u32 = 4096;
        let steps: u32 = 256;
        let cfg = self.upload(
            "fma probe cfg",
            &[steps, 1.0001f32.to_bits(), 1e-7f32.to_bits()],
        )?;
        let out = self.zeros("fma probe", (GROUPS * 64) as usize)?;
        let d = self.dispatch::<u32>(
            Shader::ProbeFma,
            "main",
            &[(0, &cfg), (1, &out)],
            None,
            [GROUPS, 1, 1],
        )?;
        let flops = GROUPS as f64 * 64.0 * steps as f64 * 64.0;
        let time = |copies: usize| -> Result<f64> {
            let all: Vec<&Dispatch> = std::iter::repeat_n(&d, copies).collect();
            let start = std::time::Instant::now();
            self.run(&all)?;
            self.wait()?;
            Ok(start.elapsed().as_secs_f64())
        };
        let once = time(1)?.min(time(1)?).max(1e-6);
        let copies = ((0.02 / once).ceil() as usize).clamp(1, 1000);
        let best = (0..3)
            .map(|_| time(copies))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .fold(f64::INFINITY, f64::min);
        Ok(flops * copies as f64 / best / 1e9)
    }

    /// Returns the first wgpu validation error since the last check, if any.
    pub fn check(&self, what: &str) -> Result<()> {
        let mut errs = self
            .errors
            .lock()
            .map_err(|_| Error::Gpu("error sink poisoned".into()))?;
        if errs.is_empty() {
            return Ok(());
        }
        // wgpu's messages span several lines: one line each, for a one-line error.
        let all = errs
            .iter()
            .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("; ");
        errs.clear();
        Err(Error::Gpu(format!("{what}: {all}")))
    }

    /// What the tuning cache files this adapter under: name, backend, driver and its version.
    pub fn adapter_key(&self) -> String {
        let i = &self.info;
        format!(
            "{} ({:?}; {} {})",
            i.name, i.backend, i.driver, i.driver_info
        )
    }

    /// The tiling chosen for a shape in this process, if any.
    pub fn chosen_tiling(&self, key: &str) -> Option<(tuning::ConvBackwardTiling, tuning::Source)> {
        self.tilings.lock().ok()?.get(key).copied()
    }

    /// Records the tiling of a shape for the rest of the process.
    pub fn choose_tiling(
        &self,
        key: String,
        t: tuning::ConvBackwardTiling,
        source: tuning::Source,
    ) {
        if let Ok(mut m) = self.tilings.lock() {
            m.insert(key, (t, source));
        }
    }

    /// Every tiling chosen so far, sorted by shape key.
    pub fn chosen_tilings(&self) -> Vec<(String, tuning::ConvBackwardTiling, tuning::Source)> {
        let mut all: Vec<_> = match self.tilings.lock() {
            Ok(m) => m.iter().map(|(k, (t, s))| (k.clone(), *t, *s)).collect(),
            Err(_) => Vec::new(),
        };
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub fn backend_name(&self) -> String {
        format!("{:?}", self.info.backend).to_lowercase()
    }

    pub fn device_type_name(&self) -> String {
        format!("{:?}", self.info.device_type)
    }

    pub fn pipeline(
        &self,
        shader: Shader,
        entry: &'static str,
        overrides: &Overrides,
    ) -> Result<wgpu::ComputePipeline> {
        let mut cache = self
            .pipelines
            .lock()
            .map_err(|_| Error::Gpu("pipeline cache poisoned".into()))?;
        let key = (shader, entry, overrides.clone());
        if let Some(p) = cache.get(&key) {
            return Ok(p.clone());
        }
        if shader.needs_subgroups() && !self.subgroups {
            return Err(Error::Gpu(format!(
                "{} needs subgroups of at least 8 invocations, which {} lacks (or they were turned off)",
                shader.name(),
                self.info.name
            )));
        }
        let pipeline = self.build_pipeline(shader, entry, overrides)?;
        cache.insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// Compiles `shader::entry` (its module cached) with the given pipeline-overridable
    /// constants, without the subgroup gate.
    fn build_pipeline(
        &self,
        shader: Shader,
        entry: &'static str,
        overrides: &Overrides,
    ) -> Result<wgpu::ComputePipeline> {
        let module = {
            let mut modules = self
                .modules
                .lock()
                .map_err(|_| Error::Gpu("module cache poisoned".into()))?;
            let source = match modules.contains_key(&shader) {
                true => String::new(),
                false => shader
                    .source()
                    .map_err(|e| Error::Gpu(format!("composing {}: {e}", shader.name())))?,
            };
            modules
                .entry(shader)
                .or_insert_with(|| {
                    let desc = wgpu::ShaderModuleDescriptor {
                        label: Some(shader.name()),
                        source: wgpu::ShaderSource::Wgsl(source.into()),
                    };
                    self.device.create_shader_module(desc)
                })
                .clone()
        };
        let constants: Vec<(&str, f64)> = overrides.iter().map(|&(k, v)| (k, v as f64)).collect();
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(shader.name()),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    ..Default::default()
                },
                cache: None,
            });
        self.check(&format!("building {}::{entry}", shader.name()))?;
        Ok(pipeline)
    }

    /// Builds one dispatch: storage bindings by number, then the params uniform at `params_binding`.
    pub fn dispatch<P: bytemuck::Pod>(
        &self,
        shader: Shader,
        entry: &'static str,
        storage: &[(u32, &Tensor)],
        params: Option<(u32, &P)>,
        workgroups: [u32; 3],
    ) -> Result<Dispatch> {
        self.dispatch_tiled(
            shader,
            entry,
            &Overrides::new(),
            storage,
            params,
            workgroups,
        )
    }

    /// `dispatch` with values for the shader's `override` constants (its tiling).
    pub fn dispatch_tiled<P: bytemuck::Pod>(
        &self,
        shader: Shader,
        entry: &'static str,
        overrides: &Overrides,
        storage: &[(u32, &Tensor)],
        params: Option<(u32, &P)>,
        workgroups: [u32; 3],
    ) -> Result<Dispatch> {
        let max = self.limits.max_compute_workgroups_per_dimension;
        if workgroups.iter().any(|&w| w > max) {
            return Err(Error::Gpu(format!(
                "{}::{entry}: grid {workgroups:?} exceeds {max} workgroups per dimension (batch too large)",
                shader.name()
            )));
        }
        for (b, t) in storage {
            if (t.len * 4) as u64 > self.limits.max_storage_buffer_binding_size {
                return Err(Error::Gpu(format!(
                    "{}::{entry}: binding {b} needs {} bytes, over the adapter's storage binding limit of {} (use a smaller --batch)",
                    shader.name(),
                    t.len * 4,
                    self.limits.max_storage_buffer_binding_size
                )));
            }
        }
        let pipeline = self.pipeline(shader, entry, overrides)?;
        let uniform = params.map(|(_, p)| {
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(shader.name()),
                    contents: bytemuck::bytes_of(p),
                    usage: wgpu::BufferUsages::UNIFORM,
                })
        });
        let mut entries: Vec<wgpu::BindGroupEntry> = storage
            .iter()
            .map(|(b, t)| wgpu::BindGroupEntry {
                binding: *b,
                resource: t.binding(),
            })
            .collect();
        if let (Some((b, _)), Some(u)) = (params, &uniform) {
            entries.push(wgpu::BindGroupEntry {
                binding: b,
                resource: u.as_entire_binding(),
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(shader.name()),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        self.check(&format!("binding {}::{entry}", shader.name()))?;
        Ok(Dispatch {
            label: format!("{}::{entry}", shader.name()),
            bytes: storage.iter().map(|(_, t)| t.len as u64 * 4).sum(),
            flops: 0.0,
            pipeline,
            bind_group,
            workgroups,
        })
    }

    /// A zero-filled storage buffer of `len` 4-byte elements.
    pub fn zeros(&self, label: &str, len: usize) -> Result<Tensor> {
        let size = len.max(1).checked_mul(4).map_or(u64::MAX, |s| s as u64);
        if size > self.limits.max_buffer_size {
            return Err(Error::Gpu(format!(
                "buffer `{label}` needs {size} bytes, over {}'s buffer size limit of {} bytes (use a smaller --batch or --limit)",
                self.info.name, self.limits.max_buffer_size
            )));
        }
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Tensor {
            buffer,
            offset: 0,
            len,
        })
    }

    /// A storage buffer holding `data` (4-byte elements).
    pub fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<Tensor> {
        assert_eq!(
            std::mem::size_of::<T>() % 4,
            0,
            "upload takes 4-byte elements"
        );
        let t = self.zeros(label, std::mem::size_of_val(data) / 4)?;
        self.write(&t, data);
        Ok(t)
    }

    /// Queues a write of `data` into `t` (lands before the next submit's commands).
    pub fn write<T: bytemuck::Pod>(&self, t: &Tensor, data: &[T]) {
        if !data.is_empty() {
            self.queue
                .write_buffer(&t.buffer, (t.offset * 4) as u64, bytemuck::cast_slice(data));
        }
    }

    /// Waits until the GPU has finished all submitted work.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        self.check("wait")
    }

    /// Records the dispatches into one compute pass and submits them; does not wait.
    pub fn run(&self, dispatches: &[&Dispatch]) -> Result<()> {
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for d in dispatches {
                d.record(&mut pass);
            }
        }
        self.queue.submit([enc.finish()]);
        self.check("submit")
    }

    /// Copies the tensors to host memory: one submit, one wait.
    pub fn read<T: bytemuck::Pod>(&self, tensors: &[&Tensor]) -> Result<Vec<Vec<T>>> {
        let total: usize = tensors.iter().map(|t| t.len.max(1) * 4).sum();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: total as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        let mut at = 0u64;
        for t in tensors {
            let size = (t.len.max(1) * 4) as u64;
            enc.copy_buffer_to_buffer(&t.buffer, (t.offset * 4) as u64, &staging, at, size);
            at += size;
        }
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        rx.recv()
            .map_err(|_| Error::Gpu("readback callback dropped".into()))?
            .map_err(|e| Error::Gpu(format!("mapping the readback buffer: {e}")))?;
        self.check("readback")?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("readback view: {e:?}")))?;
        let mut out = Vec::new();
        let mut at = 0usize;
        for t in tensors {
            let bytes = &view[at..at + t.len * 4];
            out.push(bytemuck::pod_collect_to_vec(bytes));
            at += t.len.max(1) * 4;
        }
        drop(view);
        staging.unmap();
        Ok(out)
    }
}
