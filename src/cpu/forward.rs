//! The reference forward pass: one explicit op sequence per architecture over a batch of tokens
//! (a prefill chunk, or one token when decoding), with a KV cache.
//!
//! The KV cache holds f16 like llama.cpp's default, and grows in steps of [`KV_STEP`] positions up
//! to the context length, so a short generation never pays for an 8k context.

use super::matmul::{matmul, Input};
use super::ops::{add_assign, gelu_tanh, layer_norm, rms_norm, rope, silu, softmax};
use super::{par_chunks, Numerics};
use crate::error::{Error, Result};
use crate::model::{Arch, Attention, FeedForward, Model, Norm};
use crate::quant::{dequantize, BlockQ8, GgmlType};
use half::f16;

/// Tokens per forward call; longer prompts are processed in chunks of this size.
pub const UBATCH: usize = 64;
pub const KV_STEP: usize = 256;

/// A KV-cache element: f16 (llama.cpp's default, half the memory) or f32 (exact, for float
/// models compared against transformers).
pub trait KvElem: Copy + Default + Send + Sync {
    fn store(x: f32) -> Self;
    fn load(self) -> f32;
    /// How the other operand of a product with this type is rounded first: ggml converts Q (for
    /// K·Q) and the softmax weights (for V·P) to f16 when K/V are f16.
    fn round_operand(x: f32) -> f32;
    /// Eight consecutive elements as f32 (one conversion instruction for f16 with F16C).
    #[inline(always)]
    fn load8(s: &[Self; 8]) -> [f32; 8] {
        s.map(Self::load)
    }
}

impl KvElem for f16 {
    fn store(x: f32) -> Self {
        f16::from_f32(x)
    }
    fn load(self) -> f32 {
        crate::quant::f16_bits(self.to_bits())
    }
    fn round_operand(x: f32) -> f32 {
        f16::from_f32(x).to_f32()
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "f16c"))]
    #[inline(always)]
    fn load8(s: &[Self; 8]) -> [f32; 8] {
        use std::arch::x86_64::*;
        let mut out = [0.0f32; 8];
        // SAFETY: F16C is enabled for the whole build (cfg above); 8 f16 read, 8 f32 written.
        unsafe {
            let h = _mm_loadu_si128(s.as_ptr() as *const __m128i);
            _mm256_storeu_ps(out.as_mut_ptr(), _mm256_cvtph_ps(h));
        }
        out
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "f16c")))]
    #[inline(always)]
    fn load8(s: &[Self; 8]) -> [f32; 8] {
        crate::quant::f16x8_bits(&s.map(f16::to_bits))
    }
}

impl KvElem for f32 {
    fn store(x: f32) -> Self {
        x
    }
    fn load(self) -> f32 {
        self
    }
    fn round_operand(x: f32) -> f32 {
        x
    }
}

/// Per-layer keys and values, `[pos, kv_dim]` each.
enum KvStore {
    F16 { k: Vec<Vec<f16>>, v: Vec<Vec<f16>> },
    F32 { k: Vec<Vec<f32>>, v: Vec<Vec<f32>> },
}

pub struct KvCache {
    pub n_ctx: usize,
    kv_dim: usize,
    store: KvStore,
    /// Positions filled.
    pub len: usize,
}

fn grow<T: KvElem>(bufs: &mut [Vec<T>], want: usize) {
    for b in bufs {
        if b.len() < want {
            b.resize(want, T::default());
        }
    }
}

impl KvCache {
    /// f16 for quantized models (as llama.cpp), f32 when the weights are float.
    pub fn new(model: &Model, n_ctx: usize) -> KvCache {
        let n = model.cfg.n_layer;
        let store = if model.head().ty.is_quantized() || model.weight_type() != GgmlType::F32 {
            KvStore::F16 { k: vec![Vec::new(); n], v: vec![Vec::new(); n] }
        } else {
            KvStore::F32 { k: vec![Vec::new(); n], v: vec![Vec::new(); n] }
        };
        KvCache { n_ctx, kv_dim: model.cfg.kv_dim(), store, len: 0 }
    }

    /// Forgets positions from `len` on (their slots are overwritten later).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    fn reserve(&mut self, positions: usize) {
        let want = positions.div_ceil(KV_STEP) * KV_STEP;
        let want = want.min(self.n_ctx) * self.kv_dim;
        match &mut self.store {
            KvStore::F16 { k, v } => {
                grow(k, want);
                grow(v, want);
            }
            KvStore::F32 { k, v } => {
                grow(k, want);
                grow(v, want);
            }
        }
    }

    pub fn bytes(&self) -> usize {
        match &self.store {
            KvStore::F16 { k, v } => k.iter().chain(v).map(|b| b.len() * 2).sum(),
            KvStore::F32 { k, v } => k.iter().chain(v).map(|b| b.len() * 4).sum(),
        }
    }
}

/// Activation buffers, reused across calls (sized on first use for the largest batch).
#[derive(Default)]
pub struct Scratch {
    x: Vec<f32>,
    xb: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    qkv: Vec<f32>,
    hb: Vec<f32>,
    hb2: Vec<f32>,
    q8: Vec<BlockQ8>,
    tmp: Vec<f32>,
    pub logits: Vec<f32>,
}

/// Which rows of logits a forward call computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    None,
    Last,
    All,
}

fn norm(arch: Arch, x: &[f32], n: &Norm, eps: f32, out: &mut [f32]) {
    match arch {
        Arch::Llama => rms_norm(x, n, eps, out),
        Arch::Gpt2 => layer_norm(x, n, eps, out),
    }
}

/// Runs `tokens` (at most [`UBATCH`]) at positions `cache.len..`, appends them to the cache and
/// fills `scratch.logits` (`[rows, n_vocab]`, rows per `which`).
pub fn forward(
    model: &Model,
    cache: &mut KvCache,
    s: &mut Scratch,
    tokens: &[u32],
    which: Logits,
    numerics: Numerics,
) -> Result<()> {
    let cfg = &model.cfg;
    let n = tokens.len();
    if n == 0 || n > UBATCH {
        return Err(Error::arg("tokens", format!("batch of {n} tokens (1..={UBATCH})")));
    }
    let pos0 = cache.len;
    if pos0 + n > cache.n_ctx {
        return Err(Error::ContextFull { used: pos0 + n, ctx: cache.n_ctx });
    }
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= model.n_vocab) {
        return Err(Error::arg(
            "tokens",
            format!("token id {bad} is outside the vocabulary of {}", model.n_vocab),
        ));
    }
    if cfg.arch == Arch::Gpt2 && pos0 + n > cfg.n_ctx_train {
        return Err(Error::ContextFull { used: pos0 + n, ctx: cfg.n_ctx_train });
    }
    cache.reserve(pos0 + n);
    let (d, kv_dim, hd) = (cfg.n_embd, cfg.kv_dim(), cfg.head_dim);
    for b in [&mut s.x, &mut s.xb, &mut s.q] {
        b.resize(n * d, 0.0);
    }
    s.k.resize(n * kv_dim, 0.0);
    s.v.resize(n * kv_dim, 0.0);
    s.hb.resize(n * cfg.n_ff, 0.0);
    s.hb2.resize(n * cfg.n_ff, 0.0);

    // token (and position) embeddings
    for (t, &tok) in tokens.iter().enumerate() {
        let xr = &mut s.x[t * d..(t + 1) * d];
        dequantize(model.tok_embd.ty, model.tok_embd.row(tok as usize), xr);
        if let Some(pe) = &model.pos_embd {
            // xb is free until the first norm
            let p = &mut s.xb[t * d..(t + 1) * d];
            dequantize(pe.ty, pe.row(pos0 + t), p);
            add_assign(xr, p);
        }
    }

    for (li, layer) in model.layers.iter().enumerate() {
        // attention block
        norm(cfg.arch, &s.x, &layer.attn_norm, cfg.norm_eps, &mut s.xb);
        {
            let inp = Input::new(&s.xb, n, d, numerics, &mut s.q8);
            match &layer.attn {
                Attention::Separate { q, k, v } => {
                    matmul(&q.w, q.b.as_deref(), &inp, &mut s.q, &mut s.tmp);
                    matmul(&k.w, k.b.as_deref(), &inp, &mut s.k, &mut s.tmp);
                    matmul(&v.w, v.b.as_deref(), &inp, &mut s.v, &mut s.tmp);
                }
                Attention::Fused(qkv) => {
                    s.qkv.resize(n * 3 * d, 0.0);
                    matmul(&qkv.w, qkv.b.as_deref(), &inp, &mut s.qkv, &mut s.tmp);
                    for t in 0..n {
                        let row = &s.qkv[t * 3 * d..(t + 1) * 3 * d];
                        s.q[t * d..(t + 1) * d].copy_from_slice(&row[..d]);
                        s.k[t * kv_dim..(t + 1) * kv_dim].copy_from_slice(&row[d..2 * d]);
                        s.v[t * kv_dim..(t + 1) * kv_dim].copy_from_slice(&row[2 * d..3 * d]);
                    }
                }
            }
        }
        if cfg.arch == Arch::Llama {
            for t in 0..n {
                for h in s.q[t * d..(t + 1) * d].chunks_exact_mut(hd) {
                    rope(h, pos0 + t, cfg.rope_dims, cfg.rope_base, cfg.rope_style);
                }
                for h in s.k[t * kv_dim..(t + 1) * kv_dim].chunks_exact_mut(hd) {
                    rope(h, pos0 + t, cfg.rope_dims, cfg.rope_base, cfg.rope_style);
                }
            }
        }
        // append to the cache, then causal attention (output overwrites xb)
        match &mut cache.store {
            KvStore::F16 { k, v } => {
                append(&mut k[li], &mut v[li], &s.k, &s.v, pos0 * kv_dim);
                attention(cfg, &s.q, &k[li], &v[li], pos0, numerics, &mut s.xb);
            }
            KvStore::F32 { k, v } => {
                append(&mut k[li], &mut v[li], &s.k, &s.v, pos0 * kv_dim);
                attention(cfg, &s.q, &k[li], &v[li], pos0, numerics, &mut s.xb);
            }
        }
        {
            let inp = Input::new(&s.xb, n, d, numerics, &mut s.q8);
            matmul(&layer.attn_out.w, layer.attn_out.b.as_deref(), &inp, &mut s.q, &mut s.tmp);
        }
        add_assign(&mut s.x, &s.q);

        // feed-forward block
        norm(cfg.arch, &s.x, &layer.ffn_norm, cfg.norm_eps, &mut s.xb);
        let down = {
            let inp = Input::new(&s.xb, n, d, numerics, &mut s.q8);
            match &layer.ffn {
                FeedForward::SwiGlu { gate, up, down } => {
                    matmul(&gate.w, gate.b.as_deref(), &inp, &mut s.hb, &mut s.tmp);
                    matmul(&up.w, up.b.as_deref(), &inp, &mut s.hb2, &mut s.tmp);
                    for (g, u) in s.hb.iter_mut().zip(&s.hb2) {
                        *g = silu(*g) * u;
                    }
                    down
                }
                FeedForward::Gelu { up, down } => {
                    matmul(&up.w, up.b.as_deref(), &inp, &mut s.hb, &mut s.tmp);
                    for g in s.hb.iter_mut() {
                        *g = gelu_tanh(*g);
                    }
                    down
                }
            }
        };
        {
            let inp = Input::new(&s.hb, n, cfg.n_ff, numerics, &mut s.q8);
            matmul(&down.w, down.b.as_deref(), &inp, &mut s.q, &mut s.tmp);
        }
        add_assign(&mut s.x, &s.q);
    }
    cache.len = pos0 + n;

    let (first, rows) = match which {
        Logits::None => return Ok(()),
        Logits::Last => (n - 1, 1),
        Logits::All => (0, n),
    };
    let xs = &s.x[first * d..(first + rows) * d];
    norm(cfg.arch, xs, &model.output_norm, cfg.norm_eps, &mut s.xb[..rows * d]);
    s.logits.resize(rows * model.n_vocab, 0.0);
    let inp = Input::new(&s.xb, rows, d, numerics, &mut s.q8);
    matmul(model.head(), None, &inp, &mut s.logits, &mut s.tmp);
    Ok(())
}

fn append<T: KvElem>(kc: &mut [T], vc: &mut [T], k: &[f32], v: &[f32], at: usize) {
    for (dst, src) in kc[at..at + k.len()].iter_mut().zip(k) {
        *dst = T::store(*src);
    }
    for (dst, src) in vc[at..at + v.len()].iter_mut().zip(v) {
        *dst = T::store(*src);
    }
}

/// `out[t, h] = softmax(q[t,h]·K[0..=pos0+t, kvh] / √hd) · V[.., kvh]` with `kvh = h / group`
/// (consecutive query heads share a KV head, as ggml broadcasts).
fn attention<T: KvElem>(
    cfg: &crate::model::Config,
    q: &[f32],
    kc: &[T],
    vc: &[T],
    pos0: usize,
    numerics: Numerics,
    out: &mut [f32],
) {
    // llama.cpp's flash attention rounds the query and the softmax weights to the cache type
    let round = |x: f32| if numerics == Numerics::LlamaCpp { T::round_operand(x) } else { x };
    let (d, kv_dim, hd) = (cfg.n_embd, cfg.kv_dim(), cfg.head_dim);
    let group = cfg.n_head / cfg.n_head_kv;
    let scale = 1.0 / (hd as f32).sqrt();
    let n = out.len() / d;
    // one task per (token, head): decode has a single token, so heads are the parallelism
    par_chunks(&mut out[..n * d], hd, |i, o| {
        let (t, h) = (i / cfg.n_head, i % cfg.n_head);
        let len = pos0 + t + 1;
        let mut scores = vec![0.0f32; len];
        let mut qh = vec![0.0f32; hd];
        for (a, &b) in qh.iter_mut().zip(&q[t * d + h * hd..t * d + (h + 1) * hd]) {
            *a = round(b);
        }
        let kvo = (h / group) * hd;
        for (p, sc) in scores.iter_mut().enumerate() {
            *sc = dot_kv(&qh, &kc[p * kv_dim + kvo..p * kv_dim + kvo + hd]) * scale;
        }
        softmax(&mut scores);
        o.iter_mut().for_each(|a| *a = 0.0);
        for (p, &w) in scores.iter().enumerate() {
            let w = round(w);
            let vr = &vc[p * kv_dim + kvo..p * kv_dim + kvo + hd];
            let (oc, vc) = (o.chunks_exact_mut(8), vr.chunks_exact(8));
            let (orest, vrest) = (oc.len() * 8, vc.len() * 8);
            for (a, b) in oc.zip(vc) {
                let b = T::load8(b.try_into().unwrap_or(&[T::default(); 8]));
                for (a, b) in a.iter_mut().zip(b) {
                    *a += w * b;
                }
            }
            for (a, b) in o[orest..].iter_mut().zip(&vr[vrest..]) {
                *a += w * b.load();
            }
        }
    });
}

/// `q · k` with element `j` added into lane `j mod 8`, the lanes then summed pairwise
/// (`(l0+l4)+(l2+l6)` + `(l1+l5)+(l3+l7)`): a fixed order that vectorizes, the same on every target.
#[inline(always)]
fn dot_kv<T: KvElem>(q: &[f32], k: &[T]) -> f32 {
    let mut l = [0.0f32; 8];
    let (qc, kc) = (q.chunks_exact(8), k.chunks_exact(8));
    let rest = qc.len().min(kc.len()) * 8;
    for (a, b) in qc.zip(kc) {
        let b = T::load8(b.try_into().unwrap_or(&[T::default(); 8]));
        for j in 0..8 {
            l[j] += a[j] * b[j];
        }
    }
    for (j, (a, b)) in q[rest..].iter().zip(&k[rest..]).enumerate() {
        l[j] += a * b.load();
    }
    ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}
