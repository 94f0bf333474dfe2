//! The forward pass on the GPU: every buffer, uniform, pipeline and bind group is built once at
//! load, so a submission writes a few bytes of state (`[pos0, n, tokens…]`), records a prebuilt
//! dispatch list into one encoder and submits once.
//!
//! Two dispatch lists share the buffers (activations are sized for [`BATCH`] rows):
//! - decode, one token: matrix–vector products, attention split over chunks of the cache (each
//!   chunk in parallel, grouped query heads sharing its K/V loads) and merged, then
//!   the head and the pick of the next token, argmax or the sampler's whole chain
//!   (`sample.wgsl`); the token id comes back (4 or 8 bytes), or the logits when asked (or when
//!   the sampler's candidate pool is too large to sort on the GPU);
//! - prefill, up to [`BATCH`] prompt tokens at once: matrix–matrix products tiled through
//!   workgroup memory (each weight decoded once per 64 rows, not once per token) and causal attention with an online softmax; nothing
//!   is read back (the prompt's last token then runs as a decode step for its logits).
//!
//! Every other kernel (embedding, norms, RoPE, KV append, element-wise) is shared: it takes the
//! batch row from the dispatch grid's z (or x for norms), so the decode list is the n = 1 case.
//!
//! Architectures: Llama (RMSNorm, RoPE, GQA, SwiGLU; Q/K/V and gate/up stacked at load) and GPT-2
//! (LayerNorm, learned positions, its fused QKV used as it is by the SPLIT products, biases, GELU).

use super::upload::GpuWeights;
use super::{
    as_bytes, grid, shaders, split_variant, Gpu, GpuMatrix, MATMUL_BN, MAX_GROUPS, PRODUCT_CONSTANTS,
};
use crate::error::{Error, Result};
use crate::model::ops::{Act, Activation, NormKind, Ops, Rope};
use crate::model::{Attention, FeedForward, Linear, Matrix, Model, Norm, RopeStyle};
use crate::sampling::DeviceDraw;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Prompt tokens evaluated per prefill submission (the activations' rows).
pub const BATCH: usize = 64;

/// Candidates the `sample` kernel sorts in workgroup memory (its `CAP`): a larger pool (top-k off
/// or above this, with no min-p floor to narrow it) is sampled on the host from the logits.
pub const SAMPLE_POOL: usize = 1024;

/// Query heads sharing one KV head that one decode-attention workgroup takes (`GMAX`).
const ATTN_GROUP: u32 = 8;

struct Step {
    /// The kernel and its variant ("matvec [Q4_1, BIAS]"), for profiles (profiles and traces).
    name: String,
    pipeline: Arc<wgpu::ComputePipeline>,
    bind: wgpu::BindGroup,
    groups: Groups,
    plan: Plan,
}

impl Step {
    /// Records this step's dispatch for `n` rows at `pos..`.
    fn record(&self, pass: &mut wgpu::ComputePass, pos: usize, n: usize) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind, &[]);
        let (x, y, z) = self.groups.at(pos, n);
        pass.dispatch_workgroups(x, y, z);
    }
}

/// Which dispatch list a step belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plan {
    Both,
    Decode,
    Prefill,
    /// After the prefill list, when every row's logits are wanted (perplexity).
    Logits,
    /// After the decode list, before a pick: the grammar's allowed set applied to the logits.
    Mask,
    /// After the decode list: the greedy pick.
    Argmax,
    /// After the decode list: the sampler's pick.
    Sample,
}

impl Plan {
    /// In a greedy decode step (what `dispatches` counts and the profile times).
    fn greedy_decode(self) -> bool {
        matches!(self, Plan::Both | Plan::Decode | Plan::Argmax)
    }
}

/// A step's dispatch grid, sized per submission from the position and the batch rows n (the
/// encoder is recorded afresh each time).
#[derive(Clone, Copy)]
enum Groups {
    Fixed(u32, u32),
    /// (x, y) within a row, the n batch rows along z.
    Rows(u32, u32),
    /// One workgroup per batch row along x (the norms).
    RowsX,
    /// One workgroup per (batch row, head) along x: per-head norms.
    RowsTimes(u32),
    /// (x, y) over tiles of weight rows, tiles of MATMUL_BN batch rows along z.
    Tiles(u32, u32),
    /// ((pos + 1) / 64 rounded up, y): decode attention over the chunks of 64 positions written
    /// so far.
    Positions(u32),
}

impl Groups {
    fn at(self, pos: usize, n: usize) -> (u32, u32, u32) {
        let n = n as u32;
        match self {
            Groups::Fixed(x, y) => (x, y, 1),
            Groups::Rows(x, y) => (x, y, n),
            Groups::RowsX => (n, 1, 1),
            Groups::RowsTimes(h) => (n * h, 1, 1),
            Groups::Tiles(x, y) => (x, y, n.div_ceil(MATMUL_BN)),
            Groups::Positions(y) => ((pos as u32 + 1).div_ceil(64), y, 1),
        }
    }
}

pub struct GpuForward {
    gpu: Arc<Gpu>,
    steps: Vec<Step>,
    /// [pos0, n, tokens[BATCH]]
    state: wgpu::Buffer,
    /// [BATCH · n_vocab]; decode writes row 0
    logits: wgpu::Buffer,
    /// [token, pool size when the sampler could not pick]
    token: wgpu::Buffer,
    /// The sampler's options and draw: `sample_words`
    sample_params: wgpu::Buffer,
    /// The tokens a grammar allows next, a bit each: [ceil(n_vocab / 32)]
    allowed: wgpu::Buffer,
    /// (token, count) of each penalized token: [2 · pen_cap]
    pen: wgpu::Buffer,
    pen_cap: usize,
    /// Readback, preallocated: [BATCH · n_vocab] words
    staging: wgpu::Buffer,
    /// Words read back so far (the token ids and logits), for tests and benchmarks.
    words_read: AtomicU64,
    n_vocab: usize,
    n_ctx: usize,
    /// The activation buffers a trace reads back after each dispatch: (name, buffer, words of
    /// its first row).
    traced: Vec<(&'static str, wgpu::Buffer, usize)>,
    /// Dispatches per step and weight bytes read per step, for `wisp bench`.
    pub dispatches: usize,
    pub weight_bytes: u64,
}

struct Builder<'a> {
    gpu: &'a Gpu,
    state: &'a wgpu::Buffer,
    steps: Vec<Step>,
    weight_bytes: u64,
}

impl Builder<'_> {
    /// A step of both lists over `groups` workgroups per batch row.
    async fn push_rows(
        &mut self,
        shader: &shaders::Shader,
        defines: &[&str],
        buffers: &[&wgpu::Buffer],
        groups: u32,
    ) -> Result<()> {
        let (x, y) = grid(groups);
        self.push_grid(shader, defines, &[], buffers, Groups::Rows(x, y), Plan::Both).await
    }

    async fn push_grid(
        &mut self,
        shader: &shaders::Shader,
        defines: &[&str],
        constants: &[(&str, f64)],
        buffers: &[&wgpu::Buffer],
        groups: Groups,
        plan: Plan,
    ) -> Result<()> {
        let pipeline = self.gpu.pipeline(shader, defines, constants).await?;
        let bind = self.gpu.bind(&pipeline, buffers);
        self.push(shader, defines, pipeline, bind, groups, plan);
        Ok(())
    }

    /// Appends a step whose pipeline and bind group are built.
    fn push(
        &mut self,
        shader: &shaders::Shader,
        defines: &[&str],
        pipeline: Arc<wgpu::ComputePipeline>,
        bind: wgpu::BindGroup,
        groups: Groups,
        plan: Plan,
    ) {
        let name = format!("{} {defines:?}", shader.name);
        self.steps.push(Step { name, pipeline, bind, groups, plan });
    }

    fn uniform(&self, words: &[u32]) -> wgpu::Buffer {
        self.gpu.uniform("params", words)
    }

    /// `y = W·x (+ b)` for each batch row: a matrix–vector product in the decode list and a
    /// matrix–matrix product in the `batched` list (prefill for the layers, logits for the head).
    /// With `add`, `y += W·x (+ b)` instead (the ACC variants: a residual add fused).
    async fn product(
        &mut self,
        l: &(&GpuMatrix, Option<wgpu::Buffer>),
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        batched: Plan,
        add: bool,
    ) -> Result<()> {
        let m = l.0;
        let bias: Vec<&wgpu::Buffer> = l.1.iter().collect();
        let mut defs = vec![shaders::type_define(m.ty)];
        defs.extend(bias.first().map(|_| "BIAS"));
        defs.extend(add.then_some("ACC"));
        let grids = [m.product_grid(), m.matmul_grid()];
        self.products(m, &defs, grids, x, y, &bias, &[], batched).await
    }

    /// Attention's `[q | k | v] = W·x (+ b)` from one stacked matrix whose rows `..splits[0]` are
    /// Q's and `..splits[1]` K's, in both lists (the SPLIT variants).
    async fn split(
        &mut self,
        l: &(&GpuMatrix, Option<wgpu::Buffer>),
        x: &wgpu::Buffer,
        ys: [&wgpu::Buffer; 3],
        splits: [usize; 2],
    ) -> Result<()> {
        let m = l.0;
        let (defs, extra, words) = split_variant(m.ty, l.1.as_ref(), ys, splits);
        let grids = [m.product_grid(), m.matmul_grid()];
        self.products(m, &defs, grids, x, ys[0], &extra, &words, Plan::Prefill).await
    }

    /// SwiGLU's `y = silu(G·x) ⊙ (U·x)` from the stacked gate/up matrix `gu`, in both lists:
    /// the SWIGLU variants of the matrix–vector and matrix–matrix products.
    async fn swiglu(&mut self, gu: &GpuMatrix, x: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<()> {
        let defs = [shaders::type_define(gu.ty), "SWIGLU"];
        self.products(gu, &defs, gu.swiglu_grids(), x, y, &[], &[], Plan::Prefill).await
    }

    /// One variant (`defs`) of both products of `m`: the matrix–vector one in the decode list
    /// and the matrix–matrix one in the `batched` list, with `grids` = [matvec grid, matmul grid]
    /// and their params, `extra` bindings after the kernel's own (the bias, SPLIT's outputs) and
    /// `words` after the params' four.
    #[allow(clippy::too_many_arguments)]
    async fn products(
        &mut self,
        m: &GpuMatrix,
        defs: &[&str],
        grids: [((u32, u32), [u32; 4]); 2],
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        extra: &[&wgpu::Buffer],
        words: &[u32],
        batched: Plan,
    ) -> Result<()> {
        let [((gx, gy), vwords), ((tx, ty), mwords)] = grids;
        self.weight_bytes += m.buf.size();
        let params = self.uniform(&[&vwords[..], words].concat());
        let mut bufs = vec![&m.buf, x, y, &params];
        bufs.extend(extra);
        let c = PRODUCT_CONSTANTS;
        self.push_grid(&shaders::MATVEC, defs, &c, &bufs, Groups::Fixed(gx, gy), Plan::Decode).await?;
        let params = self.uniform(&[&mwords[..], words].concat());
        let mut bufs = vec![&m.buf, x, y, self.state, &params];
        bufs.extend(extra);
        self.push_grid(&shaders::MATMUL, defs, &[], &bufs, Groups::Tiles(tx, ty), batched).await
    }

    /// A layer's `y = W·x (+ b)`.
    async fn linear(
        &mut self,
        l: &(&GpuMatrix, Option<wgpu::Buffer>),
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<()> {
        self.product(l, x, y, Plan::Prefill, false).await
    }

    /// RMSNorm or LayerNorm of each batch row of `x` into `out`, in the lists of `plan`.
    async fn norm(
        &mut self,
        kind: NormKind,
        x: &wgpu::Buffer,
        n: &Norm,
        out: &wgpu::Buffer,
        eps: f32,
        plan: Plan,
    ) -> Result<()> {
        let w = self.gpu.storage_f32("norm weight", &n.w)?;
        // rows numbered y · groups_x + x, with x < BATCH ≤ groups_x: row = x
        let params = self.uniform(&[n.w.len() as u32, BATCH as u32, MAX_GROUPS, eps.to_bits()]);
        match kind {
            NormKind::Rms => {
                let bufs = [x, &w, out, &params];
                self.push_grid(&shaders::RMS_NORM, &[], &[], &bufs, Groups::RowsX, plan).await
            }
            NormKind::Layer => {
                let zeros = vec![0.0; n.w.len()];
                let b = self.gpu.storage_f32("norm bias", n.b.as_deref().unwrap_or(&zeros))?;
                let bufs = [x, &w, &b, out, &params];
                self.push_grid(&shaders::LAYER_NORM, &[], &[], &bufs, Groups::RowsX, plan).await
            }
        }
    }

    /// RMSNorm of `x`'s rows where they are (the INPLACE variant), `per_token` rows of
    /// `n.w.len()` per batch row (one for a whole row, the heads for per-head norms), both lists.
    async fn rms_norm_in_place(
        &mut self,
        x: &wgpu::Buffer,
        n: &Norm,
        eps: f32,
        per_token: usize,
    ) -> Result<()> {
        let w = self.gpu.storage_f32("norm weight", &n.w)?;
        let rows = (BATCH * per_token) as u32;
        let params = self.uniform(&[n.w.len() as u32, rows, MAX_GROUPS, eps.to_bits()]);
        let pipeline = self.gpu.pipeline(&shaders::RMS_NORM, &["INPLACE"], &[]).await?;
        let bind = self.gpu.bind_at(&pipeline, &[(0, x), (1, &w), (3, &params)]);
        let grid = Groups::RowsTimes(per_token as u32);
        self.push(&shaders::RMS_NORM, &["INPLACE"], pipeline, bind, grid, Plan::Both);
        Ok(())
    }

    async fn gelu(&mut self, a: &wgpu::Buffer, n: usize) -> Result<()> {
        let groups = (n as u32).div_ceil(64);
        let (x, y) = grid(groups);
        let params = self.uniform(&[n as u32, x, 0, 0]);
        let pipeline = self.gpu.pipeline(&shaders::ELEMENTWISE, &["GELU"], &[]).await?;
        let bind = self.gpu.bind_at(&pipeline, &[(0, a), (2, &params)]);
        self.push(&shaders::ELEMENTWISE, &["GELU"], pipeline, bind, Groups::Rows(x, y), Plan::Both);
        Ok(())
    }

    /// `a *= s` (the SCALE variant; `s` rides in the params).
    async fn elementwise_scalar(&mut self, op: &str, a: &wgpu::Buffer, s: f32, n: usize) -> Result<()> {
        let groups = (n as u32).div_ceil(64);
        let (x, y) = grid(groups);
        let params = self.uniform(&[n as u32, x, s.to_bits(), 0]);
        let pipeline = self.gpu.pipeline(&shaders::ELEMENTWISE, &[op], &[]).await?;
        let bind = self.gpu.bind_at(&pipeline, &[(0, a), (2, &params)]);
        self.push(&shaders::ELEMENTWISE, &[op], pipeline, bind, Groups::Rows(x, y), Plan::Both);
        Ok(())
    }

    async fn elementwise(&mut self, op: &str, a: &wgpu::Buffer, b: &wgpu::Buffer, n: usize) -> Result<()> {
        let groups = (n as u32).div_ceil(64);
        let params = self.uniform(&[n as u32, grid(groups).0, 0, 0]);
        self.push_rows(&shaders::ELEMENTWISE, &[op], &[a, b, &params], groups).await
    }
}

/// The activation buffers the ops name, `[BATCH, width]` each.
struct Acts {
    x: wgpu::Buffer,
    xb: wgpu::Buffer,
    q: wgpu::Buffer,
    k: wgpu::Buffer,
    v: wgpu::Buffer,
    att: wgpu::Buffer,
    hb: wgpu::Buffer,
    o: wgpu::Buffer,
}

impl Acts {
    fn get(&self, a: Act) -> &wgpu::Buffer {
        match a {
            Act::X => &self.x,
            Act::Xb => &self.xb,
            Act::Q => &self.q,
            Act::K => &self.k,
            Act::V => &self.v,
            Act::Att => &self.att,
            Act::Hb => &self.hb,
            Act::O => &self.o,
        }
    }
}

/// One call of the ops seam, as the architecture made it.
enum Rec<'m> {
    Embed(&'m Matrix, f32),
    Positions(&'m Matrix),
    Norm(NormKind, &'m Norm, f32, Act, Act),
    HeadNorm(&'m Norm, f32, Act),
    Qkv(&'m Attention, Act),
    RopeStore(usize, Option<Rope<'m>>),
    Attention(usize, Option<usize>),
    Add(Act, Act),
    /// `y (+)= W·x + b`, adding when the flag is set.
    Linear(&'m Linear, Act, Act, bool),
    FfnUp(Activation, &'m FeedForward, Act, Act),
    Logits(NormKind, &'m Norm, f32, &'m Matrix),
}

impl<'m> Rec<'m> {
    /// The matrices this op reads, for counting each one's uses.
    fn matrices(&self) -> Vec<&'m Matrix> {
        fn lin<'m>(l: &[&'m Linear]) -> Vec<&'m Matrix> {
            l.iter().map(|l| &l.w).collect()
        }
        match *self {
            Rec::Embed(m, _) | Rec::Positions(m) | Rec::Logits(.., m) => vec![m],
            Rec::Qkv(Attention::Separate { q, k, v }, _) => lin(&[q, k, v]),
            Rec::Qkv(Attention::Fused(l), _) => lin(&[l]),
            Rec::Linear(l, ..) => lin(&[l]),
            Rec::FfnUp(_, FeedForward::Gated { gate, up }, ..) => lin(&[gate, up]),
            Rec::FfnUp(_, FeedForward::GatedStacked(l) | FeedForward::Plain { up: l }, ..) => lin(&[l]),
            Rec::Norm(..) | Rec::HeadNorm(..) | Rec::RopeStore(..) | Rec::Attention(..) | Rec::Add(..) => {
                vec![]
            }
        }
    }
}

/// The GPU backend of the ops seam: it records the op sequence, which [`GpuForward::new`] then
/// turns into the dispatch lists (building pipelines is asynchronous, which a trait method
/// cannot await).
#[derive(Default)]
struct Recorder<'m> {
    ops: Vec<Rec<'m>>,
}

impl<'m> Ops<'m> for Recorder<'m> {
    fn embed(&mut self, table: &'m Matrix, scale: f32) -> Result<()> {
        self.ops.push(Rec::Embed(table, scale));
        Ok(())
    }
    fn add_positions(&mut self, table: &'m Matrix) -> Result<()> {
        self.ops.push(Rec::Positions(table));
        Ok(())
    }
    fn norm(&mut self, kind: NormKind, n: &'m Norm, eps: f32, x: Act, out: Act) -> Result<()> {
        self.ops.push(Rec::Norm(kind, n, eps, x, out));
        Ok(())
    }
    fn head_norm(&mut self, n: &'m Norm, eps: f32, x: Act) -> Result<()> {
        self.ops.push(Rec::HeadNorm(n, eps, x));
        Ok(())
    }
    fn qkv(&mut self, attn: &'m Attention, x: Act) -> Result<()> {
        self.ops.push(Rec::Qkv(attn, x));
        Ok(())
    }
    fn rope_and_store(&mut self, layer: usize, rope: Option<Rope<'m>>) -> Result<()> {
        self.ops.push(Rec::RopeStore(layer, rope));
        Ok(())
    }
    fn attention(&mut self, layer: usize, window: Option<usize>) -> Result<()> {
        self.ops.push(Rec::Attention(layer, window));
        Ok(())
    }
    fn add(&mut self, x: Act, y: Act) -> Result<()> {
        self.ops.push(Rec::Add(x, y));
        Ok(())
    }
    fn linear(&mut self, l: &'m Linear, x: Act, y: Act) -> Result<()> {
        self.ops.push(Rec::Linear(l, x, y, false));
        Ok(())
    }
    fn linear_add(&mut self, l: &'m Linear, x: Act, y: Act) -> Result<()> {
        self.ops.push(Rec::Linear(l, x, y, true));
        Ok(())
    }
    fn ffn_up(&mut self, act: Activation, ffn: &'m FeedForward, x: Act, y: Act) -> Result<()> {
        self.ops.push(Rec::FfnUp(act, ffn, x, y));
        Ok(())
    }
    fn logits(&mut self, kind: NormKind, n: &'m Norm, eps: f32, head: &'m Matrix) -> Result<()> {
        self.ops.push(Rec::Logits(kind, n, eps, head));
        Ok(())
    }
}

/// A matrix on the GPU in the parts that each fit one storage binding: (first row, part).
type Parts = Vec<(usize, GpuMatrix)>;

/// Where the GPU copies of the model's matrices come from: uploaded while the file streamed
/// ([`GpuWeights`]), or uploaded now from the model's host data. A matrix the op sequence uses
/// more than once (a head tied to the embedding) is kept until its last use.
struct Uploader<'a> {
    gpu: &'a Gpu,
    streamed: Option<&'a mut GpuWeights>,
    /// Uses left of each matrix, by tensor name, and the copies still wanted.
    uses: HashMap<String, usize>,
    kept: HashMap<String, Rc<Parts>>,
}

impl Uploader<'_> {
    /// `m` in parts (one unless it exceeds a storage binding: only the embedding tables and the
    /// head may).
    fn parts(&mut self, m: &Matrix) -> Result<Rc<Parts>> {
        let left = self.uses.get_mut(&m.name).map(|n| {
            *n = n.saturating_sub(1);
            *n
        });
        let g = match self.kept.get(&m.name) {
            Some(g) => g.clone(),
            None => Rc::new(self.upload(m)?),
        };
        if left.unwrap_or(0) > 0 {
            self.kept.insert(m.name.clone(), g.clone());
        } else {
            self.kept.remove(&m.name);
        }
        Ok(g)
    }

    /// `m` in one binding, or an error naming the limit.
    fn matrix(&mut self, m: &Matrix) -> Result<Rc<GpuMatrix>> {
        let mut parts = Rc::try_unwrap(self.parts(m)?).map_err(|_| {
            Error::Gpu(format!("tensor '{}' is used twice and only a table or the head may be", m.name))
        })?;
        match parts.len() {
            1 => Ok(Rc::new(parts.remove(0).1)),
            _ => Err(Error::GpuLimit {
                limit: "max_storage_buffer_binding_size",
                what: format!("'{}' in one binding", m.name),
                need: parts.iter().map(|p| p.1.buf.size()).sum(),
                max: self.gpu.limits.max_storage_buffer_binding_size,
            }),
        }
    }

    fn upload(&mut self, m: &Matrix) -> Result<Parts> {
        if let Some(g) = self.streamed.as_mut().and_then(|w| w.take(&m.name)) {
            let rows: usize = g.iter().map(|p| p.1.rows).sum();
            if g.iter().any(|p| (p.1.cols, p.1.ty) != (m.cols, m.ty)) || rows != m.rows {
                return Err(Error::malformed(format!("tensor '{}'", m.name), "GPU copy has another shape"));
            }
            return Ok(g);
        }
        if m.data.len() != m.rows * m.row_bytes() {
            return Err(Error::malformed(
                format!("tensor '{}'", m.name),
                "neither on the host nor on the GPU",
            ));
        }
        GpuMatrix::upload_parts(self.gpu, &m.name, m.ty, m.rows, m.cols, &m.data)
    }

    /// A linear layer: its matrix and optional bias.
    fn linear(&mut self, l: &Linear) -> Result<(Rc<GpuMatrix>, Option<wgpu::Buffer>)> {
        let m = self.matrix(&l.w)?;
        let b = l.b.as_ref().map(|b| self.gpu.storage_f32(&format!("{} bias", l.w.name), b)).transpose()?;
        Ok((m, b))
    }
}

/// Linear layers' matrices stacked into one ([`GpuMatrix::stack`]) for a fused product, or
/// `None` when any has a bias (the fused variants add none) or they cannot be stacked.
fn stack_unbiased(
    gpu: &Gpu,
    label: &str,
    parts: &[&(Rc<GpuMatrix>, Option<wgpu::Buffer>)],
) -> Result<Option<GpuMatrix>> {
    if parts.iter().any(|p| p.1.is_some()) {
        return Ok(None);
    }
    GpuMatrix::stack(gpu, label, &parts.iter().map(|p| &*p.0).collect::<Vec<_>>())
}

impl GpuForward {
    pub async fn new(gpu: Arc<Gpu>, model: &Model, n_ctx: usize) -> Result<GpuForward> {
        Self::build(gpu, model, n_ctx, None).await
    }

    /// [`GpuForward::new`] with the matrices the loader already streamed to the GPU
    /// (`weights.gpu` must be `gpu`); the model's host copies of those are empty.
    pub async fn with_weights(model: &Model, n_ctx: usize, weights: &mut GpuWeights) -> Result<GpuForward> {
        let gpu = weights.gpu.clone();
        Self::build(gpu, model, n_ctx, Some(weights)).await
    }

    async fn build(
        gpu: Arc<Gpu>,
        model: &Model,
        n_ctx: usize,
        streamed: Option<&mut GpuWeights>,
    ) -> Result<GpuForward> {
        let cfg = &model.cfg;
        if !cfg.head_dim.is_multiple_of(2) || !cfg.rope_dims.is_multiple_of(2) {
            return Err(Error::Gpu(format!("head dimension {} must be even", cfg.head_dim)));
        }
        if cfg.head_dim > 256 {
            return Err(Error::Gpu(format!(
                "head dimension {} is over 256, the attention kernels' limit",
                cfg.head_dim
            )));
        }
        let g = &*gpu;
        let (d, q_dim, kv_dim, hd, ff) = (cfg.n_embd, cfg.q_dim(), cfg.kv_dim(), cfg.head_dim, cfg.n_ff);
        let f32buf = |name: &str, n: usize| g.storage(name, 4 * (BATCH * n) as u64, None);
        // activations, BATCH rows each: x [d] residual, xb [d] normed, q [q_dim], k/v [kv_dim],
        // att [q_dim], o [d], hb/hb2 [ff]; logits [n_vocab] (decode) or [BATCH · n_vocab]
        let acts = Acts {
            x: f32buf("x", d)?,
            xb: f32buf("xb", d)?,
            q: f32buf("q", q_dim)?,
            k: f32buf("k", kv_dim)?,
            v: f32buf("v", kv_dim)?,
            att: f32buf("att", q_dim)?,
            hb: f32buf("hb", ff)?,
            o: f32buf("o", d)?,
        };
        let hb2 = f32buf("hb2", ff)?;
        let traced = vec![
            ("x", acts.x.clone(), d),
            ("xb", acts.xb.clone(), d),
            ("q", acts.q.clone(), q_dim),
            ("k", acts.k.clone(), kv_dim),
            ("v", acts.v.clone(), kv_dim),
            ("att", acts.att.clone(), q_dim),
            ("hb", acts.hb.clone(), ff),
            ("hb2", hb2.clone(), ff),
            ("o", acts.o.clone(), d),
        ];
        // decode attention's partial softmax per (head, chunk of 64 positions): acc [hd], m, l
        let max_chunks = n_ctx.div_ceil(64);
        let partials =
            g.storage("attention partials", 4 * (cfg.n_head * max_chunks * (hd + 2)) as u64, None)?;
        let logits = g.storage("logits", 4 * (BATCH * model.n_vocab) as u64, None)?;
        let staging = g.staging("readback", 4 * (BATCH * model.n_vocab) as u64);
        let state = g.storage("state", 4 * (2 + BATCH) as u64, None)?;
        let token = g.storage("token", 8, None)?;
        let work = g.storage("work", 4 * model.n_vocab as u64, None)?;
        let pen_cap = n_ctx.min(model.n_vocab).max(1);
        let pen = g.storage("penalties", 8 * pen_cap as u64, None)?;
        let sample_params = g.uniform("sample params", &[0; 12]);

        // the architecture states its op sequence; it is turned into dispatches below
        let mut rec = Recorder::default();
        model.forward(&mut rec)?;
        let mut uses = HashMap::new();
        for m in rec.ops.iter().flat_map(Rec::matrices) {
            *uses.entry(m.name.clone()).or_insert(0) += 1;
        }

        let mut b = Builder { gpu: g, state: &state, steps: Vec::new(), weight_bytes: 0 };
        let mut wts = Uploader { gpu: g, streamed, uses, kept: HashMap::new() };
        let group = (cfg.n_head / cfg.n_head_kv) as u32;
        // decode attention's workgroups per chunk of positions: KV heads × subgroups of ≤ 8 heads
        let head_groups = (cfg.n_head_kv as u32) * group.div_ceil(ATTN_GROUP);
        // per window (none, or the sliding one): the last word is the window, 0 for none
        let mut attn_params: HashMap<Option<usize>, wgpu::Buffer> = HashMap::new();
        let kv_params = b.uniform(&[kv_dim as u32, n_ctx as u32, 0, 0]);
        // each layer's K and V cache [n_ctx, kv_dim] f16, made when the sequence first stores
        let mut caches: Vec<Option<(wgpu::Buffer, wgpu::Buffer)>> = (0..cfg.n_layer).map(|_| None).collect();
        let cache_of = |caches: &[Option<(wgpu::Buffer, wgpu::Buffer)>], li: usize| {
            caches.get(li).and_then(|c| c.clone()).ok_or_else(|| {
                Error::Gpu(format!("layer {li}: attention before its keys and values were stored"))
            })
        };

        for op in &rec.ops {
            match *op {
                Rec::Embed(e, scale) => {
                    let parts = wts.parts(e)?;
                    // a table over one binding is looked up part by part (PART: the part holding
                    // the token writes its row)
                    let split = parts.len() > 1;
                    for (row0, embd) in parts.iter() {
                        let params =
                            b.uniform(&[d as u32, embd.row_words as u32, embd.rows as u32, *row0 as u32]);
                        let bufs = [&embd.buf, &state, &acts.x, &params];
                        let mut defs = vec![shaders::type_define(e.ty)];
                        defs.extend(split.then_some("PART"));
                        b.push_rows(&shaders::EMBED, &defs, &bufs, (d as u32).div_ceil(64)).await?;
                    }
                    b.weight_bytes += (parts[0].1.row_words * 4) as u64;
                    if scale != 1.0 {
                        b.elementwise_scalar("SCALE", &acts.x, scale, d).await?;
                    }
                }
                Rec::Positions(pe) => {
                    let pm = wts.matrix(pe)?;
                    let params = b.uniform(&[d as u32, pm.row_words as u32, pm.rows as u32, 0]);
                    let defs = [shaders::type_define(pe.ty), "POSITION"];
                    let bufs = [&pm.buf, &state, &acts.o, &params];
                    b.push_rows(&shaders::EMBED, &defs, &bufs, (d as u32).div_ceil(64)).await?;
                    b.elementwise("ADD", &acts.x, &acts.o, d).await?;
                    b.weight_bytes += (pm.row_words * 4) as u64;
                }
                Rec::Norm(kind, n, eps, x, out) if x != out => {
                    b.norm(kind, acts.get(x), n, acts.get(out), eps, Plan::Both).await?;
                }
                Rec::Norm(kind, n, eps, x, _) => {
                    if kind != NormKind::Rms {
                        return Err(Error::Gpu("a LayerNorm in place on the GPU".into()));
                    }
                    b.rms_norm_in_place(acts.get(x), n, eps, 1).await?;
                }
                Rec::Add(x, y) => b.elementwise("ADD", acts.get(y), acts.get(x), d).await?,
                Rec::HeadNorm(n, eps, x) => {
                    // one row per head
                    let heads = if x == Act::Q { cfg.n_head } else { cfg.n_head_kv };
                    b.rms_norm_in_place(acts.get(x), n, eps, heads).await?;
                }
                Rec::Qkv(attn, x) => {
                    // Q, K and V as one product split three ways (a fused matrix as it is;
                    // separate ones stacked at load unless their types differ or the stack is
                    // over the limit)
                    let (xb, ys) = (acts.get(x), [&acts.q, &acts.k, &acts.v]);
                    let splits = [q_dim, q_dim + kv_dim];
                    match attn {
                        Attention::Fused(qkv) => {
                            let (m, bias) = wts.linear(qkv)?;
                            b.split(&(&*m, bias), xb, ys, splits).await?;
                        }
                        Attention::Separate { q: wq, k: wk, v: wv } => {
                            let parts = [wts.linear(wq)?, wts.linear(wk)?, wts.linear(wv)?];
                            let label = wq.w.name.replace("attn_q", "attn_qkv");
                            let mats: Vec<&GpuMatrix> = parts.iter().map(|p| &*p.0).collect();
                            // biases on all three (Qwen2) stack into one bias too
                            let biases: Option<Vec<f32>> = [wq, wk, wv]
                                .iter()
                                .map(|l| l.b.as_deref())
                                .collect::<Option<Vec<_>>>()
                                .map(|b| b.concat());
                            let stacked = match (&biases, parts.iter().any(|p| p.1.is_some())) {
                                (None, true) => None,
                                _ => GpuMatrix::stack(g, &label, &mats)?,
                            };
                            if let Some(qkv) = stacked {
                                let bias = biases
                                    .map(|b| g.storage_f32(&format!("{label} bias"), &b))
                                    .transpose()?;
                                b.split(&(&qkv, bias), xb, ys, splits).await?;
                            } else {
                                for ((m, bias), out) in parts.into_iter().zip(ys) {
                                    b.linear(&(&*m, bias), xb, out).await?;
                                }
                            }
                        }
                    }
                }
                Rec::RopeStore(li, rope) => {
                    let cache_bytes = (n_ctx * kv_dim * 2) as u64;
                    let kc = g.storage(&format!("k cache {li}"), cache_bytes, None)?;
                    let vc = g.storage(&format!("v cache {li}"), cache_bytes, None)?;
                    let (q, k, v) = (&acts.q, &acts.k, &acts.v);
                    match rope {
                        Some(r) => {
                            if r.dims > hd || r.dims % 2 != 0 {
                                return Err(Error::Gpu(format!("RoPE over {} of {hd} dimensions", r.dims)));
                            }
                            // RoPE on q in place, and on k on its way into the cache with v: one
                            // dispatch
                            let theta_scale = r.base.powf(-2.0 / r.dims as f32);
                            let params = b.uniform(&[
                                cfg.n_head as u32,
                                cfg.n_head_kv as u32,
                                hd as u32,
                                r.dims as u32,
                                theta_scale.to_bits(),
                                n_ctx as u32,
                                r.freq_scale.to_bits(),
                                r.attn_factor.to_bits(),
                            ]);
                            let mut defs = vec![];
                            defs.extend((r.style == RopeStyle::Neox).then_some("NEOX"));
                            let threads = (cfg.n_head * r.dims / 2 + kv_dim / 2) as u32;
                            let mut bufs = vec![q, k, v, &kc, &vc, &state, &params];
                            let factors = match r.factors {
                                Some(f) if f.len() == r.dims / 2 => Some(g.storage_f32("rope factors", f)?),
                                Some(f) => {
                                    return Err(Error::Gpu(format!(
                                        "{} RoPE factors for {} dims",
                                        f.len(),
                                        r.dims
                                    )))
                                }
                                None => None,
                            };
                            if let Some(f) = &factors {
                                defs.push("FACTORS");
                                bufs.push(f);
                            }
                            b.push_rows(&shaders::ROPE, &defs, &bufs, threads.div_ceil(64)).await?;
                        }
                        None => {
                            let bufs = [k, v, &kc, &vc, &state, &kv_params];
                            let groups = (kv_dim as u32 / 2).div_ceil(64);
                            b.push_rows(&shaders::KV_APPEND, &[], &bufs, groups).await?;
                        }
                    }
                    caches[li] = Some((kc, vc));
                }
                Rec::Attention(li, window) => {
                    let (kc, vc) = cache_of(&caches, li)?;
                    let attn_params = attn_params.entry(window).or_insert_with(|| {
                        b.uniform(&[
                            cfg.n_head as u32,
                            group,
                            hd as u32,
                            kv_dim as u32,
                            n_ctx as u32,
                            max_chunks as u32,
                            cfg.attn_scale.to_bits(),
                            window.unwrap_or(0).min(u32::MAX as usize) as u32,
                        ])
                    });
                    let attn_params = &*attn_params;
                    let (q, att, nh) = (&acts.q, &acts.att, cfg.n_head as u32);
                    let bufs = [q, &kc, &vc, &partials, &state, attn_params];
                    let grid = Groups::Positions(head_groups);
                    b.push_grid(&shaders::ATTN_DECODE, &[], &[], &bufs, grid, Plan::Decode).await?;
                    let bufs = [&partials, att, &state, attn_params];
                    let grid = Groups::Fixed(nh, 1);
                    b.push_grid(&shaders::ATTN_MERGE, &[], &[], &bufs, grid, Plan::Decode).await?;
                    let bufs = [q, &kc, &vc, att, &state, attn_params];
                    let grid = Groups::Rows(nh, 1);
                    b.push_grid(&shaders::ATTN_PREFILL, &[], &[], &bufs, grid, Plan::Prefill).await?;
                }
                Rec::Linear(l, x, y, add) => {
                    let (m, bias) = wts.linear(l)?;
                    b.product(&(&*m, bias), acts.get(x), acts.get(y), Plan::Prefill, add).await?;
                }
                Rec::FfnUp(act, ffn, x, y) => {
                    let (xb, hb) = (acts.get(x), acts.get(y));
                    let unsupported =
                        || Error::Gpu(format!("the feed-forward activation {act:?} in this form on the GPU"));
                    match (act, ffn) {
                        (Activation::Silu, FeedForward::Gated { gate, up }) => {
                            let label = format!("{}+up", gate.w.name);
                            let (gate, up) = (wts.linear(gate)?, wts.linear(up)?);
                            // gate and up stacked into one matrix: one kernel for both products
                            // and silu·mul
                            let stacked = stack_unbiased(g, &label, &[&gate, &up])?;
                            if let Some(gu) = stacked {
                                b.swiglu(&gu, xb, hb).await?;
                            } else {
                                b.linear(&(&*gate.0, gate.1), xb, hb).await?;
                                b.linear(&(&*up.0, up.1), xb, &hb2).await?;
                                b.elementwise("SILU_MUL", hb, &hb2, ff).await?;
                            }
                        }
                        (Activation::Silu, FeedForward::GatedStacked(gate_up)) if gate_up.b.is_none() => {
                            let gu = wts.matrix(&gate_up.w)?;
                            b.swiglu(&gu, xb, hb).await?;
                        }
                        (Activation::GeluTanh, FeedForward::Gated { gate, up }) => {
                            let (gate, up) = (wts.linear(gate)?, wts.linear(up)?);
                            b.linear(&(&*gate.0, gate.1), xb, hb).await?;
                            b.linear(&(&*up.0, up.1), xb, &hb2).await?;
                            b.elementwise("GELU_MUL", hb, &hb2, ff).await?;
                        }
                        (Activation::GeluTanh, FeedForward::Plain { up }) => {
                            let up = wts.linear(up)?;
                            b.linear(&(&*up.0, up.1), xb, hb).await?;
                            b.gelu(hb, ff).await?;
                        }
                        _ => return Err(unsupported()),
                    }
                }
                Rec::Logits(kind, n, eps, head) => {
                    // the final norm of the decode row, or of every row when all logits are wanted
                    b.norm(kind, &acts.x, n, &acts.xb, eps, Plan::Decode).await?;
                    b.norm(kind, &acts.x, n, &acts.xb, eps, Plan::Logits).await?;
                    let parts = wts.parts(head)?;
                    if let [(_, head)] = &parts[..] {
                        b.product(&(head, None), &acts.xb, &logits, Plan::Logits, false).await?;
                    } else {
                        // a head over one binding: each part's product into `part_out`, its rows
                        // then placed among the logits (in both lists)
                        let widest = parts.iter().map(|p| p.1.rows).max().unwrap_or(0);
                        let part_out = f32buf("head part logits", widest)?;
                        for (row0, m) in parts.iter() {
                            b.product(&(m, None), &acts.xb, &part_out, Plan::Logits, false).await?;
                            let (x, y) = grid((m.rows as u32).div_ceil(64));
                            let words = [m.rows as u32, model.n_vocab as u32, *row0 as u32, x];
                            for plan in [Plan::Decode, Plan::Logits] {
                                let params = b.uniform(&words);
                                let bufs = [&part_out, &logits, &params];
                                b.push_grid(&shaders::SCATTER, &[], &[], &bufs, Groups::Rows(x, y), plan)
                                    .await?;
                            }
                        }
                    }
                }
            }
        }
        let allowed = g.storage("allowed tokens", 4 * model.n_vocab.div_ceil(32) as u64, None)?;
        let (mx, my) = grid((model.n_vocab as u32).div_ceil(64));
        let params = b.uniform(&[model.n_vocab as u32, mx, 0, 0]);
        let bufs = [&logits, &allowed, &params];
        b.push_grid(&shaders::MASK, &[], &[], &bufs, Groups::Fixed(mx, my), Plan::Mask).await?;
        let params = b.uniform(&[model.n_vocab as u32, 0, 0, 0]);
        let bufs = [&logits, &state, &token, &params];
        b.push_grid(&shaders::ARGMAX, &[], &[], &bufs, Groups::Fixed(1, 1), Plan::Argmax).await?;
        let bufs = [&logits, &work, &pen, &state, &token, &sample_params];
        b.push_grid(&shaders::SAMPLE, &[], &[], &bufs, Groups::Fixed(1, 1), Plan::Sample).await?;
        g.check()?;
        let (steps, weight_bytes) = (b.steps, b.weight_bytes);
        Ok(GpuForward {
            dispatches: steps.iter().filter(|s| s.plan.greedy_decode()).count(),
            weight_bytes,
            gpu,
            steps,
            state,
            logits,
            token,
            sample_params,
            allowed,
            pen,
            pen_cap,
            staging,
            traced,
            words_read: AtomicU64::new(0),
            n_vocab: model.n_vocab,
            n_ctx,
        })
    }

    /// Runs `token` at `pos` (one submit, the token id copied out in the same encoder) and
    /// returns the greedy next token.
    pub async fn step(&self, token: u32, pos: usize) -> Result<u32> {
        self.step_masked(token, pos, None).await
    }

    /// [`GpuForward::step`] picking only among the tokens whose bits `allowed` sets (a grammar's
    /// mask, `[ceil(n_vocab / 32)]` words), when given.
    pub async fn step_masked(&self, token: u32, pos: usize, allowed: Option<&[u32]>) -> Result<u32> {
        self.check(&[token], pos)?;
        let plans: &[Plan] = match allowed {
            Some(bits) => {
                self.set_allowed(bits)?;
                &[Plan::Decode, Plan::Mask, Plan::Argmax]
            }
            None => &[Plan::Decode, Plan::Argmax],
        };
        self.submit(plans, pos, &[token], Some((&self.token, 1)));
        let out = self.read_words(1).await?;
        out.first().copied().ok_or_else(|| Error::Gpu("empty readback".into()))
    }

    /// Runs `token` at `pos` and picks the next one on the GPU as the sampler would with `draw`:
    /// the token id comes back, or the logits when the candidate pool is over [`SAMPLE_POOL`]
    /// (or the penalized tokens outnumber the context), for the host to finish the pick.
    pub async fn step_sampled(&self, token: u32, pos: usize, draw: &DeviceDraw) -> Result<Picked> {
        self.step_sampled_masked(token, pos, draw, None).await
    }

    /// [`GpuForward::step_sampled`] among the tokens `allowed` sets, when given (the logits handed
    /// back for the host's pick are then masked too).
    pub async fn step_sampled_masked(
        &self,
        token: u32,
        pos: usize,
        draw: &DeviceDraw,
        allowed: Option<&[u32]>,
    ) -> Result<Picked> {
        if draw.counts.len() > self.pen_cap {
            return Ok(Picked::Logits(self.step_logits(token, pos).await?));
        }
        self.check(&[token], pos)?;
        if let Some(bits) = allowed {
            self.set_allowed(bits)?;
        }
        let g = &self.gpu;
        g.queue.write_buffer(&self.sample_params, 0, as_bytes(&sample_words(self.n_vocab, draw)));
        if !draw.counts.is_empty() {
            g.queue.write_buffer(&self.pen, 0, as_bytes(&draw.counts));
        }
        let plans: &[Plan] = if allowed.is_some() {
            &[Plan::Decode, Plan::Mask, Plan::Sample]
        } else {
            &[Plan::Decode, Plan::Sample]
        };
        self.submit(plans, pos, &[token], Some((&self.token, 2)));
        let out = self.read_words(2).await?;
        match out[..] {
            [tok, 0] => Ok(Picked::Token(tok)),
            _ => {
                // the logits are still in their buffer
                let mut enc = g.device.create_command_encoder(&Default::default());
                enc.copy_buffer_to_buffer(&self.logits, 0, &self.staging, 0, 4 * self.n_vocab as u64);
                g.queue.submit([enc.finish()]);
                Ok(Picked::Logits(self.read_logits(self.n_vocab).await?))
            }
        }
    }

    fn set_allowed(&self, bits: &[u32]) -> Result<()> {
        if bits.len() != self.n_vocab.div_ceil(32) {
            return Err(Error::arg("allowed", format!("{} words for {} tokens", bits.len(), self.n_vocab)));
        }
        self.gpu.queue.write_buffer(&self.allowed, 0, as_bytes(bits));
        Ok(())
    }

    /// Runs `token` at `pos` and returns the logits.
    pub async fn step_logits(&self, token: u32, pos: usize) -> Result<Vec<f32>> {
        self.check(&[token], pos)?;
        self.submit(&[Plan::Decode], pos, &[token], Some((&self.logits, self.n_vocab)));
        self.read_logits(self.n_vocab).await
    }

    /// A decode step of `token` at `pos` one dispatch at a time, for finding the kernel where two
    /// adapters part: after each dispatch, the first row of every activation buffer (x, xb, q, k,
    /// v, att, hb, hb2, o in that order, [`GpuForward::trace_widths`] words each) is read back.
    /// Returns each dispatch's kernel name and the values, `names.len() · Σ widths` of them.
    pub async fn trace_step(&self, token: u32, pos: usize) -> Result<(Vec<String>, Vec<f32>)> {
        self.check(&[token], pos)?;
        let g = &self.gpu;
        g.queue.write_buffer(&self.state, 0, as_bytes(&[pos as u32, 1, token]));
        let total: usize = self.traced.iter().map(|t| t.2).sum();
        let (mut names, mut values) = (Vec::new(), Vec::new());
        for s in self.steps.iter().filter(|s| matches!(s.plan, Plan::Both | Plan::Decode)) {
            let mut enc = g.device.create_command_encoder(&Default::default());
            s.record(&mut enc.begin_compute_pass(&Default::default()), pos, 1);
            let mut at = 0;
            for (_, buf, words) in &self.traced {
                enc.copy_buffer_to_buffer(buf, 0, &self.staging, 4 * at as u64, 4 * *words as u64);
                at += words;
            }
            g.queue.submit([enc.finish()]);
            values.extend(self.read_words(total).await?.into_iter().map(f32::from_bits));
            names.push(s.name.clone());
        }
        Ok((names, values))
    }

    /// (name, words) of each buffer [`GpuForward::trace_step`] reads.
    pub fn trace_widths(&self) -> Vec<(&'static str, usize)> {
        self.traced.iter().map(|t| (t.0, t.2)).collect()
    }

    /// Evaluates `tokens` (≤ [`BATCH`]) at positions `pos..` as matrix products and returns
    /// every row's logits, `[tokens.len() · n_vocab]` (perplexity).
    pub async fn prefill_logits(&self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        if tokens.is_empty() || tokens.len() > BATCH {
            return Err(Error::arg("tokens", format!("{} rows; 1..={BATCH} per batch", tokens.len())));
        }
        self.check(tokens, pos)?;
        let len = tokens.len() * self.n_vocab;
        self.submit(&[Plan::Prefill, Plan::Logits], pos, tokens, Some((&self.logits, len)));
        self.read_logits(len).await
    }

    async fn read_logits(&self, len: usize) -> Result<Vec<f32>> {
        let w = self.read_words(len).await?;
        Ok(w.into_iter().map(f32::from_bits).collect())
    }

    async fn read_words(&self, len: usize) -> Result<Vec<u32>> {
        self.words_read.fetch_add(len as u64, Ordering::Relaxed);
        self.gpu.map_words(&self.staging, len).await
    }

    /// Words read back from the GPU so far (token ids and logits).
    pub fn words_read(&self) -> u64 {
        self.words_read.load(Ordering::Relaxed)
    }

    /// Evaluates `tokens` at positions `pos..` as matrix products, [`BATCH`] per submission,
    /// reading nothing back: the prompt before its last token (which then runs as a decode step
    /// for its logits or argmax).
    pub fn prefill(&self, tokens: &[u32], pos: usize) -> Result<()> {
        self.check(tokens, pos)?;
        for (i, chunk) in tokens.chunks(BATCH).enumerate() {
            self.submit(&[Plan::Prefill], pos + i * BATCH, chunk, None);
        }
        Ok(())
    }

    /// The device is still there, and `tokens` fit the context after `pos` and the vocabulary.
    fn check(&self, tokens: &[u32], pos: usize) -> Result<()> {
        self.gpu.alive()?;
        if pos + tokens.len() > self.n_ctx {
            return Err(Error::ContextFull { used: pos + tokens.len(), ctx: self.n_ctx });
        }
        match tokens.iter().find(|&&t| t as usize >= self.n_vocab) {
            Some(&bad) => {
                Err(Error::arg("token", format!("{bad} is outside the vocabulary of {}", self.n_vocab)))
            }
            None => Ok(()),
        }
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// "adapter (backend, type)".
    pub fn adapter(&self) -> String {
        self.gpu.describe()
    }

    /// The device this forward pass runs on.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// Wall time of each kernel of a step over `tokens` at `pos` (one token: a greedy decode
    /// step; more, up to [`BATCH`]: a prefill submission), each dispatch submitted and waited for
    /// on its own: (kernel and variant, dispatches, seconds), slowest first. Natively only;
    /// meaningful where the GPU does nothing else (and on CPU adapters, where it is exact).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn profile(&self, tokens: &[u32], pos: usize) -> Result<Vec<(String, usize, f64)>> {
        self.check(tokens, pos)?;
        let g = &self.gpu;
        let n = tokens.len();
        let mut state = vec![pos as u32, n as u32];
        state.extend_from_slice(tokens);
        g.queue.write_buffer(&self.state, 0, as_bytes(&state));
        g.wait_idle()?;
        let mut by_name: Vec<(String, usize, f64)> = Vec::new();
        let wanted =
            |p: Plan| if n == 1 { p.greedy_decode() } else { matches!(p, Plan::Both | Plan::Prefill) };
        for s in self.steps.iter().filter(|s| wanted(s.plan)) {
            let t0 = std::time::Instant::now();
            let mut enc = g.device.create_command_encoder(&Default::default());
            s.record(&mut enc.begin_compute_pass(&Default::default()), pos, n);
            g.queue.submit([enc.finish()]);
            g.wait_idle()?;
            let dt = t0.elapsed().as_secs_f64();
            match by_name.iter_mut().find(|(n, _, _)| *n == s.name) {
                Some(e) => {
                    e.1 += 1;
                    e.2 += dt;
                }
                None => by_name.push((s.name.clone(), 1, dt)),
            }
        }
        g.check()?;
        by_name.sort_by(|a, b| b.2.total_cmp(&a.2));
        Ok(by_name)
    }

    /// Records the steps of `plans` (and the shared ones) for `tokens` (≤ BATCH) at `pos..` into
    /// one encoder, with the copy of `read` (buffer, words) into the staging buffer, and submits.
    fn submit(&self, plans: &[Plan], pos: usize, tokens: &[u32], read: Option<(&wgpu::Buffer, usize)>) {
        let g = &self.gpu;
        let mut state = vec![pos as u32, tokens.len() as u32];
        state.extend_from_slice(tokens);
        g.queue.write_buffer(&self.state, 0, as_bytes(&state));
        let mut enc = g.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for s in self.steps.iter().filter(|s| s.plan == Plan::Both || plans.contains(&s.plan)) {
                s.record(&mut pass, pos, tokens.len());
            }
        }
        if let Some((buf, words)) = read {
            enc.copy_buffer_to_buffer(buf, 0, &self.staging, 0, 4 * words as u64);
        }
        g.queue.submit([enc.finish()]);
    }
}

/// What [`GpuForward::step_sampled`] brought back.
#[derive(Debug)]
pub enum Picked {
    Token(u32),
    /// The pool was too large for the GPU: the logits, for the host to finish the pick.
    Logits(Vec<f32>),
}

/// The `sample` kernel's parameters (its `Params`): [n, top_k, n_pen, 0, temperature, top_p,
/// min_p, r, repetition, frequency, presence penalties, 0].
pub fn sample_words(n_vocab: usize, d: &DeviceDraw) -> [u32; 12] {
    [
        n_vocab as u32,
        d.top_k,
        d.counts.len() as u32,
        0,
        d.temperature.to_bits(),
        d.top_p.to_bits(),
        d.min_p.to_bits(),
        (d.r as f32).to_bits(),
        d.repetition_penalty.to_bits(),
        d.frequency_penalty.to_bits(),
        d.presence_penalty.to_bits(),
        0,
    ]
}
