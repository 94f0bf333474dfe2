//! The Llama forward pass on the GPU for one token at a time: every buffer, uniform, pipeline and
//! bind group is built once at load, so a step writes 8 bytes (position, token), records the
//! prebuilt dispatch list into one encoder and submits once. The result comes back as the argmax
//! token (4 bytes) or, when asked, the logits.
//!
//! Architectures: Llama (RMSNorm, RoPE, GQA, SwiGLU) and GPT-2 (LayerNorm, learned positions,
//! fused QKV split at upload, biases, GELU).
//!
//! Not yet here (see shaders/README.md): batched prefill as matrix products (the prompt runs
//! step by step), attention split over KV chunks for long contexts.

use super::{as_bytes, grid, shaders, Gpu, GpuMatrix};
use crate::error::{Error, Result};
use crate::model::{Arch, Attention, FeedForward, Linear, Matrix, Model, Norm, RopeStyle};
use std::sync::Arc;

struct Step {
    pipeline: Arc<wgpu::ComputePipeline>,
    bind: wgpu::BindGroup,
    groups: Groups,
}

/// A step's dispatch grid: fixed at load, or sized per token from the position (attention
/// covers only the positions written so far; the encoder is recorded afresh every token).
#[derive(Clone, Copy)]
enum Groups {
    Fixed(u32, u32),
    /// ((pos + 1) / 64 rounded up, y).
    Positions(u32),
}

impl Groups {
    fn at(self, pos: usize) -> (u32, u32) {
        match self {
            Groups::Fixed(x, y) => (x, y),
            Groups::Positions(y) => ((pos as u32 + 1).div_ceil(64), y),
        }
    }
}

pub struct GpuForward {
    gpu: Arc<Gpu>,
    steps: Vec<Step>,
    /// [pos, token]
    state: wgpu::Buffer,
    logits: wgpu::Buffer,
    token: wgpu::Buffer,
    n_vocab: usize,
    n_ctx: usize,
    /// Dispatches per step and weight bytes read per step, for `wisp bench`.
    pub dispatches: usize,
    pub weight_bytes: u64,
}

const MATVEC_WG: u32 = 64;
const MATVEC_TPR: u32 = 16;

struct Builder<'a> {
    gpu: &'a Gpu,
    steps: Vec<Step>,
    weight_bytes: u64,
}

impl Builder<'_> {
    async fn push(
        &mut self,
        shader: &shaders::Shader,
        defines: &[&str],
        constants: &[(&str, f64)],
        buffers: &[&wgpu::Buffer],
        groups: u32,
    ) -> Result<()> {
        let (x, y) = grid(groups);
        self.push_grid(shader, defines, constants, buffers, Groups::Fixed(x, y)).await
    }

    async fn push_grid(
        &mut self,
        shader: &shaders::Shader,
        defines: &[&str],
        constants: &[(&str, f64)],
        buffers: &[&wgpu::Buffer],
        groups: Groups,
    ) -> Result<()> {
        let pipeline = self.gpu.pipeline(shader, defines, constants).await?;
        let bind = self.gpu.bind(&pipeline, buffers);
        self.steps.push(Step { pipeline, bind, groups });
        Ok(())
    }

    fn uniform(&self, words: &[u32]) -> wgpu::Buffer {
        self.gpu.uniform("params", words)
    }

    async fn matvec(&mut self, m: &GpuMatrix, x: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<()> {
        self.linear(&(m, None), x, y).await
    }

    /// `y = W·x (+ b)`.
    async fn linear(
        &mut self,
        l: &(&GpuMatrix, Option<wgpu::Buffer>),
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<()> {
        let m = l.0;
        let groups = (m.rows as u32).div_ceil(MATVEC_WG / MATVEC_TPR);
        let params = self.uniform(&[m.rows as u32, m.cols as u32, m.row_words as u32, grid(groups).0]);
        self.weight_bytes += m.buf.size();
        let c = [("WG", MATVEC_WG as f64), ("TPR", MATVEC_TPR as f64)];
        let ty = shaders::type_define(m.ty);
        match &l.1 {
            None => self.push(&shaders::MATVEC, &[ty], &c, &[&m.buf, x, y, &params], groups).await,
            Some(b) => {
                self.push(&shaders::MATVEC, &[ty, "BIAS"], &c, &[&m.buf, x, y, &params, b], groups).await
            }
        }
    }

    /// RMSNorm (Llama) or LayerNorm (GPT-2) of one row of `n`.
    async fn norm(
        &mut self,
        arch: Arch,
        x: &wgpu::Buffer,
        n: &Norm,
        out: &wgpu::Buffer,
        eps: f32,
    ) -> Result<()> {
        let w = self.gpu.storage_f32("norm weight", &n.w)?;
        let params = self.uniform(&[n.w.len() as u32, 1, 1, eps.to_bits()]);
        match arch {
            Arch::Llama => self.push(&shaders::RMS_NORM, &[], &[], &[x, &w, out, &params], 1).await,
            Arch::Gpt2 => {
                let zeros = vec![0.0; n.w.len()];
                let b = self.gpu.storage_f32("norm bias", n.b.as_deref().unwrap_or(&zeros))?;
                self.push(&shaders::LAYER_NORM, &[], &[], &[x, &w, &b, out, &params], 1).await
            }
        }
    }

    async fn gelu(&mut self, a: &wgpu::Buffer, n: usize) -> Result<()> {
        let groups = (n as u32).div_ceil(64);
        let params = self.uniform(&[n as u32, grid(groups).0, 0, 0]);
        let pipeline = self.gpu.pipeline(&shaders::ELEMENTWISE, &["GELU"], &[]).await?;
        let bind = self.gpu.bind_at(&pipeline, &[(0, a), (2, &params)]);
        let (x, y) = grid(groups);
        self.steps.push(Step { pipeline, bind, groups: Groups::Fixed(x, y) });
        Ok(())
    }

    async fn elementwise(&mut self, op: &str, a: &wgpu::Buffer, b: &wgpu::Buffer, n: usize) -> Result<()> {
        let groups = (n as u32).div_ceil(64);
        let params = self.uniform(&[n as u32, grid(groups).0, 0, 0]);
        self.push(&shaders::ELEMENTWISE, &[op], &[], &[a, b, &params], groups).await
    }
}

/// A linear layer on the GPU: its matrix and optional bias.
fn upload(gpu: &Gpu, l: &Linear) -> Result<(GpuMatrix, Option<wgpu::Buffer>)> {
    let m = GpuMatrix::upload(gpu, &l.w.name, l.w.ty, l.w.rows, l.w.cols, &l.w.data)?;
    let b = l.b.as_ref().map(|b| gpu.storage_f32(&format!("{} bias", l.w.name), b)).transpose()?;
    Ok((m, b))
}

/// Rows `part·n .. (part+1)·n` of a fused projection (GPT-2's q, k, v), with their bias.
fn rows_of(l: &Linear, part: usize, n: usize) -> Linear {
    let rb = l.w.row_bytes();
    let w = Matrix {
        name: format!("{}[{part}]", l.w.name),
        ty: l.w.ty,
        rows: n,
        cols: l.w.cols,
        data: l.w.data[part * n * rb..(part + 1) * n * rb].to_vec(),
    };
    Linear { w, b: l.b.as_ref().map(|b| b[part * n..(part + 1) * n].to_vec()) }
}

impl GpuForward {
    pub async fn new(gpu: Arc<Gpu>, model: &Model, n_ctx: usize) -> Result<GpuForward> {
        let cfg = &model.cfg;
        if !cfg.head_dim.is_multiple_of(2) || !cfg.rope_dims.is_multiple_of(2) {
            return Err(Error::Gpu(format!("head dimension {} must be even", cfg.head_dim)));
        }
        let g = &*gpu;
        let (d, kv_dim, hd, ff) = (cfg.n_embd, cfg.kv_dim(), cfg.head_dim, cfg.n_ff);
        let f32buf = |name: &str, n: usize| g.storage(name, 4 * n as u64, None);
        // activations: x [d] residual, xb [d] normed, q [d], k/v [kv_dim], att [d], o [d],
        // hb/hb2 [ff], scores [n_head · n_ctx], logits [n_vocab]
        let (x, xb, q, k, v) =
            (f32buf("x", d)?, f32buf("xb", d)?, f32buf("q", d)?, f32buf("k", kv_dim)?, f32buf("v", kv_dim)?);
        let (att, o, hb, hb2) = (f32buf("att", d)?, f32buf("o", d)?, f32buf("hb", ff)?, f32buf("hb2", ff)?);
        let scores = f32buf("scores", cfg.n_head * n_ctx)?;
        let logits = f32buf("logits", model.n_vocab)?;
        let state = g.storage("state", 8, None)?;
        let token = g.storage("token", 4, None)?;

        let mut b = Builder { gpu: g, steps: Vec::new(), weight_bytes: 0 };
        let e = &model.tok_embd;
        let embd = GpuMatrix::upload(g, &e.name, e.ty, e.rows, e.cols, &e.data)?;
        let params = b.uniform(&[d as u32, embd.row_words as u32, model.n_vocab as u32, 0]);
        b.push(
            &shaders::EMBED,
            &[shaders::type_define(e.ty)],
            &[],
            &[&embd.buf, &state, &x, &params],
            (d as u32).div_ceil(64),
        )
        .await?;
        b.weight_bytes += (embd.row_words * 4) as u64;
        if let Some(pe) = &model.pos_embd {
            let pm = GpuMatrix::upload(g, &pe.name, pe.ty, pe.rows, pe.cols, &pe.data)?;
            let params = b.uniform(&[d as u32, pm.row_words as u32, pm.rows as u32, 0]);
            let defs = [shaders::type_define(pe.ty), "POSITION"];
            b.push(&shaders::EMBED, &defs, &[], &[&pm.buf, &state, &o, &params], (d as u32).div_ceil(64))
                .await?;
            b.elementwise("ADD", &x, &o, d).await?;
            b.weight_bytes += (pm.row_words * 4) as u64;
        }

        let theta_scale = cfg.rope_base.powf(-2.0 / cfg.rope_dims as f32);
        let rope_params = b.uniform(&[
            cfg.n_head as u32,
            cfg.n_head_kv as u32,
            hd as u32,
            cfg.rope_dims as u32,
            theta_scale.to_bits(),
            0,
            0,
            0,
        ]);
        let rope_def: &[&str] = if cfg.rope_style == RopeStyle::Neox { &["NEOX"] } else { &[] };
        let group = (cfg.n_head / cfg.n_head_kv) as u32;
        let attn_params = b.uniform(&[
            cfg.n_head as u32,
            group,
            hd as u32,
            kv_dim as u32,
            n_ctx as u32,
            0,
            (1.0 / (hd as f32).sqrt()).to_bits(),
            0,
        ]);
        let kv_params = b.uniform(&[kv_dim as u32, n_ctx as u32, 0, 0]);

        for (li, layer) in model.layers.iter().enumerate() {
            b.norm(cfg.arch, &x, &layer.attn_norm, &xb, cfg.norm_eps).await?;
            let (lq, lk, lv) = match &layer.attn {
                Attention::Separate { q, k, v } => (q.clone(), k.clone(), v.clone()),
                Attention::Fused(qkv) => {
                    (rows_of(qkv, 0, d), rows_of(qkv, 1, kv_dim), rows_of(qkv, 2, kv_dim))
                }
            };
            for (w, out) in [(&lq, &q), (&lk, &k), (&lv, &v)] {
                let (m, bias) = upload(g, w)?;
                b.linear(&(&m, bias), &xb, out).await?;
            }
            if cfg.arch == Arch::Llama {
                let pairs = ((cfg.n_head + cfg.n_head_kv) * cfg.rope_dims / 2) as u32;
                b.push(&shaders::ROPE, rope_def, &[], &[&q, &k, &state, &rope_params], pairs.div_ceil(64))
                    .await?;
            }
            let cache_bytes = (n_ctx * kv_dim * 2) as u64;
            let kc = g.storage(&format!("k cache {li}"), cache_bytes, None)?;
            let vc = g.storage(&format!("v cache {li}"), cache_bytes, None)?;
            b.push(
                &shaders::KV_APPEND,
                &[],
                &[],
                &[&k, &v, &kc, &vc, &state, &kv_params],
                (kv_dim as u32 / 2).div_ceil(64),
            )
            .await?;
            let bufs = [&q, &kc, &scores, &state, &attn_params];
            b.push_grid(&shaders::ATTN_SCORES, &[], &[], &bufs, Groups::Positions(cfg.n_head as u32)).await?;
            b.push(
                &shaders::ATTN_OUTPUT,
                &[],
                &[],
                &[&scores, &vc, &att, &state, &attn_params],
                cfg.n_head as u32,
            )
            .await?;
            let (wo, bo) = upload(g, &layer.attn_out)?;
            b.linear(&(&wo, bo), &att, &o).await?;
            b.elementwise("ADD", &x, &o, d).await?;

            b.norm(cfg.arch, &x, &layer.ffn_norm, &xb, cfg.norm_eps).await?;
            match &layer.ffn {
                FeedForward::SwiGlu { gate, up, down } => {
                    let (gate, up, down) = (upload(g, gate)?, upload(g, up)?, upload(g, down)?);
                    b.linear(&(&gate.0, gate.1), &xb, &hb).await?;
                    b.linear(&(&up.0, up.1), &xb, &hb2).await?;
                    b.elementwise("SILU_MUL", &hb, &hb2, ff).await?;
                    b.linear(&(&down.0, down.1), &hb, &o).await?;
                }
                FeedForward::Gelu { up, down } => {
                    let (up, down) = (upload(g, up)?, upload(g, down)?);
                    b.linear(&(&up.0, up.1), &xb, &hb).await?;
                    b.gelu(&hb, ff).await?;
                    b.linear(&(&down.0, down.1), &hb, &o).await?;
                }
            }
            b.elementwise("ADD", &x, &o, d).await?;
        }
        b.norm(cfg.arch, &x, &model.output_norm, &xb, cfg.norm_eps).await?;
        let head = match &model.output {
            Some(m) => GpuMatrix::upload(g, &m.name, m.ty, m.rows, m.cols, &m.data)?,
            None => embd,
        };
        b.matvec(&head, &xb, &logits).await?;
        let params = b.uniform(&[model.n_vocab as u32, 0, 0, 0]);
        b.push(&shaders::ARGMAX, &[], &[], &[&logits, &state, &token, &params], 1).await?;
        g.check()?;
        let (steps, weight_bytes) = (b.steps, b.weight_bytes);
        Ok(GpuForward {
            dispatches: steps.len(),
            weight_bytes,
            gpu,
            steps,
            state,
            logits,
            token,
            n_vocab: model.n_vocab,
            n_ctx,
        })
    }

    /// Runs `token` at `pos` (one submit) and returns the greedy next token.
    pub async fn step(&self, token: u32, pos: usize) -> Result<u32> {
        self.run(token, pos)?;
        let out = self.gpu.read_u32(&self.token, 1).await?;
        out.first().copied().ok_or_else(|| Error::Gpu("empty readback".into()))
    }

    /// Runs `token` at `pos` and returns the logits.
    pub async fn step_logits(&self, token: u32, pos: usize) -> Result<Vec<f32>> {
        self.run(token, pos)?;
        self.gpu.read_f32(&self.logits, self.n_vocab).await
    }

    /// Runs `token` at `pos` without reading anything back (prompt tokens before the last).
    pub fn feed(&self, token: u32, pos: usize) -> Result<()> {
        self.run(token, pos)
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// "adapter (backend, type)".
    pub fn adapter(&self) -> String {
        self.gpu.describe()
    }

    fn run(&self, token: u32, pos: usize) -> Result<()> {
        if pos >= self.n_ctx {
            return Err(Error::ContextFull { used: pos + 1, ctx: self.n_ctx });
        }
        if token as usize >= self.n_vocab {
            return Err(Error::arg(
                "token",
                format!("{token} is outside the vocabulary of {}", self.n_vocab),
            ));
        }
        let g = &self.gpu;
        g.queue.write_buffer(&self.state, 0, as_bytes(&[pos as u32, token]));
        let mut enc = g.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for s in &self.steps {
                pass.set_pipeline(&s.pipeline);
                pass.set_bind_group(0, &s.bind, &[]);
                let (x, y) = s.groups.at(pos);
                pass.dispatch_workgroups(x, y, 1);
            }
        }
        g.queue.submit([enc.finish()]);
        Ok(())
    }
}
