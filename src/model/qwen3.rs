//! Qwen3: Llama's block with an RMSNorm on each query and key head (`attn_q_norm`,
//! `attn_k_norm`, before RoPE), no biases, NEOX RoPE, and a head size from
//! `qwen3.attention.key_length` (128 on every size, so `n_head · head_dim` need not be `n_embd`).

use super::ops::{Act, Activation, NormKind, Ops};
use super::{window_limit, Config, HfNames, Layer, Loader, Model, Parts, RopeStyle};
use crate::error::Result;

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
        ("ffn_norm", "post_attention_layernorm", false),
        ("ffn_gate", "mlp.gate_proj", false),
        ("ffn_up", "mlp.up_proj", false),
        ("ffn_down", "mlp.down_proj", false),
    ],
};

pub(super) fn load(l: &mut Loader, cfg: &mut Config) -> Result<Parts> {
    cfg.rope_style = RopeStyle::Neox;
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
            post_attn_norm: None,
            ffn_norm: l.norm(&p("ffn_norm"), d, false)?,
            ffn: l.gated_ffn(i, cfg)?,
            ffn_down: l.linear(&p("ffn_down"), d, ff, false)?,
            post_ffn_norm: None,
        });
    }
    let output_norm = l.norm("output_norm", d, false)?;
    Ok(Parts { pos_embd: None, layers, output_norm, rope_factors: None, ctx_limit: window_limit(cfg) })
}

pub(super) fn forward<'m>(m: &'m Model, ops: &mut dyn Ops<'m>) -> Result<()> {
    let cfg = &m.cfg;
    let eps = cfg.norm_eps;
    ops.embed(&m.tok_embd, 1.0)?;
    for (i, layer) in m.layers.iter().enumerate() {
        ops.norm(NormKind::Rms, &layer.attn_norm, eps, Act::X, Act::Xb)?;
        ops.qkv(&layer.attn, Act::Xb)?;
        if let (Some(qn), Some(kn)) = (&layer.attn_q_norm, &layer.attn_k_norm) {
            ops.head_norm(qn, eps, Act::Q)?;
            ops.head_norm(kn, eps, Act::K)?;
        }
        ops.rope_and_store(i, Some(m.rope()))?;
        ops.attention(i, None)?;
        ops.linear_add(&layer.attn_out, Act::Att, Act::X)?;

        ops.norm(NormKind::Rms, &layer.ffn_norm, eps, Act::X, Act::Xb)?;
        ops.ffn_up(Activation::Silu, &layer.ffn, Act::Xb, Act::Hb)?;
        ops.linear_add(&layer.ffn_down, Act::Hb, Act::X)?;
    }
    ops.logits(NormKind::Rms, &m.output_norm, eps, m.head())
}
