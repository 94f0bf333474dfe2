//! AVX2 versions of the dot products for the 32-wide block types (f32 and int8 activations).
//!
//! Each computes exactly the operations of `vec_dot_f32_scalar`, in the same order: a block's
//! values are expanded to f32 (`d·q (+ m)`), multiplied by `x` and added into 32 lanes held as
//! four 8-wide vectors, with no fused multiply-add; `hsum` is `reduce32`. Several token rows
//! share each expanded block (prefill), each with its own accumulators. A test asserts
//! bit-identical results. Compiled only when the target has AVX2 (`.cargo/config.toml`).

use super::{q8_term, BlockQ8, GgmlType, QK};
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

/// The f16 pair at `p` (`d`, then `m`; for types without `m`, whatever follows `d`), each
/// broadcast to eight f32 lanes: one 4-byte broadcast load and one conversion, rather than a
/// scalar conversion per scale, which cost as much as the rest of a block's work.
#[inline(always)]
unsafe fn scales(p: *const u8) -> (__m256, __m256) {
    let dm = _mm256_cvtph_ps(_mm_set1_epi32((p as *const i32).read_unaligned()));
    (_mm256_shuffle_ps(dm, dm, 0b00_00_00_00), _mm256_shuffle_ps(dm, dm, 0b01_01_01_01))
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
        let (d, m) = scales(b.as_ptr());
        nibbles(b.as_ptr().add(4)).map(|qi| _mm256_add_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(qi)), m))
    })
}

pub fn dot_q4_0(row: &[u8], x: &[f32], cols: usize, out: &mut [f32]) {
    batch(row, x, cols, out, GgmlType::Q4_0.type_size(), |b| unsafe {
        let d = scales(b.as_ptr()).0;
        let eight = _mm256_set1_epi32(8);
        nibbles(b.as_ptr().add(2)).map(|qi| _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(qi, eight))))
    })
}

/// The 32 quants (0–31) of a Q5_0/Q5_1 block as bytes in element order: the nibbles at `p`
/// (low ones elements 0–15, high ones 16–31) with bit `j` of the 32-bit `qh` at `h` as element
/// `j`'s fifth bit (each byte picks its `qh` byte with a shuffle and tests its own bit).
#[inline(always)]
unsafe fn q5_bytes(p: *const u8, h: *const u8) -> __m256i {
    let v = _mm_loadu_si128(p as *const __m128i);
    let nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
    let qh = _mm256_set1_epi32((h as *const i32).read_unaligned());
    #[rustfmt::skip]
    let pick = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(qh, pick), bit), bit);
    _mm256_or_si256(nib, _mm256_and_si256(set, _mm256_set1_epi8(0x10)))
}

/// 32 unsigned bytes → four vectors of their values as i32, in order.
#[inline(always)]
unsafe fn u8x32_to_i32(q: __m256i) -> [__m256i; 4] {
    let (lo, hi) = (_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    [
        _mm256_cvtepu8_epi32(lo),
        _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)),
        _mm256_cvtepu8_epi32(hi),
        _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)),
    ]
}

/// IQ4_NL's 16 levels as the bytes of one vector, for `_mm_shuffle_epi8` lookups.
#[inline(always)]
unsafe fn iq4nl_table() -> __m128i {
    _mm_loadu_si128(super::IQ4NL_VALUES.as_ptr() as *const __m128i)
}

/// The 32 values of an IQ4_NL block's nibbles at `p` as i8 (low nibbles: elements 0–15).
#[inline(always)]
unsafe fn iq4nl_bytes(p: *const u8) -> (__m128i, __m128i) {
    let v = _mm_loadu_si128(p as *const __m128i);
    let mask = _mm_set1_epi8(0x0F);
    let t = iq4nl_table();
    (
        _mm_shuffle_epi8(t, _mm_and_si128(v, mask)),
        _mm_shuffle_epi8(t, _mm_and_si128(_mm_srli_epi16(v, 4), mask)),
    )
}

pub fn dot_q5_0(row: &[u8], x: &[f32], cols: usize, out: &mut [f32]) {
    batch(row, x, cols, out, GgmlType::Q5_0.type_size(), |b| unsafe {
        let d = scales(b.as_ptr()).0;
        let sixteen = _mm256_set1_epi32(16);
        u8x32_to_i32(q5_bytes(b.as_ptr().add(6), b.as_ptr().add(2)))
            .map(|qi| _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(qi, sixteen))))
    })
}

pub fn dot_q5_1(row: &[u8], x: &[f32], cols: usize, out: &mut [f32]) {
    batch(row, x, cols, out, GgmlType::Q5_1.type_size(), |b| unsafe {
        let (d, m) = scales(b.as_ptr());
        u8x32_to_i32(q5_bytes(b.as_ptr().add(8), b.as_ptr().add(4)))
            .map(|qi| _mm256_add_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(qi)), m))
    })
}

pub fn dot_iq4_nl(row: &[u8], x: &[f32], cols: usize, out: &mut [f32]) {
    batch(row, x, cols, out, GgmlType::IQ4NL.type_size(), |b| unsafe {
        let d = scales(b.as_ptr()).0;
        let (lo, hi) = iq4nl_bytes(b.as_ptr().add(2));
        [lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)]
            .map(|q| _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))))
    })
}

pub fn dot_q8_0(row: &[u8], x: &[f32], cols: usize, out: &mut [f32]) {
    batch(row, x, cols, out, GgmlType::Q8_0.type_size(), |b| unsafe {
        let d = scales(b.as_ptr()).0;
        let p = b.as_ptr().add(2);
        [0, 8, 16, 24].map(|o| {
            let q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.add(o) as *const __m128i));
            _mm256_mul_ps(d, _mm256_cvtepi32_ps(q))
        })
    })
}

// ---- int8 activations (`Numerics::LlamaCpp`) ----
//
// Each block's integer dot is computed with `maddubs` (u8·i8 pairs summed in i16: at most
// 2·128·127, no saturation) and `madd` (pairs of i16 into i32); eight blocks' eight lanes are then
// summed across in one transpose. Integer sums are exact in any order, and every block's float
// term is `q8_term`, added in block order: the result is bit-identical to `vec_dot_q8_scalar`.

/// Σ q[j]·a[j] over 32 (u8, i8) pairs, as eight i32 lanes.
#[inline(always)]
unsafe fn mul_sum_u8_i8(q: __m256i, a: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), _mm256_set1_epi16(1))
}

/// 16 nibble bytes at `p` against `y.qs`: low nibbles meet `qs[0..16]`, high ones `qs[16..32]`.
#[inline(always)]
unsafe fn isum_nibbles(p: *const u8, y: &BlockQ8) -> __m256i {
    let v = _mm_loadu_si128(p as *const __m128i);
    let q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
    mul_sum_u8_i8(q, _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i))
}

/// 32 i8 quants at `p` against `y.qs`.
#[inline(always)]
unsafe fn isum_i8(p: *const u8, y: &BlockQ8) -> __m256i {
    isum_signed(_mm256_loadu_si256(p as *const __m256i), y)
}

/// 32 signed values `w` against `y.qs` (|w| as u8 times a with w's sign: exact for w = −128 too).
#[inline(always)]
unsafe fn isum_signed(w: __m256i, y: &BlockQ8) -> __m256i {
    let a = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
    mul_sum_u8_i8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w))
}

/// The eight lane sums of eight vectors, in order.
#[inline(always)]
unsafe fn hsum_8x8(p: [__m256i; 8]) -> __m256i {
    let a = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    let b = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    // a = [Σlo p0..p3 | Σhi p0..p3], b likewise for p4..p7
    _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31))
}

#[inline(always)]
unsafe fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01)))
}

/// The f32 terms of eight consecutive blocks (at `row`, `ts` bytes apart, and `a[0..8]`) from
/// their integer sums: `q8_term` lane-wise, the same operations in the same order.
#[inline(always)]
unsafe fn q8_terms8(ty: GgmlType, s: __m256i, row: *const u8, ts: i32, a: *const BlockQ8) -> __m256 {
    let step = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    // (d | m << 16) of each weight block, then both halves converted from f16
    let w = _mm256_i32gather_epi32::<1>(row as *const i32, _mm256_mullo_epi32(step, _mm256_set1_epi32(ts)));
    let dm = _mm256_packus_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0xFFFF)), _mm256_srli_epi32(w, 16));
    let dm = _mm256_permute4x64_epi64(dm, 0b11_01_10_00); // [d0..d7 | m0..m7]
    let d = _mm256_cvtph_ps(_mm256_castsi256_si128(dm));
    let qa = _mm256_mullo_epi32(step, _mm256_set1_epi32(std::mem::size_of::<BlockQ8>() as i32));
    let base = a as *const u8;
    let yd = _mm256_i32gather_ps::<1>(base.add(std::mem::offset_of!(BlockQ8, d)) as *const f32, qa);
    match ty {
        GgmlType::Q4_1 | GgmlType::Q5_1 => {
            let m = _mm256_cvtph_ps(_mm256_extracti128_si256(dm, 1));
            let ys = _mm256_i32gather_ps::<1>(base.add(std::mem::offset_of!(BlockQ8, s)) as *const f32, qa);
            _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(d, yd), _mm256_cvtepi32_ps(s)), _mm256_mul_ps(m, ys))
        }
        GgmlType::Q4_0 => {
            let sum =
                _mm256_i32gather_epi32::<1>(base.add(std::mem::offset_of!(BlockQ8, sum)) as *const i32, qa);
            let s = _mm256_sub_epi32(s, _mm256_slli_epi32(sum, 3));
            _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d, yd))
        }
        GgmlType::Q5_0 => {
            let sum =
                _mm256_i32gather_epi32::<1>(base.add(std::mem::offset_of!(BlockQ8, sum)) as *const i32, qa);
            let s = _mm256_sub_epi32(s, _mm256_slli_epi32(sum, 4));
            _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d, yd))
        }
        _ => _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d, yd)),
    }
}

/// `Σ_blocks q8_term(ty, isum(block, a[block]), …)` in block order, the integer sums of eight
/// blocks reduced together and their terms computed eight at a time.
#[inline(always)]
fn q8_blocks(ty: GgmlType, row: &[u8], a: &[BlockQ8], isum: impl Fn(*const u8, &BlockQ8) -> __m256i) -> f32 {
    let ts = ty.type_size();
    let nb = (row.len() / ts).min(a.len());
    let mut acc = 0.0f32;
    let mut i = 0;
    // SAFETY: AVX2 is enabled for the whole build; every `isum` reads inside block i + k < nb of
    // `row` (ts bytes each) and its activation block.
    unsafe {
        while i + 8 <= nb {
            let s = hsum_8x8(std::array::from_fn(|k| isum(row.as_ptr().add((i + k) * ts), &a[i + k])));
            let mut t = [0.0f32; 8];
            _mm256_storeu_ps(
                t.as_mut_ptr(),
                q8_terms8(ty, s, row.as_ptr().add(i * ts), ts as i32, a.as_ptr().add(i)),
            );
            for t in t {
                acc += t;
            }
            i += 8;
        }
        for k in i..nb {
            let s = hsum_i32(isum(row.as_ptr().add(k * ts), &a[k]));
            acc += q8_term(ty, s, &row[k * ts..(k + 1) * ts], &a[k]);
        }
    }
    acc
}

/// `vec_dot_q8_scalar` for the 32-wide block types (0 for other types). Each arm names its type
/// as a constant so the inlined block loop is specialised for it. Q5 quants (0–31) go through
/// `maddubs` as unsigned bytes like nibbles (pair sums at most 2·31·128); IQ4_NL's table values
/// (−127…113) as signed ones like Q8_0's.
pub fn q8_dot(ty: GgmlType, row: &[u8], a: &[BlockQ8]) -> f32 {
    match ty {
        GgmlType::Q8_0 => q8_blocks(GgmlType::Q8_0, row, a, |p, y| unsafe { isum_i8(p.add(2), y) }),
        GgmlType::Q4_0 => q8_blocks(GgmlType::Q4_0, row, a, |p, y| unsafe { isum_nibbles(p.add(2), y) }),
        GgmlType::Q4_1 => q8_blocks(GgmlType::Q4_1, row, a, |p, y| unsafe { isum_nibbles(p.add(4), y) }),
        GgmlType::Q5_0 => q8_blocks(GgmlType::Q5_0, row, a, |p, y| unsafe {
            let a = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
            mul_sum_u8_i8(q5_bytes(p.add(6), p.add(2)), a)
        }),
        GgmlType::Q5_1 => q8_blocks(GgmlType::Q5_1, row, a, |p, y| unsafe {
            let a = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
            mul_sum_u8_i8(q5_bytes(p.add(8), p.add(4)), a)
        }),
        GgmlType::IQ4NL => q8_blocks(GgmlType::IQ4NL, row, a, |p, y| unsafe {
            let (lo, hi) = iq4nl_bytes(p.add(2));
            isum_signed(_mm256_set_m128i(hi, lo), y)
        }),
        _ => 0.0,
    }
}
