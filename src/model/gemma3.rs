//! Gemma 3: the token embedding scaled by √n_embd; each block normalises before and after both
//! attention and the feed-forward (`post_attention_norm`, `post_ffw_norm`, applied to the
//! block's output before it joins the residual stream); per-head RMSNorm of queries and keys;
//! GeGLU with tanh-GELU; NEOX RoPE; a head size from `key_length` (256); the head tied to the
//! embedding. Five of every six layers attend over a sliding window of
//! `gemma3.attention.sliding_window` positions with RoPE base 10,000; the sixth attends to
//! everything with the file's base and scaling (as llama.cpp's `gemma3` graph).
//! GGUF norm weights already hold Gemma's `1 + w`, so the norms are plain RMSNorms.

use super::ops::{Act, Activation, NormKind, Ops, Rope};
use super::{Config, HfNames, Layer, Loader, Model, Parts, RopeStyle};
use crate::error::{Error, Result};

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
        ("attn_q_norm", "self_attn.q_norm", false),
        ("attn_k_norm", "self_attn.k_norm", false),
        ("attn_output", "self_attn.o_proj", false),
        ("post_attention_norm", "post_attention_layernorm", false),
        ("ffn_norm", "pre_feedforward_layernorm", false),
        ("ffn_gate", "mlp.gate_proj", false),
        ("ffn_up", "mlp.up_proj", false),
        ("ffn_down", "mlp.down_proj", false),
        ("post_ffw_norm", "post_feedforward_layernorm", false),
    ],
};

/// Every `SWA_PATTERN`-th layer (the last of each group) attends globally.
const SWA_PATTERN: usize = 6;
/// The sliding-window layers' RoPE base (llama.cpp's `rope_freq_base_train_swa` for gemma3).
const SWA_ROPE_BASE: f32 = 10000.0;

fn is_local(layer: usize) -> bool {
    layer % SWA_PATTERN < SWA_PATTERN - 1
}

pub(super) fn load(l: &mut Loader, cfg: &mut Config) -> Result<Parts> {
    cfg.rope_style = RopeStyle::Neox;
    cfg.attn_q_scaled = true;
    if cfg.sliding_window.is_none() {
        return Err(Error::MissingKey { key: "gemma3.attention.sliding_window".into() });
    }
    // llama.cpp scales queries by 1/√(n_embd / n_head) on the 27B model (62 layers), by
    // 1/√head_dim on every other size
    if cfg.n_layer == 62 {
        cfg.attn_scale = 1.0 / ((cfg.n_embd / cfg.n_head) as f32).sqrt();
    }
    let (d, q_dim, hd, ff) = (cfg.n_embd, cfg.q_dim(), cfg.head_dim, cfg.n_ff);
    let mut layers = Vec::with_capacity(cfg.n_layer);
    for i in 0..cfg.n_layer {
        let p = |s: &str| format!("blk.{i}.{s}");
        layers.push(Layer {
            attn_norm: l.norm(&p("attn_norm"), d, false)?,
            attn: l.attention_qkv(i, cfg, false)?,
            attn_q_norm: Some(l.norm(&p("attn_q_norm"), hd, false)?),
            attn_k_norm: Some(l.norm(&p("attn_k_norm"), hd, false)?),
            attn_out: l.linear(&p("attn_output"), d, q_dim, false)?,
            post_attn_norm: Some(l.norm(&p("post_attention_norm"), d, false)?),
            ffn_norm: l.norm(&p("ffn_norm"), d, false)?,
            ffn: l.gated_ffn(i, cfg)?,
            ffn_down: l.linear(&p("ffn_down"), d, ff, false)?,
            post_ffn_norm: Some(l.norm(&p("post_ffw_norm"), d, false)?),
        });
    }
    let output_norm = l.norm("output_norm", d, false)?;
    Ok(Parts { pos_embd: None, layers, output_norm, rope_factors: None, ctx_limit: None })
}

pub(super) fn forward<'m>(m: &'m Model, ops: &mut dyn Ops<'m>) -> Result<()> {
    let cfg = &m.cfg;
    let eps = cfg.norm_eps;
    let global = m.rope();
    let local = Rope { base: SWA_ROPE_BASE, freq_scale: 1.0, factors: None, ..global };
    ops.embed(&m.tok_embd, (cfg.n_embd as f32).sqrt())?;
    for (i, layer) in m.layers.iter().enumerate() {
        let (rope, window) = if is_local(i) { (local, cfg.sliding_window) } else { (global, None) };
        ops.norm(NormKind::Rms, &layer.attn_norm, eps, Act::X, Act::Xb)?;
        ops.qkv(&layer.attn, Act::Xb)?;
        if let (Some(qn), Some(kn)) = (&layer.attn_q_norm, &layer.attn_k_norm) {
            ops.head_norm(qn, eps, Act::Q)?;
            ops.head_norm(kn, eps, Act::K)?;
        }
        ops.rope_and_store(i, Some(rope))?;
        ops.attention(i, window)?;
        ops.linear(&layer.attn_out, Act::Att, Act::O)?;
        if let Some(n) = &layer.post_attn_norm {
            ops.norm(NormKind::Rms, n, eps, Act::O, Act::O)?;
        }
        ops.add(Act::O, Act::X)?;

        ops.norm(NormKind::Rms, &layer.ffn_norm, eps, Act::X, Act::Xb)?;
        ops.ffn_up(Activation::GeluTanh, &layer.ffn, Act::Xb, Act::Hb)?;
        ops.linear(&layer.ffn_down, Act::Hb, Act::O)?;
        if let Some(n) = &layer.post_ffn_norm {
            ops.norm(NormKind::Rms, n, eps, Act::O, Act::O)?;
        }
        ops.add(Act::O, Act::X)?;
    }
    ops.logits(NormKind::Rms, &m.output_norm, eps, m.head())
}
