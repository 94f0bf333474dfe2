//! Phi-3 (Phi-3-mini, Phi-3.5-mini): Llama's block with Q, K and V in one `attn_qkv` matrix and
//! the feed-forward's gate and up in one `ffn_up` matrix (`[2·n_ff, n_embd]`, the gate's rows
//! first), NEOX RoPE, an untied head. Phi-3.5's LongRoPE (`rope_factors_short/long`) divides
//! each pair's frequency by a factor: the short ones within the original context (and the
//! context is held to it), with the attention factor of `phi3.rope.scaling.attn_factor`.
//!
//! Its op sequence is Llama's (`llama::forward`): the fused matrices are the ops' other forms of
//! the same products, so only the tensors are defined here.

use super::{window_limit, Attention, Config, FeedForward, HfNames, Layer, Loader, Parts, RopeStyle};
use crate::error::Result;

pub(super) static HF_NAMES: HfNames = HfNames {
    layer_prefix: "model.layers.",
    names: &[
        ("token_embd", "model.embed_tokens", false),
        ("output_norm", "model.norm", false),
        ("output", "lm_head", false),
        ("attn_norm", "input_layernorm", false),
        ("attn_qkv", "self_attn.qkv_proj", false),
        ("attn_output", "self_attn.o_proj", false),
        ("ffn_norm", "post_attention_layernorm", false),
        ("ffn_up", "mlp.gate_up_proj", false),
        ("ffn_down", "mlp.down_proj", false),
    ],
};

pub(super) fn load(l: &mut Loader, cfg: &mut Config) -> Result<Parts> {
    cfg.rope_style = RopeStyle::Neox;
    cfg.attn_q_scaled = true;
    let (d, q_dim, kv_dim, ff) = (cfg.n_embd, cfg.q_dim(), cfg.kv_dim(), cfg.n_ff);
    let mut layers = Vec::with_capacity(cfg.n_layer);
    for i in 0..cfg.n_layer {
        let p = |s: &str| format!("blk.{i}.{s}");
        layers.push(Layer {
            attn_norm: l.norm(&p("attn_norm"), d, false)?,
            attn: Attention::Fused(l.linear(&p("attn_qkv"), q_dim + 2 * kv_dim, d, false)?),
            attn_q_norm: None,
            attn_k_norm: None,
            attn_out: l.linear(&p("attn_output"), d, q_dim, false)?,
            post_attn_norm: None,
            ffn_norm: l.norm(&p("ffn_norm"), d, false)?,
            ffn: FeedForward::GatedStacked(l.linear(&p("ffn_up"), 2 * ff, d, false)?),
            ffn_down: l.linear(&p("ffn_down"), d, ff, false)?,
            post_ffn_norm: None,
        });
    }
    let output_norm = l.norm("output_norm", d, false)?;
    let mut ctx_limit = window_limit(cfg);
    let half = cfg.rope_dims / 2;
    let rope_factors = match (l.has("rope_factors_short.weight"), l.has("rope_factors_long.weight")) {
        (false, false) => None,
        (true, true) => {
            let short = l.vector("rope_factors_short.weight", half)?;
            let long = l.vector("rope_factors_long.weight", half)?;
            // llama.cpp switches to the long factors past the original context: held to it
            if long != short && ctx_limit.as_ref().is_none_or(|c| c.0 > cfg.n_ctx_orig) {
                let why = format!(
                    "past phi3.rope.scaling.original_context_length ({}) LongRoPE's long factors apply, \
                     which are not implemented",
                    cfg.n_ctx_orig
                );
                ctx_limit = Some((cfg.n_ctx_orig, why));
            }
            Some(short)
        }
        (short, _) => {
            let missing = if short { "rope_factors_long.weight" } else { "rope_factors_short.weight" };
            return Err(crate::error::Error::MissingTensor { name: missing.into() });
        }
    };
    Ok(Parts { pos_embd: None, layers, output_norm, rope_factors, ctx_limit })
}
