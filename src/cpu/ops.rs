//! Element-wise and row ops of the forward pass, written plainly: this is the reference the GPU
//! kernels are tested against. Reductions accumulate in f64 where ggml does (norms), so results
//! track llama.cpp's closely. Transcendental functions come from the `libm` crate, so native
//! and wasm builds compute the same bits (the platform's libm and wasm's differ in the last bit).

use crate::model::ops::Rope;
use crate::model::{Norm, RopeStyle};

/// RMSNorm of each row of `x` (`[n, d]`) into `out`: `x / sqrt(mean(x²) + eps) · w`.
pub fn rms_norm(x: &[f32], norm: &Norm, eps: f32, out: &mut [f32]) {
    let d = norm.w.len();
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let scale = rms_scale(xr, eps);
        for ((o, &v), &w) in or.iter_mut().zip(xr).zip(&norm.w) {
            *o = (v * scale) * w;
        }
    }
}

/// [`rms_norm`] of each row of `x` where it is (per-head norms, Gemma's post-norms): the row's
/// scale is taken before any of it is written, so the values are the same.
pub fn rms_norm_in_place(x: &mut [f32], norm: &Norm, eps: f32) {
    let d = norm.w.len();
    for xr in x.chunks_exact_mut(d) {
        let scale = rms_scale(xr, eps);
        for (v, &w) in xr.iter_mut().zip(&norm.w) {
            *v = (*v * scale) * w;
        }
    }
}

/// `1 / sqrt(mean(x²) + eps)`, the sum of squares in f64 as ggml does.
fn rms_scale(xr: &[f32], eps: f32) -> f32 {
    let ss: f64 = xr.iter().map(|&v| (v as f64) * (v as f64)).sum();
    1.0 / ((ss / xr.len() as f64) as f32 + eps).sqrt()
}

/// LayerNorm of each row: `(x − mean) / sqrt(var + eps) · w + b`.
pub fn layer_norm(x: &[f32], norm: &Norm, eps: f32, out: &mut [f32]) {
    let d = norm.w.len();
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let mean = (xr.iter().map(|&v| v as f64).sum::<f64>() / d as f64) as f32;
        let var: f64 = xr.iter().map(|&v| ((v - mean) as f64).powi(2)).sum::<f64>() / d as f64;
        let scale = 1.0 / (var as f32 + eps).sqrt();
        for (i, (o, &v)) in or.iter_mut().zip(xr).enumerate() {
            let b = norm.b.as_ref().map_or(0.0, |b| b[i]);
            *o = (v - mean) * scale * norm.w[i] + b;
        }
    }
}

/// Rotary position embedding on one head vector `x` (`head_dim`) at position `pos`, without
/// factors or scaling.
pub fn rope(x: &mut [f32], pos: usize, rope_dims: usize, base: f32, style: RopeStyle) {
    let r = Rope { dims: rope_dims, base, style, factors: None, freq_scale: 1.0, attn_factor: 1.0 };
    rope_ext(x, pos, &r);
}

/// Rotary position embedding as ggml's `rope_ext` computes it (without YaRN's ramp): θ₀ = pos,
/// θᵢ₊₁ = θᵢ · base^(−2/rope_dims); pair i turns by `freq_scale · θᵢ / factors[i]`, and cos and
/// sin are scaled by `attn_factor`. With no factors and both scales 1 every step is exact, so
/// the plain rotation's bits are unchanged.
pub fn rope_ext(x: &mut [f32], pos: usize, r: &Rope) {
    let theta_scale = libm::powf(r.base, -2.0 / r.dims as f32);
    let mut theta = pos as f32;
    let half = r.dims / 2;
    for i in 0..half {
        let ff = r.factors.map_or(1.0, |f| f[i]);
        let t = r.freq_scale * (theta / ff);
        let (c, s) = (libm::cosf(t) * r.attn_factor, libm::sinf(t) * r.attn_factor);
        let (a, b) = match r.style {
            RopeStyle::Interleaved => (2 * i, 2 * i + 1),
            RopeStyle::Neox => (i, i + half),
        };
        let (x0, x1) = (x[a], x[b]);
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
        theta *= theta_scale;
    }
}

pub fn silu(x: f32) -> f32 {
    x / (1.0 + libm::expf(-x))
}

/// GELU as llama.cpp's CPU backend computes it in its gated form (GeGLU, `ggml_vec_geglu_f32`
/// with `GGML_GELU_FP16`): 0 below −10, x above 10, else a table of f16 results looked up by the
/// input rounded to f16, the tanh form written as ggml writes it (`x·(1 + a·x²)`).
pub fn gelu_llamacpp(x: f32) -> f32 {
    use half::f16;
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const A: f32 = 0.044715;
    if x <= -10.0 {
        return 0.0;
    }
    if x >= 10.0 {
        return x;
    }
    let h = f16::from_f32(x).to_f32();
    let g = 0.5 * h * (1.0 + libm::tanhf(SQRT_2_OVER_PI * h * (1.0 + A * h * h)));
    f16::from_f32(g).to_f32()
}

/// GPT-2's tanh approximation of GELU.
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + libm::tanhf(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
}

/// In-place softmax.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        *v = libm::expf(*v - max);
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

pub fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
