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
//! - Q5_0 (32 el, 22 B): `d`, `qh[4]` (bit j: the fifth bit of element j), `qs[16]` (nibbles as
//!   Q4_0); x = d·(q−16)
//! - Q5_1 (32 el, 24 B): `d`, `m`, `qh[4]`, `qs[16]`; x = d·q + m
//! - Q8_0 (32 el, 34 B): `d`, `qs[32]` as i8; x = d·q
//! - IQ4_NL (32 el, 18 B): `d`, `qs[16]` (nibbles as Q4_0); x = d·KVALUES[q], a fixed
//!   non-linear table of 16 i8 values
//! - Q2_K (256 el, 84 B): `scales[16]` (4-bit scale | 4-bit min per 16 elements), `qs[64]`
//!   (2-bit), `d`, `dmin`; x = (d·sc)·q − dmin·m
//! - Q3_K (256 el, 110 B): `hmask[32]` (third bit, set meaning +0 and clear −4), `qs[64]`
//!   (low 2 bits), `scales[12]` (sixteen 6-bit scales, −32), `d`; x = (d·sc)·q
//! - Q4_K (256 el, 144 B): `d`, `dmin`, `scales[12]` (eight 6-bit scale/min pairs), `qs[128]`;
//!   x = (d·sc)·q − dmin·m per 32 elements
//! - Q5_K (256 el, 176 B): `d`, `dmin`, `scales[12]` as Q4_K, `qh[32]` (fifth bits), `qs[128]`
//! - Q6_K (256 el, 210 B): `ql[128]`, `qh[64]`, `scales[16]` as i8, `d`; x = d·sc·(q−32)
//!
//! In the 256-element K-quants, element `e` of a 2-bit field is bits `2s..2s+2` of byte
//! `32c + l` (`e = 128c + 32s + l`), and a bit-plane (`hmask`, Q5_K's `qh`) holds element
//! `32b + l` in bit `b` of byte `l`.
//!
//! Each weight type meets the activations in the form llama.cpp's CPU backend gives them
//! (`GgmlType::vec_dot_type`): 32-wide Q8_0/Q8_1 blocks ([`BlockQ8`]) for the 32-wide block
//! types, 256-wide Q8_K blocks ([`BlockQ8K`]: one f32 scale per 256 and the sums of each 16
//! quants) for the K-quants. The K-quant × Q8_K dots ([`vec_dot_q8k_scalar`]) follow llama.cpp's
//! reference (generic C) `ggml_vec_dot_*_q8_K` operation for operation: the weights' scales
//! applied to integer sums, the mins through `bsums`, the float terms in its order.

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
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q2K = 10,
    Q3K = 11,
    Q4K = 12,
    Q5K = 13,
    Q6K = 14,
    IQ4NL = 20,
    BF16 = 30,
}

pub const QK: usize = 32;
pub const QK_K: usize = 256;

/// The form a product's activations take for one weight type in the `LlamaCpp` numerics
/// ([`GgmlType::vec_dot_type`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VecDotType {
    /// f32, as they are
    F32,
    /// each value rounded to f16 (to nearest, ties to even)
    F16,
    /// 32-wide int8 blocks, [`BlockQ8`] ([`quantize_q8`])
    Q8,
    /// 256-wide int8 blocks, [`BlockQ8K`] ([`quantize_q8k`])
    Q8K,
}

impl GgmlType {
    pub const ALL: [GgmlType; 14] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::IQ4NL,
        GgmlType::Q2K,
        GgmlType::Q3K,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
    ];

    /// Maps a GGUF type id; `None` for ids we do not support (the caller names the tensor).
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| *t as u32 == id)
    }

    /// Human name used in errors, for ids we may not support.
    pub fn name_of_id(id: u32) -> String {
        let known = [
            (9, "Q8_1"),
            (15, "Q8_K"),
            (16, "IQ2_XXS"),
            (17, "IQ2_XS"),
            (18, "IQ3_XXS"),
            (19, "IQ1_S"),
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
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::IQ4NL => "IQ4_NL",
            GgmlType::Q2K => "Q2_K",
            GgmlType::Q3K => "Q3_K",
            GgmlType::Q4K => "Q4_K",
            GgmlType::Q5K => "Q5_K",
            GgmlType::Q6K => "Q6_K",
        }
    }

    /// Elements per block.
    pub fn block_size(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
            GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_0
            | GgmlType::IQ4NL => QK,
            GgmlType::Q2K | GgmlType::Q3K | GgmlType::Q4K | GgmlType::Q5K | GgmlType::Q6K => QK_K,
        }
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q5_0 => 22,
            GgmlType::Q5_1 => 24,
            GgmlType::Q8_0 => 34,
            GgmlType::IQ4NL => 18,
            GgmlType::Q2K => 84,
            GgmlType::Q3K => 110,
            GgmlType::Q4K => 144,
            GgmlType::Q5K => 176,
            GgmlType::Q6K => 210,
        }
    }

    /// Byte offsets of a quantized block's f16 fields: the scale `d` first, then the offset
    /// (`m` or `dmin`) where the type has one; empty for the float types. (For tests and tools
    /// that make random blocks with finite scales.)
    pub fn half_offsets(self) -> &'static [usize] {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => &[],
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 | GgmlType::IQ4NL => &[0],
            GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
            GgmlType::Q2K => &[80, 82],
            GgmlType::Q3K => &[108],
            GgmlType::Q6K => &[208],
        }
    }

    pub fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// What llama.cpp's CPU backend turns a product's f32 activations into before its dot
    /// products with weights of this type (its `vec_dot_type`), which the `LlamaCpp` numerics
    /// follow: 32-wide int8 blocks (Q8_0 / Q8_1) for the 32-wide block types, 256-wide Q8_K
    /// blocks for the K-quants, f16 for F16 weights. F32 and BF16 weights keep f32 activations
    /// here (llama.cpp rounds BF16's to bf16).
    pub fn vec_dot_type(self) -> VecDotType {
        match self {
            GgmlType::F32 | GgmlType::BF16 => VecDotType::F32,
            GgmlType::F16 => VecDotType::F16,
            GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_0
            | GgmlType::IQ4NL => VecDotType::Q8,
            GgmlType::Q2K | GgmlType::Q3K | GgmlType::Q4K | GgmlType::Q5K | GgmlType::Q6K => VecDotType::Q8K,
        }
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
        GgmlType::Q5_0 => deq_blocks(dst, src, ts, bs, deq_q5_0),
        GgmlType::Q5_1 => deq_blocks(dst, src, ts, bs, deq_q5_1),
        GgmlType::IQ4NL => deq_blocks(dst, src, ts, bs, deq_iq4_nl),
        GgmlType::Q2K => deq_blocks(dst, src, ts, bs, deq_q2_k),
        GgmlType::Q3K => deq_blocks(dst, src, ts, bs, deq_q3_k),
        GgmlType::Q4K => deq_blocks(dst, src, ts, bs, deq_q4_k),
        GgmlType::Q5K => deq_blocks(dst, src, ts, bs, deq_q5_k),
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

/// IQ4_NL's (and IQ4_XS's) 16 quantization levels, indexed by a 4-bit quant.
pub const IQ4NL_VALUES: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// The 32 quants of a Q5_0/Q5_1 block, 0–31: nibbles `qs` (low: elements 0–15, high: 16–31)
/// with bit `j` of `qh` (little-endian) as element `j`'s fifth bit.
#[inline(always)]
fn q5_quants(qh: &[u8], qs: &[u8]) -> [u8; QK] {
    let (Ok(qh), Ok(qs)) = (<&[u8; 4]>::try_from(qh), <&[u8; 16]>::try_from(qs)) else { return [0; QK] };
    let h = u32::from_le_bytes(*qh);
    let mut q = [0u8; QK];
    for j in 0..16 {
        q[j] = (qs[j] & 0xF) | (((h >> j) & 1) << 4) as u8;
        q[j + 16] = (qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4) as u8;
    }
    q
}

#[inline(always)]
fn deq_q5_0(b: &[u8], y: &mut [f32]) {
    let (Ok(b), Ok(y)) = (<&[u8; 22]>::try_from(b), <&mut [f32; 32]>::try_from(y)) else { return };
    let d = f16_at(b, 0);
    let q = q5_quants(&b[2..6], &b[6..22]);
    for j in 0..QK {
        y[j] = d * (q[j] as i32 - 16) as f32;
    }
}

#[inline(always)]
fn deq_q5_1(b: &[u8], y: &mut [f32]) {
    let (Ok(b), Ok(y)) = (<&[u8; 24]>::try_from(b), <&mut [f32; 32]>::try_from(y)) else { return };
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let q = q5_quants(&b[4..8], &b[8..24]);
    for j in 0..QK {
        y[j] = d * q[j] as f32 + m;
    }
}

#[inline(always)]
fn deq_iq4_nl(b: &[u8], y: &mut [f32]) {
    let (Ok(b), Ok(y)) = (<&[u8; 18]>::try_from(b), <&mut [f32; 32]>::try_from(y)) else { return };
    let d = f16_at(b, 0);
    for j in 0..16 {
        y[j] = d * IQ4NL_VALUES[(b[2 + j] & 0xF) as usize] as f32;
        y[j + 16] = d * IQ4NL_VALUES[(b[2 + j] >> 4) as usize] as f32;
    }
}

#[inline(always)]
fn deq_q2_k(b: &[u8], y: &mut [f32]) {
    let (Ok(b), Ok(y)) = (<&[u8; 84]>::try_from(b), <&mut [f32; QK_K]>::try_from(y)) else { return };
    let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
    for c in 0..2 {
        for s in 0..4 {
            for h in 0..2 {
                // sixteen elements 128c + 32s + 16h + l with one scale and min
                let sc = b[8 * c + 2 * s + h];
                let (dl, ml) = (d * (sc & 0xF) as f32, dmin * (sc >> 4) as f32);
                for l in 16 * h..16 * h + 16 {
                    let q = (b[16 + 32 * c + l] >> (2 * s)) & 3;
                    y[128 * c + 32 * s + l] = dl * q as f32 - ml;
                }
            }
        }
    }
}

/// Q3_K's sixteen 6-bit scales (as stored, 0–63) from its 12 scale bytes: the low four bits of
/// scale `j` are nibble `j / 8` of byte `j % 8`, the high two bits `2·(j / 4)` of byte `8 + j % 4`.
#[inline(always)]
fn q3_k_scales(sc: &[u8]) -> [i32; 16] {
    let Ok(sc) = <&[u8; 12]>::try_from(sc) else { return [0; 16] };
    std::array::from_fn(|j| {
        let lo = (sc[j % 8] >> (4 * (j / 8))) & 0xF;
        let hi = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
        (lo | (hi << 4)) as i32 - 32
    })
}

/// Q3_K's quant of element `128c + 32s + l`: 2 low bits from `qs`, minus 4 unless its `hmask` bit is set.
#[inline(always)]
fn q3_k_quant(b: &[u8; 110], c: usize, s: usize, l: usize) -> i32 {
    let low = ((b[32 + 32 * c + l] >> (2 * s)) & 3) as i32;
    let high = (b[l] >> (4 * c + s)) & 1;
    low - if high == 0 { 4 } else { 0 }
}

#[inline(always)]
fn deq_q3_k(b: &[u8], y: &mut [f32]) {
    let (Ok(b), Ok(y)) = (<&[u8; 110]>::try_from(b), <&mut [f32; QK_K]>::try_from(y)) else { return };
    let d = f16_at(b, 108);
    let sc = q3_k_scales(&b[96..108]);
    for c in 0..2 {
        for s in 0..4 {
            for l in 0..32 {
                let e = 128 * c + 32 * s + l;
                y[e] = (d * sc[e / 16] as f32) * q3_k_quant(b, c, s, l) as f32;
            }
        }
    }
}

#[inline(always)]
fn deq_q5_k(b: &[u8], y: &mut [f32]) {
    let (Ok(b), Ok(y)) = (<&[u8; 176]>::try_from(b), <&mut [f32; QK_K]>::try_from(y)) else { return };
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qh = &b[16..48];
    for g in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * g, scales);
        let (sc2, m2) = scale_min_k4(2 * g + 1, scales);
        let (d1, mm1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, mm2) = (d * sc2 as f32, dmin * m2 as f32);
        let q = &b[48 + 32 * g..80 + 32 * g];
        for l in 0..32 {
            let q1 = (q[l] & 0xF) | (((qh[l] >> (2 * g)) & 1) << 4);
            let q2 = (q[l] >> 4) | (((qh[l] >> (2 * g + 1)) & 1) << 4);
            y[64 * g + l] = d1 * q1 as f32 - mm1;
            y[64 * g + 32 + l] = d2 * q2 as f32 - mm2;
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

/// Σ q[j]·a[j] for 32 unsigned quants.
#[inline(always)]
fn dot_u8(q: &[u8; QK], a: &[i8; QK]) -> i32 {
    let mut s = 0i32;
    for j in 0..QK {
        s += q[j] as i32 * a[j] as i32;
    }
    s
}

/// Dot product of one quantized weight row (`row` holds whole blocks of `ty`, a 32-wide block
/// type: `ty.vec_dot_type()` is [`VecDotType::Q8`]) with int8 activations `a` (one `BlockQ8` per
/// 32 elements). 0 for other types.
pub fn vec_dot_q8(ty: GgmlType, row: &[u8], a: &[BlockQ8]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    match ty {
        GgmlType::Q4_0 => return simd128::q8_dot_q4_0(row, a),
        GgmlType::Q4_1 => return simd128::q8_dot_q4_1(row, a),
        GgmlType::Q5_0 => return simd128::q8_dot_q5_0(row, a),
        GgmlType::Q5_1 => return simd128::q8_dot_q5_1(row, a),
        GgmlType::Q8_0 => return simd128::q8_dot_q8_0(row, a),
        GgmlType::IQ4NL => return simd128::q8_dot_iq4_nl(row, a),
        _ => {}
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    if ty.block_size() == QK {
        return avx2::q8_dot(ty, row, a);
    }
    vec_dot_q8_scalar(ty, row, a)
}

/// [`vec_dot_q8`] of one weight row against a batch of token rows: `out[t]` for the activation
/// blocks `a[t·bpr..(t+1)·bpr]`, `t < out.len()`; bit-identical to calling it per token. In wasm
/// the 4-bit types unpack each weight block once for the whole batch (the prefill's products).
pub fn vec_dot_q8_rows(ty: GgmlType, row: &[u8], a: &[BlockQ8], bpr: usize, out: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if simd128::q8_rows(ty, row, a, bpr, out).is_some() {
        return;
    }
    for (t, v) in out.iter_mut().enumerate() {
        *v = a.get(t * bpr..(t + 1) * bpr).map_or(0.0, |y| vec_dot_q8(ty, row, y));
    }
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
        GgmlType::Q5_0 => {
            q8_blocks(row, a, ts, |b, y| q8_term(ty, dot_u8(&q5_quants(&b[2..6], &b[6..22]), &y.qs), b, y))
        }
        GgmlType::Q5_1 => {
            q8_blocks(row, a, ts, |b, y| q8_term(ty, dot_u8(&q5_quants(&b[4..8], &b[8..24]), &y.qs), b, y))
        }
        GgmlType::IQ4NL => q8_blocks(row, a, ts, |b, y| {
            let mut s = 0i32;
            for j in 0..16 {
                s += IQ4NL_VALUES[(b[2 + j] & 0xF) as usize] as i32 * y.qs[j] as i32
                    + IQ4NL_VALUES[(b[2 + j] >> 4) as usize] as i32 * y.qs[j + 16] as i32;
            }
            q8_term(ty, s, b, y)
        }),
        // the K-quants meet Q8_K activations (`vec_dot_q8k`), the float types none
        _ => 0.0,
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
/// (Q4/Q5 quants unsigned, IQ4_NL's as its table's values) with `y.qs`. The SIMD versions compute the integer sums however they like
/// (they are exact) and then exactly these float operations, so they are bit-identical.
#[inline(always)]
pub(crate) fn q8_term(ty: GgmlType, isum: i32, b: &[u8], y: &BlockQ8) -> f32 {
    match ty {
        GgmlType::Q8_0 | GgmlType::IQ4NL => (isum as f32) * (f16_at(b, 0) * y.d),
        GgmlType::Q4_0 => ((isum - 8 * y.sum) as f32) * (f16_at(b, 0) * y.d),
        GgmlType::Q5_0 => ((isum - 16 * y.sum) as f32) * (f16_at(b, 0) * y.d),
        GgmlType::Q4_1 | GgmlType::Q5_1 => (f16_at(b, 0) * y.d) * isum as f32 + f16_at(b, 2) * y.s,
        _ => 0.0,
    }
}

/// One 256-wide block of int8-quantized activations (llama.cpp's Q8_K, the K-quants'
/// `vec_dot_type`): `x ≈ d·qs`, with one f32 scale for the block and `bsums[j]` the sum of the
/// quants `16j..16j + 16`.
#[derive(Clone, Copy, Debug)]
pub struct BlockQ8K {
    pub d: f32,
    pub qs: [i8; QK_K],
    pub bsums: [i16; QK_K / 16],
}

impl Default for BlockQ8K {
    fn default() -> Self {
        BlockQ8K { d: 0.0, qs: [0; QK_K], bsums: [0; QK_K / 16] }
    }
}

/// Quantizes `x` (length a multiple of 256) into `out` blocks as llama.cpp's
/// `quantize_row_q8_K_ref`: the block's element of largest magnitude (the first, on ties) sets
/// `iscale = −127/max`, so it becomes −127; each quant is `iscale·x` rounded to nearest (ties
/// to even, as its `nearest_int`), at most 127; `d = 1/iscale` (of the opposite sign to `max`).
/// An all-zero block has `d = 0`.
pub fn quantize_q8k(x: &[f32], out: &mut [BlockQ8K]) {
    for (b, xs) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in xs {
            if v.abs() > amax {
                (amax, max) = (v.abs(), v);
            }
        }
        if amax == 0.0 {
            *b = BlockQ8K::default();
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in b.qs.iter_mut().zip(xs) {
            // |iscale·v| ≤ 127 up to rounding, so the cast never saturates
            *q = ((iscale * v).round_ties_even() as i32).min(127) as i8;
        }
        for (s, q) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
            *s = q.iter().map(|&q| q as i16).sum();
        }
        b.d = 1.0 / iscale;
    }
}

/// Dot product of one K-quant weight row (`row` holds whole blocks of `ty`, `ty.vec_dot_type()`
/// is [`VecDotType::Q8K`]) with Q8_K activations `a` (one [`BlockQ8K`] per 256 elements). 0 for
/// other types.
pub fn vec_dot_q8k(ty: GgmlType, row: &[u8], a: &[BlockQ8K]) -> f32 {
    vec_dot_q8k_scalar(ty, row, a)
}

/// The plain-Rust specification of [`vec_dot_q8k`]: llama.cpp's reference (generic C)
/// `ggml_vec_dot_qN_K_q8_K`, operation for operation. Integer sums are exact in any order; the
/// float operations, in their order:
/// - Q2_K, per block: `sumf += (y.d·d)·isum − (y.d·dmin)·summs`, `isum` = Σ of each 16
///   elements' 4-bit scale times their Σ q·a, `summs` = Σ of each 16's 4-bit min times its
///   `bsums`.
/// - Q3_K, Q4_K, Q5_K, Q6_K: each block's products `scale·q·a` summed in eight integer lanes
///   (element `e` into lane `e mod 8`), then per lane `sums[l] += (d·y.d)·lane[l]`; Q4_K and
///   Q5_K also `sumf −= (dmin·y.d)·Σ min·bsums` per block; at the end `sumf += sums[l]` for
///   `l` in 0..8.
pub fn vec_dot_q8k_scalar(ty: GgmlType, row: &[u8], a: &[BlockQ8K]) -> f32 {
    let ts = ty.type_size();
    let blocks = row.chunks_exact(ts).zip(a);
    match ty {
        GgmlType::Q2K => {
            let mut sumf = 0.0f32;
            for (b, y) in blocks {
                let sc = &b[..16];
                let mut summs = 0i32;
                for (&s, &m) in y.bsums.iter().zip(sc) {
                    summs += s as i32 * (m >> 4) as i32;
                }
                let (dall, dmin) = (y.d * f16_at(b, 80), y.d * f16_at(b, 82));
                // Σ of each 16 elements' 4-bit scale times their Σ q·a (exact in any order)
                let scales: [i32; 16] = std::array::from_fn(|j| (sc[j] & 0xF) as i32);
                let isum: i32 = lanes8(&q2_k_quants(b), &scales, &y.qs).iter().sum();
                sumf += dall * isum as f32 - dmin * summs as f32;
            }
            sumf
        }
        GgmlType::Q3K => q8k_lanes(blocks, |b, y| {
            let Ok(b) = <&[u8; 110]>::try_from(b) else { return Default::default() };
            (lanes8(&q3_k_quants(b), &q3_k_scales(&b[96..108]), &y.qs), f16_at(b, 108) * y.d, 0.0)
        }),
        GgmlType::Q4K => q8k_lanes(blocks, |b, y| {
            let (scales, mins) = k4_scales_mins(&b[4..16]);
            let m = mins_term(&mins, y, f16_at(b, 2));
            (lanes8(&q4_k_quants(&b[16..144]), &scales, &y.qs), f16_at(b, 0) * y.d, m)
        }),
        GgmlType::Q5K => q8k_lanes(blocks, |b, y| {
            let (scales, mins) = k4_scales_mins(&b[4..16]);
            let m = mins_term(&mins, y, f16_at(b, 2));
            (lanes8(&q5_k_quants(&b[16..48], &b[48..176]), &scales, &y.qs), f16_at(b, 0) * y.d, m)
        }),
        GgmlType::Q6K => q8k_lanes(blocks, |b, y| {
            let scales: [i32; 16] = std::array::from_fn(|j| b[192 + j] as i8 as i32);
            (lanes8(&q6_k_quants(b), &scales, &y.qs), f16_at(b, 208) * y.d, 0.0)
        }),
        _ => 0.0,
    }
}

/// A K-quant block's 256 quants in element order, as the integers its scales multiply: Q2_K's
/// 0–3 (element `128c + 32s + l`: bits `2s..2s + 2` of `qs[32c + l]`).
#[inline(always)]
fn q2_k_quants(b: &[u8]) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    let Some(qs) = b.get(16..80) else { return q };
    for (qc, qs) in q.chunks_exact_mut(128).zip(qs.chunks_exact(32)) {
        for (s, qcs) in qc.chunks_exact_mut(32).enumerate() {
            for (o, &v) in qcs.iter_mut().zip(qs) {
                *o = ((v >> (2 * s)) & 3) as i8;
            }
        }
    }
    q
}

/// Q3_K's quants, −4…3: two low bits as Q2_K's, minus 4 where the `hmask` bit `4c + s` of byte
/// `l` is clear.
#[inline(always)]
fn q3_k_quants(b: &[u8; 110]) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    let (hm, qs) = (&b[..32], &b[32..96]);
    for (c, (qc, qs)) in q.chunks_exact_mut(128).zip(qs.chunks_exact(32)).enumerate() {
        for (s, qcs) in qc.chunks_exact_mut(32).enumerate() {
            for ((o, &v), &h) in qcs.iter_mut().zip(qs).zip(hm) {
                let high = (h >> (4 * c + s)) & 1;
                *o = ((v >> (2 * s)) & 3) as i8 - 4 + 4 * high as i8;
            }
        }
    }
    q
}

/// Q4_K's quants, 0–15: elements `64g..64g + 32` the low nibbles of `qs[32g..32g + 32]`, the next
/// 32 the high ones.
#[inline(always)]
fn q4_k_quants(qs: &[u8]) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    for (qg, qs) in q.chunks_exact_mut(64).zip(qs.chunks_exact(32)) {
        let (lo, hi) = qg.split_at_mut(32);
        for ((l, h), &v) in lo.iter_mut().zip(hi).zip(qs) {
            *l = (v & 0xF) as i8;
            *h = (v >> 4) as i8;
        }
    }
    q
}

/// Q5_K's quants, 0–31: Q4_K's nibbles with bit `g` of `qh[l]` as the fifth bit of element
/// `32g + l`.
#[inline(always)]
fn q5_k_quants(qh: &[u8], qs: &[u8]) -> [i8; QK_K] {
    let mut q = q4_k_quants(qs);
    for (g, qg) in q.chunks_exact_mut(32).enumerate() {
        for (o, &h) in qg.iter_mut().zip(qh) {
            *o |= (((h >> g) & 1) << 4) as i8;
        }
    }
    q
}

/// Q6_K's quants, −32…31: in each half of 128, element `32k + l` takes the low (k < 2) or high
/// nibble of `ql[32·(k mod 2) + l]` and bits `2k..2k + 2` of `qh[l]` as its top two bits.
#[inline(always)]
fn q6_k_quants(b: &[u8]) -> [i8; QK_K] {
    let mut q = [0i8; QK_K];
    let (Some(ql), Some(qh)) = (b.get(..128), b.get(128..192)) else { return q };
    for ((half, ql), qh) in q.chunks_exact_mut(128).zip(ql.chunks_exact(64)).zip(qh.chunks_exact(32)) {
        for (k, qk) in half.chunks_exact_mut(32).enumerate() {
            let ql = &ql[32 * (k % 2)..32 * (k % 2) + 32];
            for ((o, &lo), &hi) in qk.iter_mut().zip(ql).zip(qh) {
                let low = if k < 2 { lo & 0xF } else { lo >> 4 };
                *o = (low | (((hi >> (2 * k)) & 3) << 4)) as i8 - 32;
            }
        }
    }
    q
}

/// Q4_K's and Q5_K's eight (scale, min) pairs, each for 32 elements, as sixteen scales (one per
/// 16 elements, each pair's scale twice) and the eight mins.
#[inline(always)]
fn k4_scales_mins(sc: &[u8]) -> ([i32; 16], [i32; 8]) {
    let pairs: [(u8, u8); 8] = std::array::from_fn(|j| scale_min_k4(j, sc));
    (std::array::from_fn(|j| pairs[j / 2].0 as i32), pairs.map(|p| p.1 as i32))
}

/// `(dmin·y.d)·Σ_j bsums[j]·min[j / 2]`, the offset a Q4_K/Q5_K block takes away.
#[inline(always)]
fn mins_term(mins: &[i32; 8], y: &BlockQ8K, dmin: f32) -> f32 {
    let mut sumi = 0i32;
    for (j, &s) in y.bsums.iter().enumerate() {
        sumi += s as i32 * mins[j / 2];
    }
    (dmin * y.d) * sumi as f32
}

/// `Σ_e scale[e / 16]·q[e]·a[e]` over a 256-element block, element `e` into lane `e mod 8`.
#[inline(always)]
fn lanes8(q: &[i8; QK_K], scales: &[i32; 16], a: &[i8; QK_K]) -> [i32; 8] {
    let mut lanes = [0i32; 8];
    for ((q, a), &s) in q.chunks_exact(16).zip(a.chunks_exact(16)).zip(scales) {
        for l in 0..16 {
            lanes[l % 8] += s * (q[l] as i32 * a[l] as i32);
        }
    }
    lanes
}

/// The float part shared by the Q3_K–Q6_K dots: `block` gives each block's eight integer lanes,
/// its scale `d·y.d` and its min term; the lanes are scaled into eight float sums, the min terms
/// taken away from `sumf` block by block, and the eight sums added to it last.
#[inline(always)]
fn q8k_lanes<'a>(
    blocks: impl Iterator<Item = (&'a [u8], &'a BlockQ8K)>,
    block: impl Fn(&[u8], &BlockQ8K) -> ([i32; 8], f32, f32),
) -> f32 {
    let (mut sums, mut sumf) = ([0.0f32; 8], 0.0f32);
    for (b, y) in blocks {
        let (lanes, d, m) = block(b, y);
        for (s, &l) in sums.iter_mut().zip(&lanes) {
            *s += d * l as f32;
        }
        sumf -= m;
    }
    for s in sums {
        sumf += s;
    }
    sumf
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
        GgmlType::Q5_0 => return avx2::dot_q5_0(row, x, cols, out),
        GgmlType::Q5_1 => return avx2::dot_q5_1(row, x, cols, out),
        GgmlType::Q8_0 => return avx2::dot_q8_0(row, x, cols, out),
        GgmlType::IQ4NL => return avx2::dot_iq4_nl(row, x, cols, out),
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
        GgmlType::Q5_0 => return simd128::dot_q5_0(row, x),
        GgmlType::Q5_1 => return simd128::dot_q5_1(row, x),
        GgmlType::Q8_0 => return simd128::dot_q8_0(row, x),
        GgmlType::IQ4NL => return simd128::dot_iq4_nl(row, x),
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
        GgmlType::Q5_0 => return dot_blocks::<QK>(row, x, ts, deq_q5_0),
        GgmlType::Q5_1 => return dot_blocks::<QK>(row, x, ts, deq_q5_1),
        GgmlType::Q8_0 => return dot_blocks::<QK>(row, x, ts, deq_q8_0),
        GgmlType::IQ4NL => return dot_blocks::<QK>(row, x, ts, deq_iq4_nl),
        GgmlType::Q2K => return dot_blocks::<QK_K>(row, x, ts, deq_q2_k),
        GgmlType::Q3K => return dot_blocks::<QK_K>(row, x, ts, deq_q3_k),
        GgmlType::Q4K => return dot_blocks::<QK_K>(row, x, ts, deq_q4_k),
        GgmlType::Q5K => return dot_blocks::<QK_K>(row, x, ts, deq_q5_k),
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
        assert_eq!(GgmlType::Q5_0.type_size(), 2 + 4 + QK / 2);
        assert_eq!(GgmlType::Q5_1.type_size(), 4 + 4 + QK / 2);
        assert_eq!(GgmlType::IQ4NL.type_size(), 2 + QK / 2);
        assert_eq!(GgmlType::Q2K.type_size(), 2 * 2 + QK_K / 16 + QK_K / 4);
        assert_eq!(GgmlType::Q3K.type_size(), 2 + QK_K / 4 + QK_K / 8 + 12);
        assert_eq!(GgmlType::Q4K.type_size(), 4 + 12 + QK_K / 2);
        assert_eq!(GgmlType::Q5K.type_size(), 4 + 12 + QK_K / 2 + QK_K / 8);
        assert_eq!(GgmlType::Q6K.type_size(), QK_K / 2 + QK_K / 4 + QK_K / 16 + 2);
        for ty in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(ty as u32), Some(ty));
            assert_eq!(GgmlType::name_of_id(ty as u32), ty.name());
            for &o in ty.half_offsets() {
                assert!(o + 2 <= ty.type_size(), "{}", ty.name());
            }
        }
        assert_eq!(GgmlType::name_of_id(23), "IQ4_XS");
        assert_eq!(GgmlType::from_id(23), None);
    }

    #[test]
    fn quantized_dots_match_dequantized_dot() {
        // seeded pseudo-random blocks of every quantized type
        let mut next = xorshift(0x9E3779B97F4A7C15u64);
        let n = 512;
        let x: Vec<f32> = (0..n).map(|_| ((next() % 2000) as f32 / 1000.0) - 1.0).collect();
        let mut xq = vec![BlockQ8::default(); n / QK];
        quantize_q8(&x, &mut xq);
        let mut xk = vec![BlockQ8K::default(); n / QK_K];
        quantize_q8k(&x, &mut xk);
        for ty in GgmlType::ALL.into_iter().filter(|t| t.is_quantized()) {
            let nb = ty.row_bytes(n as u64).unwrap() as usize;
            let mut row: Vec<u8> = (0..nb).map(|_| next() as u8).collect();
            // keep f16 scales finite and small: overwrite each block's f16 fields
            let ts = ty.type_size();
            for b in row.chunks_exact_mut(ts) {
                let h = f16::from_f32(0.01).to_bits().to_le_bytes();
                for &o in ty.half_offsets() {
                    b[o..o + 2].copy_from_slice(&h);
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
            let got = match ty.vec_dot_type() {
                VecDotType::Q8 => vec_dot_q8(ty, &row, &xq),
                _ => vec_dot_q8k(ty, &row, &xk),
            };
            let scale: f32 = w.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
            assert!(
                (got - exact).abs() <= 0.02 * scale + 1e-3,
                "{}: got {got} exact {exact} (scale {scale})",
                ty.name()
            );
        }
    }

    /// A seeded xorshift64 sequence (the tests' own generator: the same numbers everywhere).
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// `blocks` blocks of `ty` of random bytes, each f16 scale field set to a small random value
    /// in ±0.02 (so the dequantized weights stay finite and moderate).
    fn random_row(ty: GgmlType, blocks: usize, next: &mut impl FnMut() -> u64) -> Vec<u8> {
        let mut row: Vec<u8> = (0..blocks * ty.type_size()).map(|_| next() as u8).collect();
        for b in row.chunks_exact_mut(ty.type_size()) {
            for &o in ty.half_offsets() {
                let v = ((next() % 2001) as f32 / 1000.0 - 1.0) * 0.02;
                b[o..o + 2].copy_from_slice(&f16::from_f32(v).to_bits().to_le_bytes());
            }
        }
        row
    }

    /// The int8 dots compute Σ w·(y.d·q) over each activation block exactly up to f32 rounding
    /// (and, for the types with an offset, `m·s` with llama.cpp's f16-rounded `s = d·Σq` in place
    /// of `m·d·Σq`): against that sum in f64, a mistaken index or scale would be off by a few
    /// percent of Σ|w·x|, the rounding by under 1e-5 of it.
    #[test]
    fn int8_dots_equal_the_dot_with_the_dequantized_activations() {
        let mut next = xorshift(0x51_7CC1_B727_220Au64);
        for ty in GgmlType::ALL.into_iter().filter(|t| t.vec_dot_type() == VecDotType::Q8) {
            for blocks in [1usize, 3] {
                let n = blocks * ty.block_size();
                let x: Vec<f32> = (0..n).map(|_| ((next() % 20001) as f32 / 1000.0) - 10.0).collect();
                let mut xq = vec![BlockQ8::default(); n / QK];
                quantize_q8(&x, &mut xq);
                let row = random_row(ty, blocks, &mut next);
                let mut w = vec![0.0f32; n];
                dequantize(ty, &row, &mut w);
                let offset = matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1);
                let (mut want, mut scale) = (0.0f64, 0.0f64);
                for (i, y) in xq.iter().enumerate() {
                    let b = &row[i * QK / ty.block_size() * ty.type_size()..];
                    let m = if offset { f16_at(b, 2) as f64 } else { 0.0 };
                    for (j, &q) in y.qs.iter().enumerate() {
                        let (wv, a) = (w[QK * i + j] as f64, y.d as f64 * q as f64);
                        want += (wv - m) * a;
                        scale += (wv * a).abs();
                    }
                    want += m * y.s as f64;
                }
                for (what, got) in
                    [("simd", vec_dot_q8(ty, &row, &xq)), ("scalar", vec_dot_q8_scalar(ty, &row, &xq))]
                {
                    assert!(
                        (got as f64 - want).abs() <= 1e-5 * scale,
                        "{} x{blocks} {what}: {got} vs {want} (Σ|w·x| {scale})",
                        ty.name()
                    );
                }
            }
        }
    }

    /// Q8_K as `quantize_row_q8_K_ref`: the first element of largest magnitude becomes −127
    /// (`d = 1/(−127/max)`, of the other sign), every quant is within half a step of its value,
    /// ties round to even, `bsums` are the sums of each 16 quants, and a zero block is all zeros.
    #[test]
    fn q8k_quantization_is_llamacpps() {
        let mut next = xorshift(0x0DDB_1A5E_5BAD_5EEDu64);
        let n = 4 * QK_K;
        let mut x: Vec<f32> = (0..n)
            .map(|_| ((next() % 20001) as f32 / 1000.0 - 10.0) * 10f32.powi((next() % 5) as i32 - 2))
            .collect();
        x[QK_K..2 * QK_K].iter_mut().for_each(|v| *v = 0.0);
        let mut q = vec![BlockQ8K::default(); n / QK_K];
        quantize_q8k(&x, &mut q);
        for (i, (b, xs)) in q.iter().zip(x.chunks_exact(QK_K)).enumerate() {
            let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if amax == 0.0 {
                assert_eq!((b.d, b.qs, b.bsums), (0.0, [0; QK_K], [0; 16]), "block {i}");
                continue;
            }
            let k = xs.iter().position(|v| v.abs() == amax).unwrap();
            assert_eq!(b.qs[k], -127, "block {i}");
            assert_eq!(b.d.to_bits(), (1.0 / (-127.0 / xs[k])).to_bits(), "block {i}");
            for (j, (&q, &v)) in b.qs.iter().zip(xs).enumerate() {
                assert!(
                    (v - b.d * q as f32).abs() <= 0.5001 * b.d.abs(),
                    "block {i} element {j}: {v} as {q}"
                );
            }
            for (j, &s) in b.bsums.iter().enumerate() {
                assert_eq!(s as i32, b.qs[16 * j..16 * j + 16].iter().map(|&q| q as i32).sum::<i32>());
            }
        }
        // iscale = 1 (the first of ±127 sets it): halves round to even, the other extreme to 127
        let mut x = vec![0.0f32; 2 * QK_K];
        x[..6].copy_from_slice(&[-127.0, 2.5, 3.5, -2.5, 127.0, 0.5]);
        x[QK_K..QK_K + 2].copy_from_slice(&[127.0, -127.0]);
        quantize_q8k(&x, &mut q[..2]);
        assert_eq!((q[0].d, &q[0].qs[..6]), (1.0, &[-127i8, 2, 4, -2, 127, 0][..]));
        assert_eq!(q[0].bsums[0], 4);
        assert_eq!((q[1].d, &q[1].qs[..2]), (-1.0, &[-127i8, 127][..]));
    }

    /// Each K-quant × Q8_K dot is Σ w·(y.d·q) up to f32 rounding: against that sum in f64 (the
    /// weights dequantized), a mistaken index, scale or min would be off by a few percent of
    /// Σ|w·a|, the rounding by under 1e-5 of it.
    #[test]
    fn k_quant_dots_equal_the_dot_with_the_dequantized_activations() {
        let mut next = xorshift(0x6A09_E667_F3BC_C908u64);
        for ty in GgmlType::ALL.into_iter().filter(|t| t.vec_dot_type() == VecDotType::Q8K) {
            for blocks in [1usize, 3, 8] {
                let n = blocks * QK_K;
                let x: Vec<f32> = (0..n).map(|_| ((next() % 20001) as f32 / 1000.0) - 10.0).collect();
                let mut xk = vec![BlockQ8K::default(); blocks];
                quantize_q8k(&x, &mut xk);
                let row = random_row(ty, blocks, &mut next);
                let mut w = vec![0.0f32; n];
                dequantize(ty, &row, &mut w);
                let (mut want, mut scale) = (0.0f64, 0.0f64);
                for (i, y) in xk.iter().enumerate() {
                    for (j, &q) in y.qs.iter().enumerate() {
                        let p = w[QK_K * i + j] as f64 * (y.d as f64 * q as f64);
                        want += p;
                        scale += p.abs();
                    }
                }
                for (what, got) in
                    [("dispatch", vec_dot_q8k(ty, &row, &xk)), ("scalar", vec_dot_q8k_scalar(ty, &row, &xk))]
                {
                    assert!(
                        (got as f64 - want).abs() <= 1e-5 * scale,
                        "{} x{blocks} {what}: {got} vs {want} (Σ|w·a| {scale})",
                        ty.name()
                    );
                }
            }
        }
    }

    /// The types with a SIMD dot (AVX2 natively, SIMD128 in wasm: `tests/wasm_simd.rs`): the
    /// 32-wide block types. The K-quants have none yet: `vec_dot_f32`/`vec_dot_q8k` run the
    /// scalar specification itself for them, so comparing them here would compare the scalar code
    /// with itself.
    const SIMD_TYPES: [GgmlType; 6] =
        [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::IQ4NL];

    #[test]
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    fn avx2_and_batched_dots_are_bit_identical_to_the_scalar_specification() {
        let mut next = xorshift(0x2545F4914F6CDD1Du64);
        for ty in SIMD_TYPES {
            for blocks in [1usize, 7, 8, 18, 45] {
                let n = blocks * ty.block_size();
                let x: Vec<f32> = (0..n).map(|_| ((next() % 20001) as f32 / 1000.0) - 10.0).collect();
                let mut row: Vec<u8> = (0..blocks * ty.type_size()).map(|_| next() as u8).collect();
                for b in row.chunks_exact_mut(ty.type_size()) {
                    for (&o, v) in ty.half_offsets().iter().zip([0.0123, -0.05]) {
                        b[o..o + 2].copy_from_slice(&f16::from_f32(v).to_bits().to_le_bytes());
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
