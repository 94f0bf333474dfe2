//! The one forward interface the engine talks to: the model's op sequence executed on the CPU,
//! or recorded once into the GPU's dispatch lists. Only here is it asked which one runs.
//!
//! Positions are the engine's: each call says where its tokens go, and the backend's KV cache
//! holds whatever was evaluated before that position.

use crate::cpu::{forward, KvCache, Logits, Numerics, Scratch, UBATCH};
use crate::error::{Error, Result};
use crate::gpu::forward::{GpuForward, Picked, BATCH};
use crate::model::Model;
use crate::sampling::DeviceDraw;

// one per engine, made once: the variants' sizes do not matter
#[allow(clippy::large_enum_variant)]
pub(crate) enum Backend {
    /// The CPU path: its KV cache and activation buffers. Without the weights on the host
    /// (streamed to the GPU) it cannot run.
    Cpu { cache: KvCache, scratch: Scratch, host_weights: bool },
    /// The GPU's dispatch lists (its KV cache lives on the GPU) and the last logits read back.
    Gpu { forward: Box<GpuForward>, logits: Vec<f32> },
}

impl Backend {
    pub fn cpu(model: &Model, n_ctx: usize) -> Backend {
        Backend::Cpu {
            cache: KvCache::new(model, n_ctx),
            scratch: Scratch::default(),
            host_weights: model.weights_on_host(),
        }
    }

    pub fn gpu(&self) -> Option<&GpuForward> {
        match self {
            Backend::Gpu { forward, .. } => Some(forward),
            Backend::Cpu { .. } => None,
        }
    }

    /// Rows one batched call takes.
    pub fn batch(&self) -> usize {
        match self {
            Backend::Cpu { .. } => UBATCH,
            Backend::Gpu { .. } => BATCH,
        }
    }

    /// Evaluates `ids` at positions `pos..` (everything from `pos` on is forgotten first); with
    /// `logits`, the last row's logits are kept for [`Backend::logits`].
    pub async fn eval(
        &mut self,
        model: &Model,
        ids: &[u32],
        pos: usize,
        logits: bool,
        numerics: Numerics,
    ) -> Result<()> {
        match self {
            Backend::Gpu { forward: gf, logits: out } => {
                // matrix products over the prompt, then its last token as a decode step when its
                // logits are wanted
                let (body, last) =
                    if logits { ids.split_at(ids.len().saturating_sub(1)) } else { (ids, &[][..]) };
                gf.prefill(body, pos)?;
                if let Some(&t) = last.first() {
                    *out = gf.step_logits(t, pos + body.len()).await?;
                }
                Ok(())
            }
            Backend::Cpu { cache, scratch, host_weights } => {
                if !*host_weights {
                    return Err(cpu_unavailable());
                }
                at(cache, pos)?;
                for (i, chunk) in ids.chunks(UBATCH).enumerate() {
                    let last = (i + 1) * UBATCH >= ids.len();
                    let which = if last && logits { Logits::Last } else { Logits::None };
                    forward(model, cache, scratch, chunk, which, numerics)?;
                }
                Ok(())
            }
        }
    }

    /// Every row's logits of `ids` (at most [`Backend::batch`]) at positions `pos..`,
    /// `[ids.len() · n_vocab]` (perplexity).
    pub async fn eval_all(
        &mut self,
        model: &Model,
        ids: &[u32],
        pos: usize,
        numerics: Numerics,
    ) -> Result<&[f32]> {
        match self {
            Backend::Gpu { forward: gf, logits } => {
                *logits = gf.prefill_logits(ids, pos).await?;
                Ok(logits)
            }
            Backend::Cpu { cache, scratch, host_weights } => {
                if !*host_weights {
                    return Err(cpu_unavailable());
                }
                at(cache, pos)?;
                forward(model, cache, scratch, ids, Logits::All, numerics)?;
                Ok(&scratch.logits[..ids.len() * model.n_vocab])
            }
        }
    }

    /// The logits kept by the last [`Backend::eval`] (or set by the caller).
    pub fn logits(&mut self) -> &mut Vec<f32> {
        match self {
            Backend::Gpu { logits, .. } => logits,
            Backend::Cpu { scratch, .. } => &mut scratch.logits,
        }
    }

    /// Evaluates `token` at `pos` on the GPU and picks its successor there: the argmax, or the
    /// sampler's `draw` (which may hand the logits back), among the tokens `allowed` sets (a
    /// grammar's mask, 32 tokens a word) when given.
    pub async fn step(
        &mut self,
        token: u32,
        pos: usize,
        draw: Option<&DeviceDraw>,
        allowed: Option<&[u32]>,
    ) -> Result<Picked> {
        match self {
            Backend::Gpu { forward: gf, .. } => match draw {
                Some(d) => gf.step_sampled_masked(token, pos, d, allowed).await,
                None => gf.step_masked(token, pos, allowed).await.map(Picked::Token),
            },
            Backend::Cpu { .. } => Err(Error::State("a GPU step on the CPU backend".into())),
        }
    }
}

/// Moves the CPU cache's end to `pos`: positions past it are forgotten, and none may be missing.
fn at(cache: &mut KvCache, pos: usize) -> Result<()> {
    if pos > cache.len {
        return Err(Error::State(format!("position {pos} is past the {} cached", cache.len)));
    }
    cache.truncate(pos);
    Ok(())
}

fn cpu_unavailable() -> Error {
    Error::State(
        "the weights were streamed to the GPU, so the CPU path has none; load again with the CPU backend"
            .into(),
    )
}
