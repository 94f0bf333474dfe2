//! GPT-2: LayerNorm before attention and the feed-forward, learned positions added to the token
//! embedding, one fused Q/K/V projection, biases everywhere, tanh-GELU, the head tied to the
//! embedding. No RoPE: positions come from the table, so a sequence ends at its last row.

use super::ops::{Act, Activation, NormKind, Ops};
use super::{Attention, Config, FeedForward, HfNames, Layer, Loader, Model, Parts};
use crate::error::Result;

pub(super) static HF_NAMES: HfNames = HfNames {
    layer_prefix: "h.",
    names: &[
        ("token_embd", "wte", false),
        ("position_embd", "wpe", false),
        ("output_norm", "ln_f", false),
        ("output", "lm_head", false),
        ("attn_norm", "ln_1", false),
        ("attn_qkv", "attn.c_attn", true),
        ("attn_output", "attn.c_proj", true),
        ("ffn_norm", "ln_2", false),
        ("ffn_up", "mlp.c_fc", true),
        ("ffn_down", "mlp.c_proj", true),
    ],
};

pub(super) fn load(l: &mut Loader, cfg: &Config) -> Result<Parts> {
    let (d, ff) = (cfg.n_embd, cfg.n_ff);
    let pos_embd = Some(l.matrix("position_embd.weight", cfg.n_ctx_train, d)?);
    let mut layers = Vec::with_capacity(cfg.n_layer);
    for i in 0..cfg.n_layer {
        let p = |s: &str| format!("blk.{i}.{s}");
        layers.push(Layer {
            attn_norm: l.norm(&p("attn_norm"), d, true)?,
            attn: Attention::Fused(l.linear(&p("attn_qkv"), 3 * d, d, true)?),
            attn_q_norm: None,
            attn_k_norm: None,
            attn_out: l.linear(&p("attn_output"), d, d, true)?,
            post_attn_norm: None,
            ffn_norm: l.norm(&p("ffn_norm"), d, true)?,
            ffn: FeedForward::Plain { up: l.linear(&p("ffn_up"), ff, d, true)? },
            ffn_down: l.linear(&p("ffn_down"), d, ff, true)?,
            post_ffn_norm: None,
        });
    }
    let output_norm = l.norm("output_norm", d, true)?;
    // the learned position table ends the context (Model::load states it)
    Ok(Parts { pos_embd, layers, output_norm, rope_factors: None, ctx_limit: None })
}

pub(super) fn forward<'m>(m: &'m Model, ops: &mut dyn Ops<'m>) -> Result<()> {
    let eps = m.cfg.norm_eps;
    ops.embed(&m.tok_embd, 1.0)?;
    if let Some(pos) = &m.pos_embd {
        ops.add_positions(pos)?;
    }
    for (i, layer) in m.layers.iter().enumerate() {
        ops.norm(NormKind::Layer, &layer.attn_norm, eps, Act::X, Act::Xb)?;
        ops.qkv(&layer.attn, Act::Xb)?;
        ops.rope_and_store(i, None)?;
        ops.attention(i, None)?;
        ops.linear_add(&layer.attn_out, Act::Att, Act::X)?;

        ops.norm(NormKind::Layer, &layer.ffn_norm, eps, Act::X, Act::Xb)?;
        ops.ffn_up(Activation::GeluTanh, &layer.ffn, Act::Xb, Act::Hb)?;
        ops.linear_add(&layer.ffn_down, Act::Hb, Act::X)?;
    }
    ops.logits(NormKind::Layer, &m.output_norm, eps, m.head())
}
