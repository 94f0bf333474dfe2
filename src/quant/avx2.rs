//! AVX2 versions of the f32-activation dot products for the common 32-wide block types.
//!
//! Each computes exactly the operations of `vec_dot_f32_scalar`, in the same order: a block's
//! values are expanded to f32 (`d·q (+ m)`), multiplied by `x` and added into 32 lanes held as
//! four 8-wide vectors, with no fused multiply-add; `hsum` is `reduce32`. Several token rows
//! share each expanded block (prefill), each with its own accumulators. A test asserts
//! bit-identical results. Compiled only when the target has AVX2 (`.cargo/config.toml`).

use super::{f16_at, GgmlType, QK};
use std::arch::x86_64::*;

/// `reduce32` on four vectors holding lanes 0–7, 8–15, 16–23, 24–31.
#[inline(always)]
unsafe fn hsum(a: [__m256; 4]) -> f32 {
    let s = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
    let t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    let u = _mm_add_ps(t, _mm_movehl_ps(t, t));
    _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps(u, u, 1)))
}

/// Token rows a batched dot takes at once (their accumulators and one expanded block in registers).
const TB: usize = 4;

/// `out[t] = Σ_blocks (block values) · x[t·cols..]` for each token row `t < out.len()`: every
/// block of `ts` bytes is expanded once by `deq` and applied to up to [`TB`] rows, each into its
/// own four accumulators (the single-row dot is the n = 1 case, so the two are bit-identical).
#[inline(always)]
fn batch(row: &[u8], x: &[f32], cols: usize, out: &mut [f32], ts: usize, deq: impl Fn(&[u8]) -> [__m256; 4]) {
    let nb = row.len() / ts;
    if nb * QK > cols || x.len() < out.len() * cols {
        return out.fill(0.0);
    }
    for (g, o) in out.chunks_mut(TB).enumerate() {
        let t0 = g * TB;
        // SAFETY: AVX2 is enabled for the whole build (cfg on this module); every load reads
        // x[(t0 + t)·cols + 32·bi ..+ 32] with 32·(bi + 1) ≤ cols and t0 + t < out.len(), checked
        // above against x.len().
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 4]; TB];
            for (bi, b) in row.chunks_exact(ts).enumerate() {
                let y = deq(b);
                for (t, a) in acc.iter_mut().enumerate().take(o.len()) {
                    fmadd4(a, y, x.as_ptr().add((t0 + t) * cols + bi * QK));
                }
            }
            for (v, a) in o.iter_mut().zip(acc) {
                *v = hsum(a);
            }
        }
    }
}

/// `acc[k] += y[k] · x[8k..8k+8]`.
#[inline(always)]
unsafe fn fmadd4(acc: &mut [__m256; 4], y: [__m256; 4], x: *const f32) {
    for k in 0..4 {
        acc[k] = _mm256_add_ps(acc[k], _mm256_mul_ps(y[k], _mm256_loadu_ps(x.add(8 * k))));
    }
}

/// 16 packed nibble bytes → their 32 values as i32 vectors (low nibbles are elements 0–15).
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> [__m256i; 4] {
    let v = _mm_loadu_si128(p as *const __m128i);
    let mask = _mm_set1_epi8(0x0F);
    let lo = _mm_and_si128(v, mask);
    let hi = _mm_and_si128(_mm_srli_epi16(v, 4), mask);
    [
        _mm256_cvtepu8_epi32(lo),
        _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)),
        _mm256_cvtepu8_epi32(hi),
        _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)),
    ]
}

/// Q4_1 rows against `out.len()` token rows of `x` (`cols` apart).
pub fn dot_q4_1(row: &[u8], x: &[f32], cols: usize, out: &mut [f32]) {
    batch(row, x, cols, out, GgmlType::Q4_1.type_size(), |b| unsafe {
        let (d, m) = (_mm256_set1_ps(f16_at(b, 0)), _mm256_set1_ps(f16_at(b, 2)));
        nibbles(b.as_ptr().add(4)).map(|qi| _mm256_add_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(qi)), m))
    })
}

pub fn dot_q4_0(row: &[u8], x: &[f32], cols: usize, out: &mut [f32]) {
    batch(row, x, cols, out, GgmlType::Q4_0.type_size(), |b| unsafe {
        let d = _mm256_set1_ps(f16_at(b, 0));
        let eight = _mm256_set1_epi32(8);
        nibbles(b.as_ptr().add(2)).map(|qi| _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(qi, eight))))
    })
}

pub fn dot_q8_0(row: &[u8], x: &[f32], cols: usize, out: &mut [f32]) {
    batch(row, x, cols, out, GgmlType::Q8_0.type_size(), |b| unsafe {
        let d = _mm256_set1_ps(f16_at(b, 0));
        let p = b.as_ptr().add(2);
        [0, 8, 16, 24].map(|o| {
            let q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.add(o) as *const __m128i));
            _mm256_mul_ps(d, _mm256_cvtepi32_ps(q))
        })
    })
}
