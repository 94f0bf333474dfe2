//! The WebGPU backend (through `wgpu`, natively on Vulkan and in the browser on WebGPU): device
//! setup with negotiated limits, weights uploaded in a 4-byte-aligned layout, and the WGSL
//! kernels of `shaders/`, each tested against the CPU path (`tests/gpu_kernels.rs`).
//!
//! Pipelines are built once per (kernel, variant) and cached. Results come back only through
//! [`Gpu::read_f32`], which awaits the mapping (on wasm a blocking poll would deadlock).

pub mod forward;
pub mod preprocess;
pub mod repack;
pub mod shaders;
pub mod upload;

use crate::error::{Error, Result};
use crate::quant::GgmlType;
use shaders::Shader;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wgpu::util::DeviceExt;

/// The most workgroups a dispatch may have along one dimension (WebGPU's default limit).
pub const MAX_GROUPS: u32 = 65_535;

pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    /// The first error the device reported outside an error scope.
    error: Arc<Mutex<Option<String>>>,
    /// Why the device was lost, once it is (destroyed, driver reset, tab in the background…).
    lost: Arc<Mutex<Option<String>>>,
    /// Buffers and bind groups created so far: everything is allocated at load, so these stay
    /// flat over any number of tokens (long-use tests and `wisp soak` watch them).
    buffers: AtomicUsize,
    bind_groups: AtomicUsize,
}

impl Gpu {
    /// The default adapter's description, without opening a device (cheap enough to decide on).
    pub async fn probe() -> Option<wgpu::AdapterInfo> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        instance.request_adapter(&options).await.ok().map(|a| a.get_info())
    }

    /// Opens the default adapter. Limits are WebGPU's defaults, raised only to what the adapter
    /// grants for buffer sizes (weights need large storage bindings).
    pub async fn new() -> Result<Gpu> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("no WebGPU/Vulkan adapter: {e}")))?;
        let granted = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: granted.max_storage_buffer_binding_size,
            max_buffer_size: granted.max_buffer_size,
            ..wgpu::Limits::default()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wisp"),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("could not open the device: {e}")))?;
        let error = Arc::new(Mutex::new(None));
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| e.to_string());
        }));
        let lost = Arc::new(Mutex::new(None));
        let sink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("{reason:?}: {msg}"));
        });
        Ok(Gpu {
            device,
            queue,
            adapter: adapter.get_info(),
            limits,
            pipelines: Mutex::default(),
            error,
            lost,
            buffers: AtomicUsize::new(0),
            bind_groups: AtomicUsize::new(0),
        })
    }

    /// "name (backend, device type)".
    pub fn describe(&self) -> String {
        let a = &self.adapter;
        format!("{} ({:?}, {:?})", a.name, a.backend, a.device_type)
    }

    /// Buffers and bind groups this device has created so far.
    pub fn created(&self) -> (usize, usize) {
        (self.buffers.load(Ordering::Relaxed), self.bind_groups.load(Ordering::Relaxed))
    }

    fn count_buffer(&self) {
        self.buffers.fetch_add(1, Ordering::Relaxed);
    }

    /// Fails once the device is lost: nothing it held survives, so the model must be loaded again.
    pub fn alive(&self) -> Result<()> {
        match self.lost.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(why) => Err(Error::Gpu(format!("the GPU device was lost ({why}); load the model again"))),
            None => Ok(()),
        }
    }

    /// The device's loss if it was lost (the real cause of most failures after it), else `msg`.
    fn lost_or(&self, msg: String) -> Error {
        self.alive().err().unwrap_or(Error::Gpu(msg))
    }

    /// Fails with the first error the device reported since the last check (or the device's loss).
    pub fn check(&self) -> Result<()> {
        self.alive()?;
        match self.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(Error::Gpu(e)),
            None => Ok(()),
        }
    }

    /// The pipeline of `shader` built with `defines` and override `constants`, cached.
    pub async fn pipeline(
        &self,
        shader: &Shader,
        defines: &[&str],
        constants: &[(&str, f64)],
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let key = format!("{}{defines:?}{constants:?}", shader.name);
        if let Some(p) = self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(p.clone());
        }
        let src = preprocess::preprocess(shader.name, shader.source, defines)?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(shader.name),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(shader.name),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions { constants, ..Default::default() },
            cache: None,
        });
        if let Some(e) = scope.pop().await {
            return Err(Error::Gpu(format!("shader {} {defines:?}: {e}", shader.name)));
        }
        // in the threaded wasm build the browser's WebGPU objects are not Send (they live on
        // the page's thread); the cache is shared within that thread only
        #[cfg_attr(
            all(target_arch = "wasm32", target_feature = "atomics"),
            allow(clippy::arc_with_non_send_sync)
        )]
        let p = Arc::new(pipeline);
        self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).insert(key, p.clone());
        Ok(p)
    }

    /// A storage buffer of `bytes` (checked against the binding limit), or zeroed when `None`.
    pub fn storage(&self, label: &str, size: u64, bytes: Option<&[u8]>) -> Result<wgpu::Buffer> {
        let max = self.limits.max_storage_buffer_binding_size;
        if size > max {
            return Err(Error::GpuLimit {
                limit: "max_storage_buffer_binding_size",
                what: label.into(),
                need: size,
                max,
            });
        }
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        // a zero-sized binding is invalid: keep at least one word
        let size = size.max(4).next_multiple_of(4);
        self.count_buffer();
        Ok(match bytes {
            Some(b) if b.len() as u64 == size => {
                self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: b,
                    usage,
                })
            }
            _ => {
                let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size,
                    usage,
                    mapped_at_creation: false,
                });
                if let Some(b) = bytes {
                    self.queue.write_buffer(&buf, 0, b);
                }
                buf
            }
        })
    }

    pub fn storage_f32(&self, label: &str, v: &[f32]) -> Result<wgpu::Buffer> {
        self.storage(label, 4 * v.len() as u64, Some(as_bytes(v)))
    }

    pub fn uniform(&self, label: &str, words: &[u32]) -> wgpu::Buffer {
        self.count_buffer();
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: as_bytes(words),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        })
    }

    /// A bind group for `pipeline`'s group 0 with `buffers` at bindings 0, 1, ….
    pub fn bind(&self, pipeline: &wgpu::ComputePipeline, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let at: Vec<_> = buffers.iter().enumerate().map(|(i, b)| (i as u32, *b)).collect();
        self.bind_at(pipeline, &at)
    }

    /// A bind group with each buffer at its own binding number (for variants that leave a
    /// binding unused, which the pipeline's derived layout then omits).
    pub fn bind_at(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[(u32, &wgpu::Buffer)],
    ) -> wgpu::BindGroup {
        let entries: Vec<_> = buffers
            .iter()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: *i, resource: b.as_entire_binding() })
            .collect();
        self.bind_groups.fetch_add(1, Ordering::Relaxed);
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }

    /// Copies the first `len` floats of `buf` back, awaiting the mapping.
    pub async fn read_f32(&self, buf: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        let w = self.read_u32(buf, len).await?;
        Ok(w.into_iter().map(f32::from_bits).collect())
    }

    /// Copies the first `len` words of `buf` back, awaiting the mapping (a staging buffer per
    /// call: for tests and one-off reads; the forward pass keeps its own).
    pub async fn read_u32(&self, buf: &wgpu::Buffer, len: usize) -> Result<Vec<u32>> {
        let size = (4 * len as u64).max(4);
        let staging = self.staging("readback", size);
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buf, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        self.map_words(&staging, len).await
    }

    /// A buffer to read results back through (MAP_READ | COPY_DST).
    pub fn staging(&self, label: &str, size: u64) -> wgpu::Buffer {
        self.count_buffer();
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Blocks until the work submitted so far has finished (natively only: on wasm a blocking
    /// wait would deadlock, so there readback is awaited instead).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait_idle(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait { submission_index: None, timeout: None })
            .map(|_| ())
            .map_err(|e| self.lost_or(format!("waiting for the device: {e}")))
    }

    /// The first `len` words of `staging` once the work submitted so far has finished (the
    /// mapping is awaited; natively the device is polled first), then unmapped for reuse.
    pub async fn map_words(&self, staging: &wgpu::Buffer, len: usize) -> Result<Vec<u32>> {
        self.alive()?;
        let size = (4 * len as u64).max(4);
        let (tx, rx) = oneshot();
        staging.slice(..size).map_async(wgpu::MapMode::Read, move |r| tx(r.map_err(|e| e.to_string())));
        #[cfg(not(target_arch = "wasm32"))]
        self.wait_idle()?;
        rx.await.map_err(|e| self.lost_or(format!("reading back: {e}")))?;
        self.check()?;
        let data =
            staging.slice(..size).get_mapped_range().map_err(|e| Error::Gpu(format!("mapping: {e}")))?;
        let out =
            data.chunks_exact(4).take(len).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        drop(data);
        staging.unmap();
        Ok(out)
    }

    /// Runs `pipeline` over a grid of `groups` workgroups (split into 2-D as needed) in its own
    /// submission: for tests and one-off work; the forward pass records into one encoder.
    pub fn dispatch(&self, pipeline: &wgpu::ComputePipeline, bind: &wgpu::BindGroup, groups: u32) {
        self.dispatch_xy(pipeline, bind, grid(groups))
    }

    /// [`Gpu::dispatch`] over an explicit (x, y) grid.
    pub fn dispatch_xy(&self, pipeline: &wgpu::ComputePipeline, bind: &wgpu::BindGroup, (x, y): (u32, u32)) {
        self.dispatch_xyz(pipeline, bind, (x, y, 1))
    }

    /// [`Gpu::dispatch`] over an explicit (x, y, z) grid.
    pub fn dispatch_xyz(
        &self,
        pipeline: &wgpu::ComputePipeline,
        bind: &wgpu::BindGroup,
        (x, y, z): (u32, u32, u32),
    ) {
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bind, &[]);
            pass.dispatch_workgroups(x, y, z);
        }
        self.queue.submit([enc.finish()]);
    }
}

/// `groups` workgroups as an (x, y) grid with x ≤ 65,535; kernels number them `y · x_size + x`
/// and ignore the overhang.
pub fn grid(groups: u32) -> (u32, u32) {
    if groups <= MAX_GROUPS {
        (groups.max(1), 1)
    } else {
        (MAX_GROUPS, groups.div_ceil(MAX_GROUPS))
    }
}

/// Bytes of repacked rows written per `write_buffer` when uploading a matrix.
const UPLOAD_CHUNK: usize = 1 << 20;

/// A matrix in GPU layout.
pub struct GpuMatrix {
    pub buf: wgpu::Buffer,
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub row_words: usize,
}

impl GpuMatrix {
    /// Uploads `rows × cols` values in the file's encoding `data` (whole rows), repacked and
    /// written about a megabyte of rows at a time: the host never holds a second copy of the
    /// matrix (in the browser, `create_buffer_init` would stage a third in wasm memory).
    pub fn upload(
        gpu: &Gpu,
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        data: &[u8],
    ) -> Result<GpuMatrix> {
        let m = GpuMatrix::alloc(gpu, name, ty, rows, cols)?;
        m.write_rows(gpu, 0, rows, data);
        // natively the writes wait in wgpu's staging memory until a submission: flush them now
        gpu.queue.submit([]);
        Ok(m)
    }

    /// A zeroed `rows × cols` matrix in GPU layout, for [`GpuMatrix::write_rows`] to fill.
    pub fn alloc(gpu: &Gpu, name: &str, ty: GgmlType, rows: usize, cols: usize) -> Result<GpuMatrix> {
        let row_words = repack::row_words(ty, cols);
        let buf = gpu.storage(name, 4 * (rows * row_words) as u64, None)?;
        Ok(GpuMatrix { buf, ty, rows, cols, row_words })
    }

    /// Repacks `n` rows in the file's encoding (`data`, whole rows) and writes them from row
    /// `r0` on, about a megabyte of rows per `write_buffer` (the caller keeps `r0 + n ≤ rows`;
    /// the writes are flushed by the next submission).
    pub fn write_rows(&self, gpu: &Gpu, r0: usize, n: usize, data: &[u8]) {
        let src_row = data.len() / n.max(1);
        let step = (UPLOAD_CHUNK / (4 * self.row_words).max(1)).max(1);
        for a in (0..n).step_by(step) {
            let k = step.min(n - a);
            let words = repack::repack(self.ty, k, self.cols, &data[a * src_row..(a + k) * src_row]);
            gpu.queue.write_buffer(&self.buf, 4 * ((r0 + a) * self.row_words) as u64, as_bytes(&words));
        }
    }

    /// Uploads a matrix as [`GpuMatrix::upload`] does, cut by rows into parts that each fit one
    /// storage binding (`max_storage_buffer_binding_size`, 128 MiB by default): Gemma 3's
    /// 262,144-row head, GPT-2-medium's f32 embedding. Each part but the last has a multiple of
    /// 64 rows. Returns (first row, part); one part when the matrix fits.
    pub fn upload_parts(
        gpu: &Gpu,
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        data: &[u8],
    ) -> Result<Vec<(usize, GpuMatrix)>> {
        let parts = GpuMatrix::alloc_parts(gpu, name, ty, rows, cols)?;
        GpuMatrix::write_parts(gpu, &parts, 0, rows, data);
        gpu.queue.submit([]);
        Ok(parts)
    }

    /// The zeroed parts [`GpuMatrix::upload_parts`] cuts a `rows × cols` matrix into, for
    /// [`GpuMatrix::write_parts`] to fill (the browser's streamed load, row range by row range).
    pub fn alloc_parts(
        gpu: &Gpu,
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
    ) -> Result<Vec<(usize, GpuMatrix)>> {
        let row_bytes = 4 * repack::row_words(ty, cols) as u64;
        let limit = gpu.limits.max_storage_buffer_binding_size;
        let per_part = ((limit / row_bytes.max(1)) as usize) / 64 * 64;
        if per_part == 0 {
            return Err(Error::GpuLimit {
                limit: "max_storage_buffer_binding_size",
                what: format!("64 rows of '{name}'"),
                need: 64 * row_bytes,
                max: limit,
            });
        }
        (0..rows)
            .step_by(per_part)
            .map(|r0| Ok((r0, GpuMatrix::alloc(gpu, name, ty, per_part.min(rows - r0), cols)?)))
            .collect()
    }

    /// Writes `n` rows in the file's encoding (`data`, whole rows) from row `r0` of a matrix cut
    /// into `parts` ([`GpuMatrix::alloc_parts`]), each row range into the part that holds it.
    pub fn write_parts(gpu: &Gpu, parts: &[(usize, GpuMatrix)], r0: usize, n: usize, data: &[u8]) {
        let src_row = data.len() / n.max(1);
        for (p0, m) in parts {
            let (a, b) = (r0.max(*p0), (r0 + n).min(p0 + m.rows));
            if a < b {
                m.write_rows(gpu, a - p0, b - a, &data[(a - r0) * src_row..(b - r0) * src_row]);
            }
        }
    }

    /// The parts' rows one after another, copied on the GPU into one matrix (SwiGLU's gate and
    /// up, attention's Q, K and V, so one kernel reads them all); `None` when their layouts differ
    /// or the stack would exceed the storage-binding limit (the caller keeps them apart).
    pub fn stack(gpu: &Gpu, label: &str, parts: &[&GpuMatrix]) -> Result<Option<GpuMatrix>> {
        let Some(first) = parts.first() else { return Ok(None) };
        let size = |m: &GpuMatrix| 4 * (m.rows * m.row_words) as u64;
        let total: u64 = parts.iter().map(|m| size(m)).sum();
        let same =
            parts.iter().all(|m| (m.ty, m.cols, m.row_words) == (first.ty, first.cols, first.row_words));
        if !same || total > gpu.limits.max_storage_buffer_binding_size {
            return Ok(None);
        }
        let buf = gpu.storage(label, total, None)?;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let mut at = 0;
        for m in parts {
            enc.copy_buffer_to_buffer(&m.buf, 0, &buf, at, size(m));
            at += size(m);
        }
        gpu.queue.submit([enc.finish()]);
        let rows = parts.iter().map(|m| m.rows).sum();
        Ok(Some(GpuMatrix { buf, ty: first.ty, rows, cols: first.cols, row_words: first.row_words }))
    }
}

/// A SPLIT product's defines, its bindings after the kernel's own (the bias if any, then the
/// second and third outputs) and its params after the usual four (`[split0, split1, 0, 0]`).
pub(crate) fn split_variant<'a>(
    ty: GgmlType,
    bias: Option<&'a wgpu::Buffer>,
    ys: [&'a wgpu::Buffer; 3],
    splits: [usize; 2],
) -> (Vec<&'static str>, Vec<&'a wgpu::Buffer>, [u32; 4]) {
    let mut defs = vec![shaders::type_define(ty)];
    defs.extend(bias.map(|_| "BIAS"));
    defs.push("SPLIT");
    let extra = bias.into_iter().chain([ys[1], ys[2]]).collect();
    (defs, extra, [splits[0] as u32, splits[1] as u32, 0, 0])
}

/// Weight rows and batch rows per workgroup of the tiled matrix–matrix kernel (`BM`, `BN` in
/// shaders/matmul.wgsl).
pub const MATMUL_BM: u32 = 64;
pub const MATMUL_BN: u32 = 64;

/// Threads per workgroup and per weight row of the matrix–vector and matrix–matrix kernels.
const MATVEC_WG: u32 = 64;
const MATVEC_TPR: u32 = 16;
/// Their override constants.
pub(crate) const PRODUCT_CONSTANTS: [(&str, f64); 2] = [("WG", MATVEC_WG as f64), ("TPR", MATVEC_TPR as f64)];

impl GpuMatrix {
    /// The (x, y) grid of weight-row groups and the params words `[rows, cols, row_words,
    /// groups_x]` that both matrix products of this matrix dispatch with.
    pub(crate) fn product_grid(&self) -> ((u32, u32), [u32; 4]) {
        self.grid_over(self.rows, MATVEC_WG / MATVEC_TPR)
    }

    /// The same for the matrix–matrix product, whose workgroups own tiles of [`MATMUL_BM`]
    /// weight rows (the batch tiles go along z).
    pub(crate) fn matmul_grid(&self) -> ((u32, u32), [u32; 4]) {
        self.grid_over(self.rows, MATMUL_BM)
    }

    /// For a stacked gate/up matrix ([`GpuMatrix::stack`]) in the SWIGLU variants: the grids and
    /// params of the matrix–vector and matrix–matrix products over its first half, the output
    /// rows (a thread reads row r and row r + rows / 2).
    pub(crate) fn swiglu_grids(&self) -> [((u32, u32), [u32; 4]); 2] {
        [self.grid_over(self.rows / 2, MATVEC_WG / MATVEC_TPR), self.grid_over(self.rows / 2, MATMUL_BM)]
    }

    fn grid_over(&self, rows: usize, per_group: u32) -> ((u32, u32), [u32; 4]) {
        let (gx, gy) = grid((rows as u32).div_ceil(per_group));
        ((gx, gy), [rows as u32, self.cols as u32, self.row_words as u32, gx])
    }
}

impl Gpu {
    /// `y = W · x` (decode), in its own submission.
    pub async fn matvec(&self, m: &GpuMatrix, x: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<()> {
        let grids = [m.product_grid(), m.matmul_grid()];
        self.product_variant(m, &[shaders::type_define(m.ty)], grids, x, y, &[], &[], None).await
    }

    /// `Y = X · Wᵀ` for the `n` rows of `x` (prefill), in its own submission; `state` holds
    /// `[pos0, n, …]` as the forward pass writes it.
    pub async fn matmul(
        &self,
        m: &GpuMatrix,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        state: &wgpu::Buffer,
        n: usize,
    ) -> Result<()> {
        let grids = [m.product_grid(), m.matmul_grid()];
        let defs = [shaders::type_define(m.ty)];
        self.product_variant(m, &defs, grids, x, y, &[], &[], Some((state, n))).await
    }

    /// `y += W·x` (the ACC variants: the residual add fused): with `state` and `n`, the prefill
    /// product over `n` rows of `x`, else the decode one; in its own submission.
    pub async fn product_add(
        &self,
        m: &GpuMatrix,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        batch: Option<(&wgpu::Buffer, usize)>,
    ) -> Result<()> {
        let grids = [m.product_grid(), m.matmul_grid()];
        self.product_variant(m, &[shaders::type_define(m.ty), "ACC"], grids, x, y, &[], &[], batch).await
    }

    /// `[y0 | y1 | y2] = W·x (+ bias)` for a stacked matrix ([`GpuMatrix::stack`]) whose rows
    /// `..splits[0]` go to `ys[0]`, `..splits[1]` to `ys[1]` and the rest to `ys[2]` (the SPLIT
    /// variants: attention's Q, K and V in one product): with `state` and `n`, the prefill product
    /// over `n` rows of `x`, else the decode one; in its own submission.
    #[allow(clippy::too_many_arguments)]
    pub async fn split_product(
        &self,
        m: &GpuMatrix,
        bias: Option<&wgpu::Buffer>,
        x: &wgpu::Buffer,
        ys: [&wgpu::Buffer; 3],
        splits: [usize; 2],
        batch: Option<(&wgpu::Buffer, usize)>,
    ) -> Result<()> {
        let (defs, extra, words) = split_variant(m.ty, bias, ys, splits);
        let grids = [m.product_grid(), m.matmul_grid()];
        self.product_variant(m, &defs, grids, x, ys[0], &extra, &words, batch).await
    }

    /// `y = silu(G·x) ⊙ (U·x)` for a stacked gate/up matrix `gu` ([`GpuMatrix::stack`]): with
    /// `state` and `n`, the prefill product over `n` rows of `x`, else the decode one; in its own
    /// submission.
    pub async fn swiglu(
        &self,
        gu: &GpuMatrix,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        batch: Option<(&wgpu::Buffer, usize)>,
    ) -> Result<()> {
        let defs = [shaders::type_define(gu.ty), "SWIGLU"];
        self.product_variant(gu, &defs, gu.swiglu_grids(), x, y, &[], &[], batch).await
    }

    /// One variant (`defines`) of the matrix–vector product (no `batch`) or of the matrix–matrix
    /// product over `n` rows, with `grids` = [its matvec grid, its matmul grid] and their params,
    /// `extra` bindings after the kernel's own and `words` after its params' four.
    #[allow(clippy::too_many_arguments)]
    async fn product_variant(
        &self,
        m: &GpuMatrix,
        defines: &[&str],
        grids: [((u32, u32), [u32; 4]); 2],
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        extra: &[&wgpu::Buffer],
        words: &[u32],
        batch: Option<(&wgpu::Buffer, usize)>,
    ) -> Result<()> {
        let [(vgrid, vwords), ((gx, gy), mwords)] = grids;
        match batch {
            None => {
                let pipeline = self.pipeline(&shaders::MATVEC, defines, &PRODUCT_CONSTANTS).await?;
                let params = self.uniform("matvec params", &[&vwords[..], words].concat());
                let bind = self.bind(&pipeline, &[&[&m.buf, x, y, &params][..], extra].concat());
                self.dispatch_xy(&pipeline, &bind, vgrid);
            }
            Some((state, n)) => {
                let pipeline = self.pipeline(&shaders::MATMUL, defines, &[]).await?;
                let params = self.uniform("matmul params", &[&mwords[..], words].concat());
                let bind = self.bind(&pipeline, &[&[&m.buf, x, y, state, &params][..], extra].concat());
                self.dispatch_xyz(&pipeline, &bind, (gx, gy, (n as u32).div_ceil(MATMUL_BN)));
            }
        }
        Ok(())
    }

    /// RMSNorm of `rows` rows of `n` values, in its own submission.
    pub async fn rms_norm(
        &self,
        x: &wgpu::Buffer,
        weight: &wgpu::Buffer,
        out: &wgpu::Buffer,
        n: usize,
        rows: usize,
        eps: f32,
    ) -> Result<()> {
        let pipeline = self.pipeline(&shaders::RMS_NORM, &[], &[]).await?;
        let groups = rows as u32;
        let params = self.uniform("rms_norm params", &[n as u32, rows as u32, grid(groups).0, eps.to_bits()]);
        let bind = self.bind(&pipeline, &[x, weight, out, &params]);
        self.dispatch(&pipeline, &bind, groups);
        Ok(())
    }
}

/// The bytes of a plain-old-data slice (f32/u32).
pub fn as_bytes<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: only used with f32 and u32, which have no padding or invalid bit patterns.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

/// A one-shot channel whose receiver is a future (wasm-friendly: no blocking).
fn oneshot<T: Send + 'static>() -> (impl FnOnce(T) + Send + 'static, impl std::future::Future<Output = T>) {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    type Slot<T> = Arc<Mutex<(Option<T>, Option<Waker>)>>;
    let slot: Slot<T> = Arc::new(Mutex::new((None, None)));
    let tx_slot = slot.clone();
    let tx = move |v: T| {
        let mut s = tx_slot.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = Some(v);
        if let Some(w) = s.1.take() {
            w.wake();
        }
    };
    struct Rx<T>(Slot<T>);
    impl<T> Future for Rx<T> {
        type Output = T;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
            let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
            match s.0.take() {
                Some(v) => Poll::Ready(v),
                None => {
                    s.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }
    (tx, Rx(slot))
}
