//! Model definitions: which tensors an architecture has, their names and shapes, and how they are
//! grouped into layers. No bytes are interpreted here (weights stay in their file encoding inside
//! [`Matrix`]) and nothing here knows a compute backend; `cpu::forward` and the GPU forward run
//! the op sequence per architecture.

pub mod config;

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
    /// Llama: separate projections; K/V have `n_head_kv · head_dim` rows.
    Separate { q: Linear, k: Linear, v: Linear },
    /// GPT-2: one `[3·n_embd, n_embd]` projection, rows ordered q, k, v.
    Fused(Linear),
}

#[derive(Clone, Debug)]
pub enum FeedForward {
    /// `down(silu(gate·x) ⊙ up·x)`
    SwiGlu { gate: Linear, up: Linear, down: Linear },
    /// `down(gelu_tanh(up·x))`
    Gelu { up: Linear, down: Linear },
}

#[derive(Clone, Debug)]
pub struct Layer {
    pub attn_norm: Norm,
    pub attn: Attention,
    pub attn_out: Linear,
    pub ffn_norm: Norm,
    pub ffn: FeedForward,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub cfg: Config,
    pub n_vocab: usize,
    /// `[n_vocab, n_embd]`
    pub tok_embd: Matrix,
    /// GPT-2 only: `[n_ctx_train, n_embd]`
    pub pos_embd: Option<Matrix>,
    pub layers: Vec<Layer>,
    pub output_norm: Norm,
    /// `[n_vocab, n_embd]`; `None` when tied to `tok_embd`.
    pub output: Option<Matrix>,
}

/// Name of a GGUF tensor in a Hugging Face checkpoint, and whether HF stores it transposed
/// (GPT-2's Conv1D keeps `[in, out]`).
fn hf_name(arch: Arch, gguf: &str) -> (String, bool) {
    let (layer, rest) = match gguf.strip_prefix("blk.").and_then(|s| s.split_once('.')) {
        Some((n, rest)) => (Some(n), rest),
        None => (None, gguf),
    };
    let (base, suffix) = rest.rsplit_once('.').unwrap_or((rest, "weight"));
    let (hf, transpose) = match (arch, base) {
        (Arch::Llama, "token_embd") => ("model.embed_tokens", false),
        (Arch::Llama, "output_norm") => ("model.norm", false),
        (Arch::Llama, "output") => ("lm_head", false),
        (Arch::Llama, "attn_norm") => ("input_layernorm", false),
        (Arch::Llama, "attn_q") => ("self_attn.q_proj", false),
        (Arch::Llama, "attn_k") => ("self_attn.k_proj", false),
        (Arch::Llama, "attn_v") => ("self_attn.v_proj", false),
        (Arch::Llama, "attn_output") => ("self_attn.o_proj", false),
        (Arch::Llama, "ffn_norm") => ("post_attention_layernorm", false),
        (Arch::Llama, "ffn_gate") => ("mlp.gate_proj", false),
        (Arch::Llama, "ffn_up") => ("mlp.up_proj", false),
        (Arch::Llama, "ffn_down") => ("mlp.down_proj", false),
        (Arch::Gpt2, "token_embd") => ("wte", false),
        (Arch::Gpt2, "position_embd") => ("wpe", false),
        (Arch::Gpt2, "output_norm") => ("ln_f", false),
        (Arch::Gpt2, "output") => ("lm_head", false),
        (Arch::Gpt2, "attn_norm") => ("ln_1", false),
        (Arch::Gpt2, "attn_qkv") => ("attn.c_attn", true),
        (Arch::Gpt2, "attn_output") => ("attn.c_proj", true),
        (Arch::Gpt2, "ffn_norm") => ("ln_2", false),
        (Arch::Gpt2, "ffn_up") => ("mlp.c_fc", true),
        (Arch::Gpt2, "ffn_down") => ("mlp.c_proj", true),
        (_, other) => (other, false),
    };
    let transpose = transpose && suffix == "weight";
    let name = match (arch, layer) {
        (Arch::Llama, Some(n)) => format!("model.layers.{n}.{hf}.{suffix}"),
        (Arch::Gpt2, Some(n)) => format!("h.{n}.{hf}.{suffix}"),
        (_, None) => format!("{hf}.{suffix}"),
    };
    (name, transpose)
}

struct Loader<'a> {
    src: &'a mut dyn WeightSource,
    arch: Arch,
}

impl Loader<'_> {
    fn resolve(&self, gguf: &str) -> (String, bool) {
        match self.src.naming() {
            Naming::Gguf => (gguf.to_string(), false),
            Naming::HuggingFace => {
                let (name, t) = hf_name(self.arch, gguf);
                // GPT2LMHeadModel checkpoints prefix everything with "transformer."
                if !self.src.has(&name) && self.src.has(&format!("transformer.{name}")) {
                    (format!("transformer.{name}"), t)
                } else {
                    (name, t)
                }
            }
        }
    }

    fn has(&self, gguf: &str) -> bool {
        let (n, _) = self.resolve(gguf);
        self.src.has(&n)
    }

    /// Takes a tensor and checks its ggml-order `dims`.
    fn tensor(&mut self, gguf: &str, dims: &[usize]) -> Result<Tensor> {
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

    fn vector(&mut self, gguf: &str, n: usize) -> Result<Vec<f32>> {
        Ok(self.tensor(gguf, &[n])?.to_f32())
    }

    fn matrix(&mut self, gguf: &str, rows: usize, cols: usize) -> Result<Matrix> {
        let t = self.tensor(gguf, &[cols, rows])?;
        if !cols.is_multiple_of(t.ty.block_size()) {
            return Err(Error::malformed(format!("tensor '{gguf}'"), "row is not whole blocks"));
        }
        Ok(Matrix { name: t.name, ty: t.ty, rows, cols, data: t.data })
    }

    fn linear(&mut self, prefix: &str, rows: usize, cols: usize, bias: bool) -> Result<Linear> {
        let w = self.matrix(&format!("{prefix}.weight"), rows, cols)?;
        let b = if bias { Some(self.vector(&format!("{prefix}.bias"), rows)?) } else { None };
        Ok(Linear { w, b })
    }

    fn norm(&mut self, prefix: &str, n: usize, bias: bool) -> Result<Norm> {
        let w = self.vector(&format!("{prefix}.weight"), n)?;
        let b = if bias { Some(self.vector(&format!("{prefix}.bias"), n)?) } else { None };
        Ok(Norm { w, b })
    }
}

impl Model {
    /// Builds the model named by the source's metadata.
    pub fn load(src: &mut dyn WeightSource) -> Result<Model> {
        let rope_style = match src.naming() {
            Naming::Gguf => RopeStyle::Interleaved,
            Naming::HuggingFace => RopeStyle::Neox,
        };
        let cfg = Config::from_metadata(src.metadata(), rope_style)?;
        let tied_hint = src.metadata().get("wisp.tie_word_embeddings").and_then(|v| v.as_bool());
        let arch = cfg.arch;
        let mut l = Loader { src, arch };
        let (n_embd, kv_dim, n_ff) = (cfg.n_embd, cfg.kv_dim(), cfg.n_ff);
        let gpt2 = arch == Arch::Gpt2;

        // the vocabulary size comes from the embedding itself
        let (emb_name, _) = l.resolve("token_embd.weight");
        let emb_dims = l.src.dims(&emb_name).ok_or(Error::MissingTensor { name: emb_name })?;
        let n_vocab = emb_dims.iter().product::<usize>() / n_embd;
        if n_vocab == 0 {
            return Err(Error::malformed("token_embd.weight", "empty vocabulary"));
        }
        let tok_embd = l.matrix("token_embd.weight", n_vocab, n_embd)?;
        let pos_embd =
            if gpt2 { Some(l.matrix("position_embd.weight", cfg.n_ctx_train, n_embd)?) } else { None };

        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let p = |s: &str| format!("blk.{i}.{s}");
            let attn_norm = l.norm(&p("attn_norm"), n_embd, gpt2)?;
            let attn = if gpt2 {
                Attention::Fused(l.linear(&p("attn_qkv"), 3 * n_embd, n_embd, true)?)
            } else {
                Attention::Separate {
                    q: l.linear(&p("attn_q"), n_embd, n_embd, false)?,
                    k: l.linear(&p("attn_k"), kv_dim, n_embd, false)?,
                    v: l.linear(&p("attn_v"), kv_dim, n_embd, false)?,
                }
            };
            let attn_out = l.linear(&p("attn_output"), n_embd, n_embd, gpt2)?;
            let ffn_norm = l.norm(&p("ffn_norm"), n_embd, gpt2)?;
            let ffn = if gpt2 {
                FeedForward::Gelu {
                    up: l.linear(&p("ffn_up"), n_ff, n_embd, true)?,
                    down: l.linear(&p("ffn_down"), n_embd, n_ff, true)?,
                }
            } else {
                FeedForward::SwiGlu {
                    gate: l.linear(&p("ffn_gate"), n_ff, n_embd, false)?,
                    up: l.linear(&p("ffn_up"), n_ff, n_embd, false)?,
                    down: l.linear(&p("ffn_down"), n_embd, n_ff, false)?,
                }
            };
            layers.push(Layer { attn_norm, attn, attn_out, ffn_norm, ffn });
        }
        let output_norm = l.norm("output_norm", n_embd, gpt2)?;
        let output = if l.has("output.weight") && tied_hint != Some(true) {
            Some(l.matrix("output.weight", n_vocab, n_embd)?)
        } else {
            None
        };
        // a GGUF tensor this definition did not take would be silently ignored (llama.cpp
        // refuses such files too: "wrong number of tensors"); Hugging Face checkpoints carry
        // buffers that are not weights (GPT-2's attention masks, rotary `inv_freq`), so only GGUF
        if l.src.naming() == Naming::Gguf {
            if let Some(name) = l.src.remaining().into_iter().next() {
                return Err(Error::UnsupportedTensor { name, arch: arch.name().into() });
            }
        }
        Ok(Model { cfg, n_vocab, tok_embd, pos_embd, layers, output_norm, output })
    }

    /// The matrix producing logits.
    pub fn head(&self) -> &Matrix {
        self.output.as_ref().unwrap_or(&self.tok_embd)
    }

    /// Bytes of all weights as held in memory.
    pub fn weight_bytes(&self) -> usize {
        let lin = |l: &Linear| l.w.data.len() + l.b.as_ref().map_or(0, |b| b.len() * 4);
        let norm = |n: &Norm| (n.w.len() + n.b.as_ref().map_or(0, |b| b.len())) * 4;
        let mut n = self.tok_embd.data.len() + self.pos_embd.as_ref().map_or(0, |m| m.data.len());
        n += self.output.as_ref().map_or(0, |m| m.data.len()) + norm(&self.output_norm);
        for layer in &self.layers {
            n += norm(&layer.attn_norm) + norm(&layer.ffn_norm) + lin(&layer.attn_out);
            n += match &layer.attn {
                Attention::Separate { q, k, v } => lin(q) + lin(k) + lin(v),
                Attention::Fused(qkv) => lin(qkv),
            };
            n += match &layer.ffn {
                FeedForward::SwiGlu { gate, up, down } => lin(gate) + lin(up) + lin(down),
                FeedForward::Gelu { up, down } => lin(up) + lin(down),
            };
        }
        n
    }

    /// Every matrix of the model, for checks over all of them.
    pub fn matrices(&self) -> Vec<&Matrix> {
        let mut out = vec![&self.tok_embd];
        out.extend(self.pos_embd.iter().chain(self.output.iter()));
        for layer in &self.layers {
            out.push(&layer.attn_out.w);
            match &layer.attn {
                Attention::Separate { q, k, v } => out.extend([&q.w, &k.w, &v.w]),
                Attention::Fused(qkv) => out.push(&qkv.w),
            }
            match &layer.ffn {
                FeedForward::SwiGlu { gate, up, down } => out.extend([&gate.w, &up.w, &down.w]),
                FeedForward::Gelu { up, down } => out.extend([&up.w, &down.w]),
            }
        }
        out
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
}
