//! Model definitions: which tensors an architecture has, their names and shapes, and its forward
//! pass as an op sequence over the [`ops::Ops`] seam. Each architecture is one file here
//! (`llama.rs`, `gpt2.rs`, ...) holding its tensor list, its Hugging Face names and its forward
//! pass; this file holds what they share. No bytes are interpreted here (weights stay in their
//! file encoding inside [`Matrix`]) and nothing here knows a compute backend. Nothing outside
//! this directory asks which architecture a model is.

pub mod config;
mod gemma3;
mod gpt2;
mod llama;
pub mod ops;
mod phi3;
mod qwen3;

pub use config::{Arch, Config, RopeStyle};

use crate::error::{Error, Result};
use crate::quant::GgmlType;
use crate::weights::{Naming, Tensor, WeightSource};

/// A 2-D weight `[rows, cols]` (ggml dims `[cols, rows]`), rows contiguous, in its file type.
#[derive(Clone, Debug)]
pub struct Matrix {
    pub name: String,
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<u8>,
}

impl Matrix {
    pub fn row_bytes(&self) -> usize {
        self.cols / self.ty.block_size() * self.ty.type_size()
    }
    pub fn row(&self, r: usize) -> &[u8] {
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }
}

/// `y = W·x + b`.
#[derive(Clone, Debug)]
pub struct Linear {
    pub w: Matrix,
    pub b: Option<Vec<f32>>,
}

/// RMSNorm (no bias) or LayerNorm (with bias).
#[derive(Clone, Debug)]
pub struct Norm {
    pub w: Vec<f32>,
    pub b: Option<Vec<f32>>,
}

#[derive(Clone, Debug)]
pub enum Attention {
    /// Separate projections; Q has `n_head · head_dim` rows, K and V `n_head_kv · head_dim`.
    Separate { q: Linear, k: Linear, v: Linear },
    /// One projection whose rows are Q's, then K's, then V's (GPT-2, Phi-3).
    Fused(Linear),
}

/// The feed-forward's first half (its second is `Layer::ffn_down`).
#[derive(Clone, Debug)]
pub enum FeedForward {
    /// `act(gate·x) ⊙ (up·x)`
    Gated { gate: Linear, up: Linear },
    /// The same with gate and up in one `[2·n_ff, n_embd]` matrix, the gate's rows first (Phi-3).
    GatedStacked(Linear),
    /// `act(up·x)`
    Plain { up: Linear },
}

/// One transformer block's weights; an architecture uses the ones it has (as llama.cpp's layers).
#[derive(Clone, Debug)]
pub struct Layer {
    pub attn_norm: Norm,
    pub attn: Attention,
    /// Per-head RMSNorm of the queries and keys (Qwen3), `[head_dim]`.
    pub attn_q_norm: Option<Norm>,
    pub attn_k_norm: Option<Norm>,
    pub attn_out: Linear,
    /// RMSNorm of attention's output before the residual add (Gemma).
    pub post_attn_norm: Option<Norm>,
    pub ffn_norm: Norm,
    pub ffn: FeedForward,
    pub ffn_down: Linear,
    /// RMSNorm of the feed-forward's output before the residual add (Gemma).
    pub post_ffn_norm: Option<Norm>,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub cfg: Config,
    pub n_vocab: usize,
    /// `[n_vocab, n_embd]`
    pub tok_embd: Matrix,
    /// Learned positions (GPT-2): `[n_ctx_train, n_embd]`
    pub pos_embd: Option<Matrix>,
    pub layers: Vec<Layer>,
    pub output_norm: Norm,
    /// `[n_vocab, n_embd]`; `None` when tied to `tok_embd`.
    pub output: Option<Matrix>,
    /// RoPE's per-pair frequency divisors `[rope_dims / 2]` (Llama 3.x's `rope_freqs`, Phi-3.5's
    /// short LongRoPE factors).
    pub rope_factors: Option<Vec<f32>>,
    /// The longest context this model runs exactly, and why, when it is shorter than the
    /// trained one's positions allow (learned positions, LongRoPE's long factors, a sliding
    /// window this architecture does not implement).
    pub ctx_limit: Option<(usize, String)>,
}

/// How an architecture's tensors are named in Hugging Face checkpoints.
pub(crate) struct HfNames {
    /// Prefix of block `N`'s tensors, before `N`.
    layer_prefix: &'static str,
    /// (GGUF base name, Hugging Face name, stored transposed as GPT-2's Conv1D `[in, out]`).
    names: &'static [(&'static str, &'static str, bool)],
}

/// Name of a GGUF tensor in a Hugging Face checkpoint, and whether HF stores it transposed.
fn hf_name(hf: &HfNames, gguf: &str) -> (String, bool) {
    let (layer, rest) = match gguf.strip_prefix("blk.").and_then(|s| s.split_once('.')) {
        Some((n, rest)) => (Some(n), rest),
        None => (None, gguf),
    };
    let (base, suffix) = rest.rsplit_once('.').unwrap_or((rest, "weight"));
    let (name, transpose) =
        hf.names.iter().find(|(g, _, _)| *g == base).map_or((base, false), |&(_, h, t)| (h, t));
    let transpose = transpose && suffix == "weight";
    let name = match layer {
        Some(n) => format!("{}{n}.{name}.{suffix}", hf.layer_prefix),
        None => format!("{name}.{suffix}"),
    };
    (name, transpose)
}

/// Takes an architecture's tensors from a source by their GGUF names, checking shapes.
pub(crate) struct Loader<'a> {
    src: &'a mut dyn WeightSource,
    hf: &'static HfNames,
}

impl Loader<'_> {
    fn resolve(&self, gguf: &str) -> (String, bool) {
        match self.src.naming() {
            Naming::Gguf => (gguf.to_string(), false),
            Naming::HuggingFace => {
                let (name, t) = hf_name(self.hf, gguf);
                // GPT2LMHeadModel checkpoints prefix everything with "transformer."
                if !self.src.has(&name) && self.src.has(&format!("transformer.{name}")) {
                    (format!("transformer.{name}"), t)
                } else {
                    (name, t)
                }
            }
        }
    }

    pub(crate) fn has(&self, gguf: &str) -> bool {
        let (n, _) = self.resolve(gguf);
        self.src.has(&n)
    }

    /// Takes a tensor and checks its ggml-order `dims`.
    pub(crate) fn tensor(&mut self, gguf: &str, dims: &[usize]) -> Result<Tensor> {
        let (name, transpose) = self.resolve(gguf);
        let mut t = self.src.take(&name)?;
        if transpose {
            t = t.transposed()?;
        }
        // trailing 1-dims are equivalent (a vector stored as [n, 1])
        let mut got = t.dims.clone();
        while got.len() > dims.len() && got.last() == Some(&1) {
            got.pop();
        }
        if got != dims {
            return Err(Error::BadShape {
                name,
                got: t.dims.iter().map(|&d| d as u64).collect(),
                expected: dims.iter().map(|&d| d as u64).collect(),
            });
        }
        t.name = gguf.to_string();
        Ok(t)
    }

    pub(crate) fn vector(&mut self, gguf: &str, n: usize) -> Result<Vec<f32>> {
        Ok(self.tensor(gguf, &[n])?.to_f32())
    }

    pub(crate) fn matrix(&mut self, gguf: &str, rows: usize, cols: usize) -> Result<Matrix> {
        let t = self.tensor(gguf, &[cols, rows])?;
        if !cols.is_multiple_of(t.ty.block_size()) {
            return Err(Error::malformed(format!("tensor '{gguf}'"), "row is not whole blocks"));
        }
        Ok(Matrix { name: t.name, ty: t.ty, rows, cols, data: t.data })
    }

    pub(crate) fn linear(&mut self, prefix: &str, rows: usize, cols: usize, bias: bool) -> Result<Linear> {
        let w = self.matrix(&format!("{prefix}.weight"), rows, cols)?;
        let b = if bias { Some(self.vector(&format!("{prefix}.bias"), rows)?) } else { None };
        Ok(Linear { w, b })
    }

    /// Block `i`'s separate Q, K and V projections (`attn_q`, `attn_k`, `attn_v`), with biases
    /// when `bias`.
    pub(crate) fn attention_qkv(&mut self, i: usize, cfg: &Config, bias: bool) -> Result<Attention> {
        let (d, q_dim, kv_dim) = (cfg.n_embd, cfg.q_dim(), cfg.kv_dim());
        Ok(Attention::Separate {
            q: self.linear(&format!("blk.{i}.attn_q"), q_dim, d, bias)?,
            k: self.linear(&format!("blk.{i}.attn_k"), kv_dim, d, bias)?,
            v: self.linear(&format!("blk.{i}.attn_v"), kv_dim, d, bias)?,
        })
    }

    /// Block `i`'s separate gate and up projections (`ffn_gate`, `ffn_up`).
    pub(crate) fn gated_ffn(&mut self, i: usize, cfg: &Config) -> Result<FeedForward> {
        let (d, ff) = (cfg.n_embd, cfg.n_ff);
        Ok(FeedForward::Gated {
            gate: self.linear(&format!("blk.{i}.ffn_gate"), ff, d, false)?,
            up: self.linear(&format!("blk.{i}.ffn_up"), ff, d, false)?,
        })
    }

    pub(crate) fn norm(&mut self, prefix: &str, n: usize, bias: bool) -> Result<Norm> {
        let w = self.vector(&format!("{prefix}.weight"), n)?;
        let b = if bias { Some(self.vector(&format!("{prefix}.bias"), n)?) } else { None };
        Ok(Norm { w, b })
    }
}

impl Model {
    /// Builds the model named by the source's metadata.
    pub fn load(src: &mut dyn WeightSource) -> Result<Model> {
        let naming = src.naming();
        let mut cfg = Config::from_metadata(src.metadata())?;
        let tied_hint = src.metadata().get("wisp.tie_word_embeddings").and_then(|v| v.as_bool());
        let hf = match cfg.arch {
            Arch::Llama | Arch::Qwen2 => &llama::HF_NAMES,
            Arch::Qwen3 => &qwen3::HF_NAMES,
            Arch::Phi3 => &phi3::HF_NAMES,
            Arch::Gemma3 => &gemma3::HF_NAMES,
            Arch::Gpt2 => &gpt2::HF_NAMES,
        };
        let mut l = Loader { src, hf };
        let n_embd = cfg.n_embd;

        // the vocabulary size comes from the embedding itself
        let (emb_name, _) = l.resolve("token_embd.weight");
        let emb_dims = l.src.dims(&emb_name).ok_or(Error::MissingTensor { name: emb_name })?;
        let n_vocab = emb_dims.iter().product::<usize>() / n_embd;
        if n_vocab == 0 {
            return Err(Error::malformed("token_embd.weight", "empty vocabulary"));
        }
        let tok_embd = l.matrix("token_embd.weight", n_vocab, n_embd)?;
        let parts = match cfg.arch {
            Arch::Llama | Arch::Qwen2 => llama::load(&mut l, &mut cfg, naming)?,
            Arch::Qwen3 => qwen3::load(&mut l, &mut cfg)?,
            Arch::Phi3 => phi3::load(&mut l, &mut cfg)?,
            Arch::Gemma3 => gemma3::load(&mut l, &mut cfg)?,
            Arch::Gpt2 => gpt2::load(&mut l, &cfg)?,
        };
        let output = if l.has("output.weight") && tied_hint != Some(true) {
            Some(l.matrix("output.weight", n_vocab, n_embd)?)
        } else {
            None
        };
        // a GGUF tensor this definition did not take would be silently ignored (llama.cpp
        // refuses such files too: "wrong number of tensors"); Hugging Face checkpoints carry
        // buffers that are not weights (GPT-2's attention masks, rotary `inv_freq`), so only GGUF
        if naming == Naming::Gguf {
            if let Some(name) = l.src.remaining().into_iter().next() {
                return Err(Error::UnsupportedTensor { name, arch: cfg.arch.name().into() });
            }
        }
        let Parts { pos_embd, layers, output_norm, rope_factors, mut ctx_limit } = parts;
        if let Some(pe) = &pos_embd {
            ctx_limit = Some((pe.rows, "its learned position table ends there".into()));
        }
        Ok(Model { cfg, n_vocab, tok_embd, pos_embd, layers, output_norm, output, rope_factors, ctx_limit })
    }

    /// RoPE as the file states it (the architecture chooses the pairing at load).
    pub fn rope(&self) -> ops::Rope<'_> {
        let c = &self.cfg;
        ops::Rope {
            dims: c.rope_dims,
            base: c.rope_base,
            style: c.rope_style,
            factors: self.rope_factors.as_deref(),
            freq_scale: c.rope_freq_scale,
            attn_factor: c.rope_attn_factor,
        }
    }

    /// States the forward pass, this architecture's op sequence, to a backend.
    pub fn forward<'m>(&'m self, ops: &mut dyn ops::Ops<'m>) -> Result<()> {
        match self.cfg.arch {
            // Qwen2 and Phi-3 are Llama's op sequence: Qwen2's biases and NEOX pairing are in its
            // weights and configuration, Phi-3's fused Q/K/V and gate/up are the ops' fused forms
            Arch::Llama | Arch::Qwen2 | Arch::Phi3 => llama::forward(self, ops),
            Arch::Qwen3 => qwen3::forward(self, ops),
            Arch::Gemma3 => gemma3::forward(self, ops),
            Arch::Gpt2 => gpt2::forward(self, ops),
        }
    }

    /// The matrix producing logits.
    pub fn head(&self) -> &Matrix {
        self.output.as_ref().unwrap_or(&self.tok_embd)
    }

    /// Every matrix of the model, each once (a tied head is the embedding).
    pub fn matrices(&self) -> Vec<&Matrix> {
        self.linears().into_iter().map(|l| &l.w).chain(self.tables()).collect()
    }

    /// The embedding tables and the head.
    fn tables(&self) -> impl Iterator<Item = &Matrix> {
        std::iter::once(&self.tok_embd).chain(self.pos_embd.iter()).chain(self.output.iter())
    }

    /// Every linear layer of the blocks.
    fn linears(&self) -> Vec<&Linear> {
        let mut out = Vec::new();
        for layer in &self.layers {
            match &layer.attn {
                Attention::Separate { q, k, v } => out.extend([q, k, v]),
                Attention::Fused(qkv) => out.push(qkv),
            }
            out.push(&layer.attn_out);
            match &layer.ffn {
                FeedForward::Gated { gate, up } => out.extend([gate, up]),
                FeedForward::GatedStacked(gate_up) => out.push(gate_up),
                FeedForward::Plain { up } => out.push(up),
            }
            out.push(&layer.ffn_down);
        }
        out
    }

    /// Every norm of the model.
    fn norms(&self) -> Vec<&Norm> {
        let mut out = vec![&self.output_norm];
        for layer in &self.layers {
            out.extend([&layer.attn_norm, &layer.ffn_norm]);
            out.extend(layer.attn_q_norm.iter().chain(layer.attn_k_norm.iter()));
            out.extend(layer.post_attn_norm.iter().chain(layer.post_ffn_norm.iter()));
        }
        out
    }

    /// Bytes of all weights as held in memory.
    pub fn weight_bytes(&self) -> usize {
        let vec = |v: &Option<Vec<f32>>| v.as_ref().map_or(0, |b| b.len() * 4);
        let mut n: usize = self.tables().map(|m| m.data.len()).sum();
        n += self.linears().iter().map(|l| l.w.data.len() + vec(&l.b)).sum::<usize>();
        n += self.norms().iter().map(|nm| nm.w.len() * 4 + vec(&nm.b)).sum::<usize>();
        n + vec(&self.rope_factors)
    }

    /// Number of parameters, counted from the tensors themselves (a tied head counts once).
    pub fn parameters(&self) -> u64 {
        let vec = |v: &Option<Vec<f32>>| v.as_ref().map_or(0, |b| b.len());
        let mut n: usize = self.tables().map(|m| m.rows * m.cols).sum();
        n += self.linears().iter().map(|l| l.w.rows * l.w.cols + vec(&l.b)).sum::<usize>();
        n += self.norms().iter().map(|nm| nm.w.len() + vec(&nm.b)).sum::<usize>();
        n as u64
    }

    /// Whether every matrix has its bytes on the host (not when the loader streamed them to the
    /// GPU), which the CPU path needs.
    pub fn weights_on_host(&self) -> bool {
        self.matrices().iter().all(|m| m.data.len() == m.rows * m.row_bytes())
    }

    /// The predominant weight type (that of the layers' projections).
    pub fn weight_type(&self) -> GgmlType {
        self.layers.first().map_or(self.tok_embd.ty, |l| l.attn_out.w.ty)
    }

    /// The predominant weight type's name, for `info`.
    pub fn quantization(&self) -> &'static str {
        self.weight_type().name()
    }

    /// Positions the model can take exactly (see [`Model::ctx_limit`]).
    pub fn max_positions(&self) -> usize {
        self.ctx_limit.as_ref().map_or(usize::MAX, |l| l.0)
    }
}

/// For an architecture without sliding-window attention: a window the file states holds the
/// context to it (within the window, attending to everything is the same computation).
fn window_limit(cfg: &Config) -> Option<(usize, String)> {
    let w = cfg.sliding_window.filter(|&w| w < cfg.n_ctx_train)?;
    let why = format!(
        "{}.attention.sliding_window is {w}, and sliding-window attention is not implemented for '{}'",
        cfg.arch.name(),
        cfg.arch.name()
    );
    Some((w, why))
}

/// What an architecture's loader returns beside the embedding and the head.
pub(crate) struct Parts {
    pub pos_embd: Option<Matrix>,
    pub layers: Vec<Layer>,
    pub output_norm: Norm,
    pub rope_factors: Option<Vec<f32>>,
    pub ctx_limit: Option<(usize, String)>,
}
