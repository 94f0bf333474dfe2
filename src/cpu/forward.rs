//! The reference forward pass: one explicit op sequence per architecture over a batch of tokens
//! (a prefill chunk, or one token when decoding), with a KV cache.
//!
//! The KV cache holds f16 like llama.cpp's default, and grows in steps of [`KV_STEP`] positions up
//! to the context length, so a short generation never pays for an 8k context.

use super::matmul::{matmul, ActBufs, Input};
use super::ops::{
    add_assign, gelu_llamacpp, gelu_tanh, layer_norm, rms_norm, rms_norm_in_place, rope_ext, silu, softmax,
};
use super::{par_chunks, Numerics};
use crate::error::{Error, Result};
use crate::model::ops::{Act, Activation, NormKind, Ops, Rope};
use crate::model::{Attention, Config, FeedForward, Linear, Matrix, Model, Norm};
use crate::quant::{dequantize, GgmlType};
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
    /// residual stream, normed copy, queries: `[n, n_embd]`, `[n, n_embd]`, `[n, q_dim]`
    x: Vec<f32>,
    xb: Vec<f32>,
    q: Vec<f32>,
    /// keys and values `[n, kv_dim]`
    k: Vec<f32>,
    v: Vec<f32>,
    /// attention's output `[n, q_dim]`
    att: Vec<f32>,
    /// a fused projection's output before it is split `[n, q_dim + 2·kv_dim]`
    qkv: Vec<f32>,
    /// feed-forward hidden `[n, n_ff]` (and the up half `[n, n_ff]`, or a stacked `[n, 2·n_ff]`)
    hb: Vec<f32>,
    hb2: Vec<f32>,
    /// a product's output before it is added to the residual stream `[n, n_embd]`
    o: Vec<f32>,
    /// the activations in the forms llama.cpp's products take (`Numerics::LlamaCpp`)
    acts: ActBufs,
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
    if pos0 + n > model.max_positions() {
        return Err(Error::ContextFull { used: pos0 + n, ctx: model.max_positions() });
    }
    cache.reserve(pos0 + n);
    let (d, q_dim, kv_dim) = (cfg.n_embd, cfg.q_dim(), cfg.kv_dim());
    for (b, w) in [(&mut s.x, d), (&mut s.xb, d), (&mut s.o, d), (&mut s.q, q_dim), (&mut s.att, q_dim)] {
        b.resize(n * w, 0.0);
    }
    s.k.resize(n * kv_dim, 0.0);
    s.v.resize(n * kv_dim, 0.0);
    let mut ops = CpuOps { cfg, cache, s, tokens, pos0, which, numerics, n_vocab: model.n_vocab };
    model.forward(&mut ops)?;
    cache.len = pos0 + n;
    Ok(())
}

/// The CPU backend of the ops seam: each call runs at once over the batch.
struct CpuOps<'a> {
    cfg: &'a Config,
    cache: &'a mut KvCache,
    s: &'a mut Scratch,
    tokens: &'a [u32],
    pos0: usize,
    which: Logits,
    numerics: Numerics,
    n_vocab: usize,
}

impl Scratch {
    fn buf(&mut self, a: Act) -> &mut Vec<f32> {
        match a {
            Act::X => &mut self.x,
            Act::Xb => &mut self.xb,
            Act::Q => &mut self.q,
            Act::K => &mut self.k,
            Act::V => &mut self.v,
            Act::Att => &mut self.att,
            Act::Hb => &mut self.hb,
            Act::O => &mut self.o,
        }
    }

    /// `y = W·x + b`, `y` of width `l.w.rows` (`y` may not be `x`).
    fn product(&mut self, l: &Linear, x: Act, y: &mut Vec<f32>, numerics: Numerics) -> Result<()> {
        let xs = std::mem::take(self.buf(x));
        let n = xs.len() / l.w.cols;
        y.resize(n * l.w.rows, 0.0);
        let inp = Input::new(&xs, n, l.w.cols, numerics, l.w.ty, &mut self.acts);
        matmul(&l.w, l.b.as_deref(), &inp, y, &mut self.tmp);
        *self.buf(x) = xs;
        Ok(())
    }
}

impl<'m> Ops<'m> for CpuOps<'_> {
    fn embed(&mut self, table: &Matrix, scale: f32) -> Result<()> {
        let d = self.cfg.n_embd;
        for (t, &tok) in self.tokens.iter().enumerate() {
            let xr = &mut self.s.x[t * d..(t + 1) * d];
            dequantize(table.ty, table.row(tok as usize), xr);
            if scale != 1.0 {
                xr.iter_mut().for_each(|v| *v *= scale);
            }
        }
        Ok(())
    }

    fn add_positions(&mut self, table: &Matrix) -> Result<()> {
        let d = self.cfg.n_embd;
        for t in 0..self.tokens.len() {
            let p = &mut self.s.o[t * d..(t + 1) * d];
            dequantize(table.ty, table.row(self.pos0 + t), p);
            add_assign(&mut self.s.x[t * d..(t + 1) * d], p);
        }
        Ok(())
    }

    fn norm(&mut self, kind: NormKind, n: &Norm, eps: f32, x: Act, out: Act) -> Result<()> {
        if out == x {
            return match kind {
                NormKind::Rms => self.head_norm(n, eps, x),
                NormKind::Layer => Err(Error::State("a LayerNorm in place".into())),
            };
        }
        let xs = std::mem::take(self.s.buf(x));
        normalize(kind, &xs, n, eps, self.s.buf(out));
        *self.s.buf(x) = xs;
        Ok(())
    }

    fn head_norm(&mut self, n: &Norm, eps: f32, x: Act) -> Result<()> {
        rms_norm_in_place(self.s.buf(x), n, eps);
        Ok(())
    }

    fn qkv(&mut self, attn: &Attention, x: Act) -> Result<()> {
        let (q_dim, kv_dim) = (self.cfg.q_dim(), self.cfg.kv_dim());
        let s = &mut *self.s;
        match attn {
            Attention::Separate { q, k, v } => {
                for (l, out) in [(q, Act::Q), (k, Act::K), (v, Act::V)] {
                    let mut y = std::mem::take(s.buf(out));
                    s.product(l, x, &mut y, self.numerics)?;
                    *s.buf(out) = y;
                }
            }
            Attention::Fused(qkv) => {
                let mut y = std::mem::take(&mut s.qkv);
                s.product(qkv, x, &mut y, self.numerics)?;
                let w = q_dim + 2 * kv_dim;
                for (t, row) in y.chunks_exact(w).enumerate() {
                    s.q[t * q_dim..(t + 1) * q_dim].copy_from_slice(&row[..q_dim]);
                    s.k[t * kv_dim..(t + 1) * kv_dim].copy_from_slice(&row[q_dim..q_dim + kv_dim]);
                    s.v[t * kv_dim..(t + 1) * kv_dim].copy_from_slice(&row[q_dim + kv_dim..]);
                }
                s.qkv = y;
            }
        }
        Ok(())
    }

    fn rope_and_store(&mut self, layer: usize, r: Option<Rope<'m>>) -> Result<()> {
        let (hd, pos0) = (self.cfg.head_dim, self.pos0);
        if let Some(r) = r {
            for (t, row) in self.s.q.chunks_exact_mut(self.cfg.q_dim()).enumerate() {
                for h in row.chunks_exact_mut(hd) {
                    rope_ext(h, pos0 + t, &r);
                }
            }
            for (t, row) in self.s.k.chunks_exact_mut(self.cfg.kv_dim()).enumerate() {
                for h in row.chunks_exact_mut(hd) {
                    rope_ext(h, pos0 + t, &r);
                }
            }
        }
        let at = pos0 * self.cfg.kv_dim();
        match &mut self.cache.store {
            KvStore::F16 { k, v } => append(&mut k[layer], &mut v[layer], &self.s.k, &self.s.v, at),
            KvStore::F32 { k, v } => append(&mut k[layer], &mut v[layer], &self.s.k, &self.s.v, at),
        }
        Ok(())
    }

    fn attention(&mut self, layer: usize, window: Option<usize>) -> Result<()> {
        let (s, at) =
            (&mut *self.s, Span { cfg: self.cfg, pos0: self.pos0, window, numerics: self.numerics });
        match &self.cache.store {
            KvStore::F16 { k, v } => attention(&at, &s.q, &k[layer], &v[layer], &mut s.att),
            KvStore::F32 { k, v } => attention(&at, &s.q, &k[layer], &v[layer], &mut s.att),
        }
        Ok(())
    }

    fn add(&mut self, x: Act, y: Act) -> Result<()> {
        let xs = std::mem::take(self.s.buf(x));
        add_assign(self.s.buf(y), &xs);
        *self.s.buf(x) = xs;
        Ok(())
    }

    fn linear(&mut self, l: &Linear, x: Act, y: Act) -> Result<()> {
        let mut out = std::mem::take(self.s.buf(y));
        self.s.product(l, x, &mut out, self.numerics)?;
        *self.s.buf(y) = out;
        Ok(())
    }

    fn linear_add(&mut self, l: &Linear, x: Act, y: Act) -> Result<()> {
        let mut o = std::mem::take(&mut self.s.o);
        self.s.product(l, x, &mut o, self.numerics)?;
        add_assign(self.s.buf(y), &o);
        self.s.o = o;
        Ok(())
    }

    fn ffn_up(&mut self, act: Activation, ffn: &FeedForward, x: Act, y: Act) -> Result<()> {
        let gated = !matches!(ffn, FeedForward::Plain { .. });
        let f = match act {
            Activation::Silu => silu,
            // llama.cpp's gated GELU reads an f16 table (its plain GELU, GPT-2's, is computed
            // as written: float models compute exactly in both numerics)
            Activation::GeluTanh if gated && self.numerics == Numerics::LlamaCpp => gelu_llamacpp,
            Activation::GeluTanh => gelu_tanh,
        };
        let s = &mut *self.s;
        let mut hb = std::mem::take(s.buf(y));
        match ffn {
            FeedForward::Gated { gate, up } => {
                let mut hb2 = std::mem::take(&mut s.hb2);
                s.product(gate, x, &mut hb, self.numerics)?;
                s.product(up, x, &mut hb2, self.numerics)?;
                for (g, u) in hb.iter_mut().zip(&hb2) {
                    *g = f(*g) * u;
                }
                s.hb2 = hb2;
            }
            FeedForward::GatedStacked(gate_up) => {
                let mut gu = std::mem::take(&mut s.hb2);
                s.product(gate_up, x, &mut gu, self.numerics)?;
                let ff = gate_up.w.rows / 2;
                hb.resize(gu.len() / 2, 0.0);
                for (h, row) in hb.chunks_exact_mut(ff).zip(gu.chunks_exact(2 * ff)) {
                    for (o, (g, u)) in h.iter_mut().zip(row[..ff].iter().zip(&row[ff..])) {
                        *o = f(*g) * u;
                    }
                }
                s.hb2 = gu;
            }
            FeedForward::Plain { up } => {
                s.product(up, x, &mut hb, self.numerics)?;
                hb.iter_mut().for_each(|g| *g = f(*g));
            }
        }
        *s.buf(y) = hb;
        Ok(())
    }

    fn logits(&mut self, kind: NormKind, n: &Norm, eps: f32, head: &Matrix) -> Result<()> {
        let (d, len) = (self.cfg.n_embd, self.tokens.len());
        let (first, rows) = match self.which {
            Logits::None => return Ok(()),
            Logits::Last => (len - 1, 1),
            Logits::All => (0, len),
        };
        let s = &mut *self.s;
        normalize(kind, &s.x[first * d..(first + rows) * d], n, eps, &mut s.xb[..rows * d]);
        s.logits.resize(rows * self.n_vocab, 0.0);
        let inp = Input::new(&s.xb[..rows * d], rows, d, self.numerics, head.ty, &mut s.acts);
        matmul(head, None, &inp, &mut s.logits, &mut s.tmp);
        Ok(())
    }
}

fn append<T: KvElem>(kc: &mut [T], vc: &mut [T], k: &[f32], v: &[f32], at: usize) {
    for (dst, src) in kc[at..at + k.len()].iter_mut().zip(k) {
        *dst = T::store(*src);
    }
    for (dst, src) in vc[at..at + v.len()].iter_mut().zip(v) {
        *dst = T::store(*src);
    }
}

/// `out = norm(x)` row by row, RMSNorm or LayerNorm.
fn normalize(kind: NormKind, x: &[f32], n: &Norm, eps: f32, out: &mut [f32]) {
    match kind {
        NormKind::Rms => rms_norm(x, n, eps, out),
        NormKind::Layer => layer_norm(x, n, eps, out),
    }
}

/// Where one attention call looks: the batch's first position, the sliding window if any.
struct Span<'a> {
    cfg: &'a Config,
    pos0: usize,
    window: Option<usize>,
    numerics: Numerics,
}

/// `out[t, h] = softmax(q[t,h]·K[lo..=pos0+t, kvh] · scale) · V[.., kvh]` with `kvh = h / group`
/// (consecutive query heads share a KV head, as ggml broadcasts), `lo` 0 or the window's start.
fn attention<T: KvElem>(at: &Span, q: &[f32], kc: &[T], vc: &[T], out: &mut [f32]) {
    let (cfg, pos0, numerics) = (at.cfg, at.pos0, at.numerics);
    // llama.cpp's flash attention rounds the query and the softmax weights to the cache type
    let round = |x: f32| if numerics == Numerics::LlamaCpp { T::round_operand(x) } else { x };
    let (d, kv_dim, hd) = (cfg.q_dim(), cfg.kv_dim(), cfg.head_dim);
    let group = cfg.n_head / cfg.n_head_kv;
    // llama.cpp rounds the query to f16 before its product with the keys, after scaling it
    // where its graph scales the queries (Phi-3, Gemma 3); scaling by 1 is exact
    let (q_scale, s_scale) = match numerics == Numerics::LlamaCpp && cfg.attn_q_scaled {
        true => (cfg.attn_scale, 1.0),
        false => (1.0, cfg.attn_scale),
    };
    let n = out.len() / d;
    // one task per (token, head): decode has a single token, so heads are the parallelism
    par_chunks(&mut out[..n * d], hd, |i, o| {
        let (t, h) = (i / cfg.n_head, i % cfg.n_head);
        let len = pos0 + t + 1;
        // a sliding window sees its last `window` positions (llama.cpp masks p_q − p_k ≥ window)
        let lo = at.window.map_or(0, |w| len.saturating_sub(w));
        let mut scores = vec![0.0f32; len - lo];
        let mut qh = vec![0.0f32; hd];
        for (a, &b) in qh.iter_mut().zip(&q[t * d + h * hd..t * d + (h + 1) * hd]) {
            *a = round(b * q_scale);
        }
        let kvo = (h / group) * hd;
        for (p, sc) in (lo..len).zip(scores.iter_mut()) {
            *sc = dot_kv(&qh, &kc[p * kv_dim + kvo..p * kv_dim + kvo + hd]) * s_scale;
        }
        softmax(&mut scores);
        o.iter_mut().for_each(|a| *a = 0.0);
        for (p, &w) in (lo..len).zip(&scores) {
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
