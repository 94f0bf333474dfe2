//! The seam between a model and a backend: the operations an architecture's forward pass is
//! written in. Each architecture (one file beside this one) states its op sequence once against
//! [`Ops`]; the CPU backend executes each call as it comes (for a batch of tokens at a
//! position), and the GPU backend records the sequence once at load into its dispatch lists,
//! fusing neighbours where its kernels allow (stacked Q/K/V, SwiGLU, residual-accumulating
//! products, RoPE with the KV append).
//!
//! Operations name their operands as [`Act`] buffers, each `[rows, width]` with one row per
//! token of the batch; the backend owns them and knows the batch and its positions. Weights
//! are passed as the model's own [`Matrix`], [`Linear`] and [`Norm`] values, so a backend can
//! find its copy of a weight by the tensor's name.

use super::{Attention, FeedForward, Linear, Matrix, Norm, RopeStyle};
use crate::error::Result;

/// Activation buffers (widths from the model's [`super::Config`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// The residual stream `[n_embd]`.
    X,
    /// A normalised copy of the residual stream `[n_embd]`.
    Xb,
    /// Queries `[n_head · head_dim]`.
    Q,
    /// Keys `[n_head_kv · head_dim]`.
    K,
    /// Values `[n_head_kv · head_dim]`.
    V,
    /// Attention's output, heads concatenated `[n_head · head_dim]`.
    Att,
    /// The feed-forward hidden layer `[n_ff]`.
    Hb,
    /// A block's output before it joins the residual stream `[n_embd]` (Gemma's post-norms).
    O,
}

/// Which normalisation a [`Norm`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    /// `x / sqrt(mean(x²) + eps) · w`
    Rms,
    /// `(x − mean) / sqrt(var + eps) · w + b`
    Layer,
}

/// The feed-forward activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `x · sigmoid(x)`; gated, SwiGLU.
    Silu,
    /// GELU's tanh approximation (GPT-2); gated, GeGLU.
    GeluTanh,
}

/// Rotary position embedding as an architecture applies it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rope<'a> {
    /// Dimensions rotated at the start of each head (the rest pass through).
    pub dims: usize,
    /// θ base: pair `i` turns by `pos · base^(−2i/dims) / factors[i] · freq_scale`.
    pub base: f32,
    pub style: RopeStyle,
    /// Per-pair divisors of the frequency (`rope_freqs.weight`, Llama 3.x): `dims / 2` values.
    pub factors: Option<&'a [f32]>,
    /// Linear scaling: angles times this (`1 / factor`).
    pub freq_scale: f32,
    /// cos and sin times this.
    pub attn_factor: f32,
}

/// What an architecture's forward pass is written in; `'m` is the model's lifetime (the GPU
/// backend keeps the operands until it has built its dispatches). Every call may fail: a backend refuses an
/// operand it cannot run (naming the tensor) instead of running something else.
pub trait Ops<'m> {
    /// `X = table[token]` for each token of the batch, times `scale` when it is not 1.
    fn embed(&mut self, table: &'m Matrix, scale: f32) -> Result<()>;
    /// `X += table[position]`: learned positions (GPT-2).
    fn add_positions(&mut self, table: &'m Matrix) -> Result<()>;
    /// `out = norm(x)` row by row (`out` may be `x`).
    fn norm(&mut self, kind: NormKind, n: &'m Norm, eps: f32, x: Act, out: Act) -> Result<()>;
    /// RMSNorm of each head of `x` (`Q` or `K`) in place, `n` being `head_dim` long (Qwen3, Gemma 3).
    fn head_norm(&mut self, n: &'m Norm, eps: f32, x: Act) -> Result<()>;
    /// `Q`, `K`, `V` from `x`: three projections, or one whose rows are Q's, then K's, then V's.
    fn qkv(&mut self, attn: &'m Attention, x: Act) -> Result<()>;
    /// RoPE on `Q` and `K` (when `rope` is given), then `K` and `V` appended to layer `layer`'s
    /// cache at the batch's positions.
    fn rope_and_store(&mut self, layer: usize, rope: Option<Rope<'m>>) -> Result<()>;
    /// `Att = softmax(Q·Kᵀ · attn_scale) · V` over layer `layer`'s cache, causal, each group of
    /// `n_head / n_head_kv` consecutive query heads sharing one KV head; with a `window`, a
    /// token at position p attends only to positions `p − window + 1 ..= p`.
    fn attention(&mut self, layer: usize, window: Option<usize>) -> Result<()>;
    /// `y += x`: a block's output joining the residual stream.
    fn add(&mut self, x: Act, y: Act) -> Result<()>;
    /// `y = W·x (+ b)`.
    fn linear(&mut self, l: &'m Linear, x: Act, y: Act) -> Result<()>;
    /// `y += W·x (+ b)`: a projection into the residual stream.
    fn linear_add(&mut self, l: &'m Linear, x: Act, y: Act) -> Result<()>;
    /// The feed-forward's first half into `y` (`Hb`): `act(gate·x) ⊙ (up·x)` when gated,
    /// `act(up·x)` when not.
    fn ffn_up(&mut self, act: Activation, ffn: &'m FeedForward, x: Act, y: Act) -> Result<()>;
    /// The final norm of the residual stream and the head `[n_vocab, n_embd]`: the logits of
    /// the rows the caller asked for.
    fn logits(&mut self, kind: NormKind, n: &'m Norm, eps: f32, head: &'m Matrix) -> Result<()>;
}
