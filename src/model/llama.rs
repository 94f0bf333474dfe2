//! Llama (Llama 2/3.x, Mistral, TinyLlama, SmolLM2): RMSNorm before attention and the
//! feed-forward, grouped-query attention with RoPE, SwiGLU, an untied or tied head.
//!
//! RoPE pairs adjacent dimensions in GGUF files (llama.cpp's converter permuted the Q/K rows
//! for it) and halves in Hugging Face checkpoints (`rotate_half`): the same model either way.
//! Llama 3.x files carry `rope_freqs.weight`, a divisor per frequency.
//!
//! Qwen2 (Qwen2, Qwen2.5) is this op sequence with biases on Q, K and V and NEOX pairing, which
//! its weights and configuration carry, so it is loaded here too.

use super::ops::{Act, Activation, NormKind, Ops};
use super::{window_limit, Arch, Config, HfNames, Layer, Loader, Model, Parts, RopeStyle};
use crate::error::Result;
use crate::weights::Naming;

pub(super) static HF_NAMES: HfNames = HfNames {
    layer_prefix: "model.layers.",
    names: &[
        ("token_embd", "model.embed_tokens", false),
        ("output_norm", "model.norm", false),
        ("output", "lm_head", false),
        ("attn_norm", "input_layernorm", false),
        ("attn_q", "self_attn.q_proj", false),
        ("attn_k", "self_attn.k_proj", false),
        ("attn_v", "self_attn.v_proj", false),
        ("attn_output", "self_attn.o_proj", false),
        ("ffn_norm", "post_attention_layernorm", false),
        ("ffn_gate", "mlp.gate_proj", false),
        ("ffn_up", "mlp.up_proj", false),
        ("ffn_down", "mlp.down_proj", false),
    ],
};

pub(super) fn load(l: &mut Loader, cfg: &mut Config, naming: Naming) -> Result<Parts> {
    let qwen2 = cfg.arch == Arch::Qwen2;
    cfg.rope_style = match naming {
        Naming::Gguf if !qwen2 => RopeStyle::Interleaved,
        _ => RopeStyle::Neox,
    };
    let (d, q_dim, ff) = (cfg.n_embd, cfg.q_dim(), cfg.n_ff);
    let mut layers = Vec::with_capacity(cfg.n_layer);
    for i in 0..cfg.n_layer {
        let p = |s: &str| format!("blk.{i}.{s}");
        layers.push(Layer {
            attn_norm: l.norm(&p("attn_norm"), d, false)?,
            attn: l.attention_qkv(i, cfg, qwen2)?,
            attn_q_norm: None,
            attn_k_norm: None,
            attn_out: l.linear(&p("attn_output"), d, q_dim, false)?,
            post_attn_norm: None,
            ffn_norm: l.norm(&p("ffn_norm"), d, false)?,
            ffn: l.gated_ffn(i, cfg)?,
            ffn_down: l.linear(&p("ffn_down"), d, ff, false)?,
            post_ffn_norm: None,
        });
    }
    let rope_factors = match l.has("rope_freqs.weight") {
        true => Some(l.vector("rope_freqs.weight", cfg.rope_dims / 2)?),
        false => None,
    };
    let output_norm = l.norm("output_norm", d, false)?;
    Ok(Parts { pos_embd: None, layers, output_norm, rope_factors, ctx_limit: window_limit(cfg) })
}

pub(super) fn forward<'m>(m: &'m Model, ops: &mut dyn Ops<'m>) -> Result<()> {
    let cfg = &m.cfg;
    let eps = cfg.norm_eps;
    ops.embed(&m.tok_embd, 1.0)?;
    for (i, layer) in m.layers.iter().enumerate() {
        ops.norm(NormKind::Rms, &layer.attn_norm, eps, Act::X, Act::Xb)?;
        ops.qkv(&layer.attn, Act::Xb)?;
        ops.rope_and_store(i, Some(m.rope()))?;
        ops.attention(i, None)?;
        ops.linear_add(&layer.attn_out, Act::Att, Act::X)?;

        ops.norm(NormKind::Rms, &layer.ffn_norm, eps, Act::X, Act::Xb)?;
        ops.ffn_up(Activation::Silu, &layer.ffn, Act::Xb, Act::Hb)?;
        ops.linear_add(&layer.ffn_down, Act::Hb, Act::X)?;
    }
    ops.logits(NormKind::Rms, &m.output_norm, eps, m.head())
}
