//! Tensor element types, GGML block layouts, reference dequantizers and the int8 dot products
//! the CPU forward pass runs on.
//!
//! Why int8 activations: llama.cpp quantizes activations to 32-wide int8 blocks (Q8_0 / Q8_1)
//! before its dot products. Doing the same here is both faster (integer multiply-adds vectorize;
//! the per-block scale work is amortised) and keeps our logits close to llama.cpp's, which is what
//! the golden tests compare against. The dequantizers are the scalar specification: they are
//! compared bit-for-bit with PyPI `gguf`'s `dequantize`, in the same f32 operation order (no FMA).
//!
//! Block layouts (little-endian, `d`/`m`/`dmin` are IEEE f16):
//! - Q4_0 (32 el, 18 B): `d`, `qs[16]`; x[j] = d·(lo(qs[j])−8), x[j+16] = d·(hi(qs[j])−8)
//! - Q4_1 (32 el, 20 B): `d`, `m`, `qs[16]`; x = d·q + m
//! - Q8_0 (32 el, 34 B): `d`, `qs[32]` as i8; x = d·q
//! - Q4_K (256 el, 144 B): `d`, `dmin`, `scales[12]` (eight 6-bit scale/min pairs), `qs[128]`
//! - Q6_K (256 el, 210 B): `ql[128]`, `qh[64]`, `scales[16]` as i8, `d`; x = d·sc·(q−32)

use crate::error::{Error, Result};
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
mod avx2;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;

use half::{bf16, f16};

/// GGML tensor types we read. Discriminants are GGUF's type ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q8_0 = 8,
    Q4K = 12,
    Q6K = 14,
    BF16 = 30,
}

pub const QK: usize = 32;
pub const QK_K: usize = 256;

impl GgmlType {
    pub const ALL: [GgmlType; 8] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q4K,
        GgmlType::Q6K,
    ];

    /// Maps a GGUF type id; `None` for ids we do not support (the caller names the tensor).
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| *t as u32 == id)
    }

    /// Human name used in errors, for ids we may not support.
    pub fn name_of_id(id: u32) -> String {
        let known = [
            (6, "Q5_0"),
            (7, "Q5_1"),
            (9, "Q8_1"),
            (10, "Q2_K"),
            (11, "Q3_K"),
            (13, "Q5_K"),
            (15, "Q8_K"),
            (16, "IQ2_XXS"),
            (17, "IQ2_XS"),
            (18, "IQ3_XXS"),
            (19, "IQ1_S"),
            (20, "IQ4_NL"),
            (21, "IQ3_S"),
            (22, "IQ2_S"),
            (23, "IQ4_XS"),
            (24, "I8"),
            (25, "I16"),
            (26, "I32"),
            (27, "I64"),
            (28, "F64"),
            (29, "IQ1_M"),
        ];
        match Self::from_id(id) {
            Some(t) => t.name().to_string(),
            None => match known.iter().find(|(k, _)| *k == id) {
                Some((_, n)) => n.to_string(),
                None => format!("unknown type id {id}"),
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::BF16 => "BF16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q4K => "Q4_K",
            GgmlType::Q6K => "Q6_K",
        }
    }

    /// Elements per block.
    pub fn block_size(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 => QK,
            GgmlType::Q4K | GgmlType::Q6K => QK_K,
        }
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q8_0 => 34,
            GgmlType::Q4K => 144,
            GgmlType::Q6K => 210,
        }
    }

    pub fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// Bytes of a row of `n` elements; errors if `n` is not a whole number of blocks.
    pub fn row_bytes(self, n: u64) -> Result<u64> {
        let bs = self.block_size() as u64;
        if !n.is_multiple_of(bs) {
            return Err(Error::malformed(
                format!("{} row", self.name()),
                format!("{n} elements is not a multiple of the block size {bs}"),
            ));
        }
        (n / bs)
            .checked_mul(self.type_size() as u64)
            .ok_or_else(|| Error::limit("row size in bytes", u64::MAX, u64::MAX))
    }
}

#[inline(always)]
pub(crate) fn f16_at(b: &[u8], i: usize) -> f32 {
    f16_bits(u16::from_le_bytes([b[i], b[i + 1]]))
}

/// The value of the f16 `bits`, the fastest exact way on each target: natively `half` converts
/// with F16C; wasm has no conversion instruction, and `half`'s branchy software one cost a third
/// of a token's time in the browser, so there it is [`f16_to_f32`].
#[inline(always)]
pub(crate) fn f16_bits(bits: u16) -> f32 {
    #[cfg(target_arch = "wasm32")]
    return f16_to_f32(bits);
    #[cfg(not(target_arch = "wasm32"))]
    f16::from_bits(bits).to_f32()
}

/// Eight f16 values as f32, exactly ([`f16_bits`] lane by lane; SIMD128 in wasm).
#[inline(always)]
pub fn f16x8_bits(h: &[u16; 8]) -> [f32; 8] {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd128::f16x8_to_f32(h);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    h.map(f16_bits)
}

/// f16 → f32 in four integer/float operations, exact for every value: the exponent and mantissa
/// shifted into f32 position read as a number 2^-112 too small (f16 subnormals land on f32
/// subnormals, which wasm computes exactly), scaled by 2^112; infinities and NaN keep an
/// all-ones exponent.
#[inline(always)]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn f16_to_f32(h: u16) -> f32 {
    let sign = (h as u32 & 0x8000) << 16;
    let em = h as u32 & 0x7FFF;
    let magnitude = if em >= 0x7C00 {
        f32::from_bits((em << 13) | 0x7F80_0000)
    } else {
        f32::from_bits(em << 13) * f32::from_bits(0x7780_0000) // 2^112
    };
    f32::from_bits(magnitude.to_bits() | sign)
}

/// Q4_K packs eight 6-bit (scale, min) pairs into 12 bytes; this unpacks pair `j`.
#[inline]
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Dequantizes `src` (whole blocks of `ty`) into `dst`; `dst.len()` elements are produced.
/// The caller guarantees `src.len() == ty.row_bytes(dst.len())`.
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    let bs = ty.block_size();
    let ts = ty.type_size();
    debug_assert_eq!(src.len() / ts * bs, dst.len());
    match ty {
        GgmlType::F32 => {
            for (o, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *o = f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
            }
        }
        GgmlType::BF16 => {
            for (o, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *o = bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
            }
        }
        GgmlType::Q4_0 => deq_blocks(dst, src, ts, bs, deq_q4_0),
        GgmlType::Q4_1 => deq_blocks(dst, src, ts, bs, deq_q4_1),
        GgmlType::Q8_0 => deq_blocks(dst, src, ts, bs, deq_q8_0),
        GgmlType::Q4K => deq_blocks(dst, src, ts, bs, deq_q4_k),
        GgmlType::Q6K => deq_blocks(dst, src, ts, bs, deq_q6_k),
    }
}

#[inline(always)]
fn deq_blocks(dst: &mut [f32], src: &[u8], ts: usize, bs: usize, deq: impl Fn(&[u8], &mut [f32])) {
    for (y, b) in dst.chunks_exact_mut(bs).zip(src.chunks_exact(ts)) {
        deq(b, y);
    }
}

// One block each: `b` is the block's bytes, `y` its `block_size` values.

#[inline(always)]
fn deq_q4_0(b: &[u8], y: &mut [f32]) {
    let (Ok(b), Ok(y)) = (<&[u8; 18]>::try_from(b), <&mut [f32; 32]>::try_from(y)) else { return };
    let d = f16_at(b, 0);
    for j in 0..16 {
        y[j] = d * ((b[2 + j] & 0xF) as i32 - 8) as f32;
        y[j + 16] = d * ((b[2 + j] >> 4) as i32 - 8) as f32;
    }
}

#[inline(always)]
fn deq_q4_1(b: &[u8], y: &mut [f32]) {
    let (Ok(b), Ok(y)) = (<&[u8; 20]>::try_from(b), <&mut [f32; 32]>::try_from(y)) else { return };
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let (lo, hi) = y.split_at_mut(16);
    for j in 0..16 {
        lo[j] = d * (b[4 + j] & 0xF) as f32 + m;
        hi[j] = d * (b[4 + j] >> 4) as f32 + m;
    }
}

#[inline(always)]
fn deq_q8_0(b: &[u8], y: &mut [f32]) {
    let (Ok(b), Ok(y)) = (<&[u8; 34]>::try_from(b), <&mut [f32; 32]>::try_from(y)) else { return };
    let d = f16_at(b, 0);
    for j in 0..QK {
        y[j] = d * (b[2 + j] as i8) as f32;
    }
}

#[inline(always)]
fn deq_q4_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qs = &b[16..144];
    for g in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * g, scales);
        let (sc2, m2) = scale_min_k4(2 * g + 1, scales);
        let (d1, mm1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, mm2) = (d * sc2 as f32, dmin * m2 as f32);
        let q = &qs[32 * g..32 * g + 32];
        for l in 0..32 {
            y[64 * g + l] = d1 * (q[l] & 0xF) as f32 - mm1;
            y[64 * g + 32 + l] = d2 * (q[l] >> 4) as f32 - mm2;
        }
    }
}

#[inline(always)]
fn deq_q6_k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 208);
    for half in 0..2 {
        let ql = &b[64 * half..64 * half + 64];
        let qh = &b[128 + 32 * half..128 + 32 * half + 32];
        let sc = &b[192 + 8 * half..192 + 8 * half + 8];
        let y = &mut y[128 * half..128 * half + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

/// One 32-wide block of int8-quantized activations (llama.cpp's Q8_1): `x ≈ d·qs`.
/// `d` and `s = d·Σqs` are rounded through f16 as llama.cpp stores them; `sum` is Σqs, exact.
#[derive(Clone, Copy, Debug)]
#[repr(C)] // the AVX2 dots gather `d`, `s` and `sum` at fixed offsets
pub struct BlockQ8 {
    pub d: f32,
    pub s: f32,
    pub sum: i32,
    pub qs: [i8; QK],
}

impl Default for BlockQ8 {
    fn default() -> Self {
        BlockQ8 { d: 0.0, s: 0.0, sum: 0, qs: [0; QK] }
    }
}

/// Quantizes `x` (length a multiple of 32) into `out` blocks as llama.cpp's x86
/// `quantize_row_q8_1` does: scale by 127/amax, round half to even.
pub fn quantize_q8(x: &[f32], out: &mut [BlockQ8]) {
    for (b, xs) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let amax = xs.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, x) in b.qs.iter_mut().zip(xs) {
            let r = (x * id).round_ties_even() as i32;
            *q = r as i8;
            sum += r;
        }
        b.d = f16::from_f32(d).to_f32();
        // `s` from the f16-rounded `d`: of the variants tried, this tracks llama.cpp's logits
        // best on the golden prompts (mean |Δlogit| 0.10 against 0.22 with the unrounded `d`)
        b.s = f16::from_f32(b.d * sum as f32).to_f32();
        b.sum = sum;
    }
}

#[inline(always)]
fn dot_i8(a: &[i8; QK], b: &[i8; QK]) -> i32 {
    let mut s = 0i32;
    for j in 0..QK {
        s += a[j] as i32 * b[j] as i32;
    }
    s
}

/// Σ lo-nibble·a[0..16] + hi-nibble·a[16..32] for a 16-byte nibble array.
#[inline(always)]
fn dot_nibbles(qs: &[u8], a: &[i8; QK]) -> i32 {
    let qs: &[u8; 16] = match qs.try_into() {
        Ok(q) => q,
        Err(_) => return 0,
    };
    let mut s = 0i32;
    for j in 0..16 {
        s += (qs[j] & 0xF) as i32 * a[j] as i32 + (qs[j] >> 4) as i32 * a[j + 16] as i32;
    }
    s
}

/// Dot product of one quantized weight row (`row` holds whole blocks of `ty`, `ty` quantized)
/// with int8 activations `a` (one `BlockQ8` per 32 elements).
pub fn vec_dot_q8(ty: GgmlType, row: &[u8], a: &[BlockQ8]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    match ty {
        GgmlType::Q4_0 => return simd128::q8_dot_q4_0(row, a),
        GgmlType::Q4_1 => return simd128::q8_dot_q4_1(row, a),
        GgmlType::Q8_0 => return simd128::q8_dot_q8_0(row, a),
        _ => {}
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    if matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0) {
        return avx2::q8_dot(ty, row, a);
    }
    vec_dot_q8_scalar(ty, row, a)
}

/// The plain-Rust specification of [`vec_dot_q8`] (natively LLVM vectorizes its integer sums;
/// in wasm it does not, hence `simd128.rs`).
pub fn vec_dot_q8_scalar(ty: GgmlType, row: &[u8], a: &[BlockQ8]) -> f32 {
    let ts = ty.type_size();
    match ty {
        GgmlType::Q8_0 => {
            q8_blocks(row, a, ts, |b, y| q8_term(ty, dot_i8(bytemuck_i8(&b[2..34]), &y.qs), b, y))
        }
        GgmlType::Q4_0 => q8_blocks(row, a, ts, |b, y| q8_term(ty, dot_nibbles(&b[2..18], &y.qs), b, y)),
        GgmlType::Q4_1 => q8_blocks(row, a, ts, |b, y| q8_term(ty, dot_nibbles(&b[4..20], &y.qs), b, y)),
        GgmlType::Q4K => {
            let mut acc = 0.0f32;
            for (b, y) in row.chunks_exact(ts).zip(a.chunks_exact(QK_K / QK)) {
                let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
                let scales = &b[4..16];
                for g in 0..4 {
                    let q = &b[16 + 32 * g..16 + 32 * g + 32];
                    let (ya, yb) = (&y[2 * g], &y[2 * g + 1]);
                    let (mut sa, mut sb) = (0i32, 0i32);
                    for ((&qb, &a), &b) in q.iter().zip(&ya.qs).zip(&yb.qs) {
                        sa += (qb & 0xF) as i32 * a as i32;
                        sb += (qb >> 4) as i32 * b as i32;
                    }
                    let (sc1, m1) = scale_min_k4(2 * g, scales);
                    let (sc2, m2) = scale_min_k4(2 * g + 1, scales);
                    acc += d * (sc1 as f32 * ya.d * sa as f32 + sc2 as f32 * yb.d * sb as f32);
                    acc -= dmin * (m1 as f32 * ya.d * ya.sum as f32 + m2 as f32 * yb.d * yb.sum as f32);
                }
            }
            acc
        }
        GgmlType::Q6K => {
            let mut acc = 0.0f32;
            for (b, y) in row.chunks_exact(ts).zip(a.chunks_exact(QK_K / QK)) {
                let d = f16_at(b, 208);
                for half in 0..2 {
                    let ql = &b[64 * half..64 * half + 64];
                    let qh = &b[128 + 32 * half..128 + 32 * half + 32];
                    let sc = &b[192 + 8 * half..192 + 8 * half + 8];
                    let ys = &y[4 * half..4 * half + 4];
                    // sums[k][h]: activation block k (quarter of the 128 chunk), scale half h
                    let mut sums = [[0i32; 2]; 4];
                    for l in 0..32 {
                        let q = [
                            ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32,
                            ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32,
                            ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32,
                            ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32,
                        ];
                        for k in 0..4 {
                            sums[k][l / 16] += q[k] * ys[k].qs[l] as i32;
                        }
                    }
                    for k in 0..4 {
                        let s = (sc[2 * k] as i8) as f32 * sums[k][0] as f32
                            + (sc[2 * k + 1] as i8) as f32 * sums[k][1] as f32;
                        acc += d * ys[k].d * s;
                    }
                }
            }
            acc
        }
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 0.0,
    }
}

/// `Σ_blocks term(block, activation block)`, added in block order from 0.
#[inline(always)]
pub(crate) fn q8_blocks(row: &[u8], a: &[BlockQ8], ts: usize, term: impl Fn(&[u8], &BlockQ8) -> f32) -> f32 {
    let mut acc = 0.0f32;
    for (b, y) in row.chunks_exact(ts).zip(a) {
        acc += term(b, y);
    }
    acc
}

/// One 32-wide block's contribution to an int8 dot, given `isum`, the integer dot of its quants
/// (nibbles unsigned) with `y.qs`. The SIMD versions compute the integer sums however they like
/// (they are exact) and then exactly these float operations, so they are bit-identical.
#[inline(always)]
pub(crate) fn q8_term(ty: GgmlType, isum: i32, b: &[u8], y: &BlockQ8) -> f32 {
    match ty {
        GgmlType::Q8_0 => (isum as f32) * (f16_at(b, 0) * y.d),
        GgmlType::Q4_0 => ((isum - 8 * y.sum) as f32) * (f16_at(b, 0) * y.d),
        GgmlType::Q4_1 => (f16_at(b, 0) * y.d) * isum as f32 + f16_at(b, 2) * y.s,
        _ => 0.0,
    }
}

/// Dot product of one weight row (any type; whole blocks) with f32 activations `x`.
///
/// Quantized blocks are expanded to f32 and multiplied lane-wise into 32 partial sums (lane `j`
/// takes elements `32i + j`, no fused multiply-add), which [`reduce32`] combines in a fixed tree.
/// The SIMD versions (AVX2 natively, SIMD128 in wasm) compute exactly these operations in this
/// order, so the result is bit-identical with and without SIMD, natively and in wasm, at any
/// thread count.
pub fn vec_dot_f32(ty: GgmlType, row: &[u8], x: &[f32]) -> f32 {
    let mut out = [0.0f32];
    vec_dot_f32_rows(ty, row, x, x.len(), &mut out);
    out[0]
}

/// `out[t] = vec_dot_f32(ty, row, &x[t·cols..(t + 1)·cols])` for every `t < out.len()`, with each
/// block expanded once for several token rows (a prefill batch), not once per row. Each row's
/// sums take the same operations in the same order, so the results are bit-identical.
pub fn vec_dot_f32_rows(ty: GgmlType, row: &[u8], x: &[f32], cols: usize, out: &mut [f32]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    match ty {
        GgmlType::Q4_0 => return avx2::dot_q4_0(row, x, cols, out),
        GgmlType::Q4_1 => return avx2::dot_q4_1(row, x, cols, out),
        GgmlType::Q8_0 => return avx2::dot_q8_0(row, x, cols, out),
        _ => {}
    }
    for (t, o) in out.iter_mut().enumerate() {
        *o = x.get(t * cols..(t + 1) * cols).map_or(0.0, |xt| vec_dot_f32_one(ty, row, xt));
    }
}

/// One row against one token's activations, where no batched SIMD version exists: SIMD128 in
/// wasm (row by row: see `simd128.rs`), the scalar specification elsewhere.
fn vec_dot_f32_one(ty: GgmlType, row: &[u8], x: &[f32]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    match ty {
        GgmlType::Q4_0 => return simd128::dot_q4_0(row, x),
        GgmlType::Q4_1 => return simd128::dot_q4_1(row, x),
        GgmlType::Q8_0 => return simd128::dot_q8_0(row, x),
        _ => {}
    }
    vec_dot_f32_scalar(ty, row, x)
}

/// The plain-Rust specification of [`vec_dot_f32`].
pub fn vec_dot_f32_scalar(ty: GgmlType, row: &[u8], x: &[f32]) -> f32 {
    let ts = ty.type_size();
    match ty {
        GgmlType::Q4_0 => return dot_blocks::<QK>(row, x, ts, deq_q4_0),
        GgmlType::Q4_1 => return dot_blocks::<QK>(row, x, ts, deq_q4_1),
        GgmlType::Q8_0 => return dot_blocks::<QK>(row, x, ts, deq_q8_0),
        GgmlType::Q4K => return dot_blocks::<QK_K>(row, x, ts, deq_q4_k),
        GgmlType::Q6K => return dot_blocks::<QK_K>(row, x, ts, deq_q6_k),
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {}
    }
    // eight partial sums so the loop vectorizes without reassociating a single chain
    let mut acc = [0.0f32; 8];
    match ty {
        GgmlType::F32 => {
            for (c, xs) in row.chunks_exact(32).zip(x.chunks_exact(8)) {
                for k in 0..8 {
                    let w = f32::from_le_bytes([c[4 * k], c[4 * k + 1], c[4 * k + 2], c[4 * k + 3]]);
                    acc[k] += w * xs[k];
                }
            }
            let tail = x.len() / 8 * 8;
            for i in tail..x.len() {
                let c = &row[4 * i..4 * i + 4];
                acc[0] += f32::from_le_bytes([c[0], c[1], c[2], c[3]]) * x[i];
            }
        }
        GgmlType::F16 | GgmlType::BF16 => {
            let conv = |lo: u8, hi: u8| {
                let bits = u16::from_le_bytes([lo, hi]);
                if ty == GgmlType::F16 {
                    f16::from_bits(bits).to_f32()
                } else {
                    bf16::from_bits(bits).to_f32()
                }
            };
            for (c, xs) in row.chunks_exact(16).zip(x.chunks_exact(8)) {
                for k in 0..8 {
                    acc[k] += conv(c[2 * k], c[2 * k + 1]) * xs[k];
                }
            }
            let tail = x.len() / 8 * 8;
            for i in tail..x.len() {
                acc[0] += conv(row[2 * i], row[2 * i + 1]) * x[i];
            }
        }
        _ => {}
    }
    acc.iter().sum()
}

#[inline(always)]
fn dot_blocks<const BS: usize>(row: &[u8], x: &[f32], ts: usize, deq: fn(&[u8], &mut [f32])) -> f32 {
    let mut acc = [0.0f32; 32];
    let mut y = [0.0f32; BS];
    for (b, xs) in row.chunks_exact(ts).zip(x.chunks_exact(BS)) {
        deq(b, &mut y);
        for (yc, xc) in y.chunks_exact(32).zip(xs.chunks_exact(32)) {
            for j in 0..32 {
                acc[j] += yc[j] * xc[j];
            }
        }
    }
    reduce32(&acc)
}

/// Sums 32 lanes as four 8-wide vectors would: `(l0 + l1) + (l2 + l3)` lane-wise, then the
/// 8 lanes halved twice (`s[k] + s[k + 4]`, then `+ [k + 2]`), then the last pair.
#[inline(always)]
pub fn reduce32(l: &[f32; 32]) -> f32 {
    let mut s = [0.0f32; 8];
    for k in 0..8 {
        s[k] = (l[k] + l[8 + k]) + (l[16 + k] + l[24 + k]);
    }
    let t = [s[0] + s[4], s[1] + s[5], s[2] + s[6], s[3] + s[7]];
    let u = [t[0] + t[2], t[1] + t[3]];
    u[0] + u[1]
}

#[inline(always)]
fn bytemuck_i8(b: &[u8]) -> &[i8; QK] {
    // SAFETY: u8 and i8 have identical size and alignment; callers pass exactly 32 bytes.
    let arr: &[u8; QK] = b.try_into().unwrap_or(&[0u8; QK]);
    unsafe { &*(arr as *const [u8; QK] as *const [i8; QK]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_to_f32_is_exact_for_every_value() {
        for h in 0..=u16::MAX {
            let (got, want) = (f16_to_f32(h), f16::from_bits(h).to_f32());
            if want.is_nan() {
                assert!(got.is_nan(), "{h:#06x}: {got} is not NaN");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{h:#06x}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn block_sizes_are_ggml_sizes() {
        // 2-byte halves + payload, as static_assert'ed in ggml-common.h
        assert_eq!(GgmlType::Q4_0.type_size(), 2 + QK / 2);
        assert_eq!(GgmlType::Q4_1.type_size(), 4 + QK / 2);
        assert_eq!(GgmlType::Q8_0.type_size(), 2 + QK);
        assert_eq!(GgmlType::Q4K.type_size(), 4 + 12 + QK_K / 2);
        assert_eq!(GgmlType::Q6K.type_size(), QK_K / 2 + QK_K / 4 + QK_K / 16 + 2);
    }

    #[test]
    fn quantized_dots_match_dequantized_dot() {
        // seeded pseudo-random blocks of every quantized type
        let mut seed = 0x9E3779B97F4A7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let n = 512;
        let x: Vec<f32> = (0..n).map(|_| ((next() % 2000) as f32 / 1000.0) - 1.0).collect();
        let mut xq = vec![BlockQ8::default(); n / QK];
        quantize_q8(&x, &mut xq);
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4K, GgmlType::Q6K] {
            let nb = ty.row_bytes(n as u64).unwrap() as usize;
            let mut row: Vec<u8> = (0..nb).map(|_| next() as u8).collect();
            // keep f16 scales finite and small: overwrite each block's f16 fields
            let ts = ty.type_size();
            for b in row.chunks_exact_mut(ts) {
                let h = f16::from_f32(0.01).to_bits().to_le_bytes();
                match ty {
                    GgmlType::Q6K => b[208..210].copy_from_slice(&h),
                    GgmlType::Q4_1 | GgmlType::Q4K => {
                        b[0..2].copy_from_slice(&h);
                        b[2..4].copy_from_slice(&h);
                    }
                    _ => b[0..2].copy_from_slice(&h),
                }
            }
            let mut w = vec![0.0; n];
            dequantize(ty, &row, &mut w);
            let exact: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
            let f32_dot = vec_dot_f32(ty, &row, &x);
            assert!(
                (f32_dot - exact).abs() <= 1e-5 * exact.abs().max(1.0),
                "{}: {f32_dot} vs {exact}",
                ty.name()
            );
            let got = vec_dot_q8(ty, &row, &xq);
            let scale: f32 = w.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
            assert!(
                (got - exact).abs() <= 0.02 * scale + 1e-3,
                "{}: got {got} exact {exact} (scale {scale})",
                ty.name()
            );
        }
    }

    /// The types with a SIMD dot (AVX2 natively, SIMD128 in wasm: `tests/wasm_simd.rs`). Q4_K and
    /// Q6_K have none yet: `vec_dot_f32`/`vec_dot_q8` run the scalar specification itself for them,
    /// so comparing them here would compare the scalar code with itself.
    const SIMD_TYPES: [GgmlType; 3] = [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0];

    #[test]
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    fn avx2_and_batched_dots_are_bit_identical_to_the_scalar_specification() {
        let mut seed = 0x2545F4914F6CDD1Du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for ty in SIMD_TYPES {
            for blocks in [1usize, 7, 8, 18, 45] {
                let n = blocks * ty.block_size();
                let x: Vec<f32> = (0..n).map(|_| ((next() % 20001) as f32 / 1000.0) - 10.0).collect();
                let mut row: Vec<u8> = (0..blocks * ty.type_size()).map(|_| next() as u8).collect();
                for b in row.chunks_exact_mut(ty.type_size()) {
                    b[0..2].copy_from_slice(&f16::from_f32(0.0123).to_bits().to_le_bytes());
                    if ty == GgmlType::Q4_1 {
                        b[2..4].copy_from_slice(&f16::from_f32(-0.05).to_bits().to_le_bytes());
                    }
                }
                let (a, b) = (vec_dot_f32(ty, &row, &x), vec_dot_f32_scalar(ty, &row, &x));
                assert_eq!(a.to_bits(), b.to_bits(), "{} x{blocks}: simd {a} scalar {b}", ty.name());
                // int8 activations, including i8 weights of -128 and activations of ±127
                let mut xq = vec![BlockQ8::default(); n / QK];
                quantize_q8(&x, &mut xq);
                let (a, b) = (vec_dot_q8(ty, &row, &xq), vec_dot_q8_scalar(ty, &row, &xq));
                assert_eq!(a.to_bits(), b.to_bits(), "{} x{blocks}: int8 simd {a} scalar {b}", ty.name());
                // a batch of token rows (partial groups included) gives each row's own dot
                for rows in [1usize, 3, 4, 9] {
                    let xs: Vec<f32> =
                        (0..rows * n).map(|_| ((next() % 20001) as f32 / 1000.0) - 10.0).collect();
                    let mut got = vec![0.0f32; rows];
                    vec_dot_f32_rows(ty, &row, &xs, n, &mut got);
                    for (t, g) in got.iter().enumerate() {
                        let want = vec_dot_f32_scalar(ty, &row, &xs[t * n..(t + 1) * n]);
                        assert_eq!(g.to_bits(), want.to_bits(), "{} x{blocks} row {t} of {rows}", ty.name());
                    }
                }
            }
        }
    }
}
