//! WebAssembly SIMD128 versions of the dot products for the 32-wide block types: the browser's CPU path spends nearly all of a token here, and LLVM does not vectorize
//! the scalar loops for wasm (they ran at scalar speed, ~9 tok/s on the default model).
//!
//! Like `avx2.rs`, each computes exactly the operations of `vec_dot_f32_scalar` in the same order:
//! a block's values expanded to f32 (`d·q (+ m)`), multiplied by `x` and added into 32 lanes held
//! as eight 4-wide vectors, no fused multiply-add, then `reduce32`'s tree. So the browser's exact
//! numerics stay bit-identical to the native CLI's; `tests/wasm_simd.rs` checks it in Node.
//! Compiled only for wasm32 with `simd128` (`.cargo/config.toml`).
//!
//! Unlike the AVX2 version these take one token row: a prefill batch runs row by row
//! (`vec_dot_f32_rows`), since sharing each
//! expanded block between rows needs a second set of 32 accumulator lanes, which V8 cannot keep
//! in the 16 vector registers of x86 hosts; measured in Node, the shared version was no faster.

use super::{f16_at, q8_term, BlockQ8, GgmlType, IQ4NL_VALUES, QK};
use core::arch::wasm32::*;

/// `reduce32` on eight vectors holding lanes 0–3, 4–7, …, 28–31.
#[inline(always)]
fn hsum(a: &[v128; 8]) -> f32 {
    // s[k] = (l[k] + l[8 + k]) + (l[16 + k] + l[24 + k]) for k in 0..4 and 4..8
    let s_lo = f32x4_add(f32x4_add(a[0], a[2]), f32x4_add(a[4], a[6]));
    let s_hi = f32x4_add(f32x4_add(a[1], a[3]), f32x4_add(a[5], a[7]));
    let t = f32x4_add(s_lo, s_hi); // t[k] = s[k] + s[k + 4]
    let u0 = f32x4_extract_lane::<0>(t) + f32x4_extract_lane::<2>(t);
    let u1 = f32x4_extract_lane::<1>(t) + f32x4_extract_lane::<3>(t);
    u0 + u1
}

/// Runs `block(bytes, x, acc)` over whole blocks of `ts` bytes and 32 activations.
#[inline(always)]
fn blocks(row: &[u8], x: &[f32], ts: usize, block: impl Fn(&[u8], &[f32; QK], &mut [v128; 8])) -> f32 {
    let mut acc = [f32x4_splat(0.0); 8];
    for (b, xs) in row.chunks_exact(ts).zip(x.chunks_exact(QK)) {
        if let Ok(xs) = <&[f32; QK]>::try_from(xs) {
            block(b, xs, &mut acc);
        }
    }
    hsum(&acc)
}

/// `acc[k] += y[k] · x[4k..4k+4]`.
#[inline(always)]
fn madd8(acc: &mut [v128; 8], y: [v128; 8], x: &[f32; QK]) {
    for k in 0..8 {
        // SAFETY: 4k + 4 ≤ 32 floats of the array; v128_load has no alignment requirement.
        let xv = unsafe { v128_load(x.as_ptr().add(4 * k) as *const v128) };
        acc[k] = f32x4_add(acc[k], f32x4_mul(y[k], xv));
    }
}

/// 16 bytes → four vectors of their 16 values in order, as f32.
#[inline(always)]
fn u8x16_to_f32(v: v128) -> [v128; 4] {
    let (lo, hi) = (u16x8_extend_low_u8x16(v), u16x8_extend_high_u8x16(v));
    [
        f32x4_convert_u32x4(u32x4_extend_low_u16x8(lo)),
        f32x4_convert_u32x4(u32x4_extend_high_u16x8(lo)),
        f32x4_convert_u32x4(u32x4_extend_low_u16x8(hi)),
        f32x4_convert_u32x4(u32x4_extend_high_u16x8(hi)),
    ]
}

fn i8x16_to_f32(v: v128) -> [v128; 4] {
    let (lo, hi) = (i16x8_extend_low_i8x16(v), i16x8_extend_high_i8x16(v));
    [
        f32x4_convert_i32x4(i32x4_extend_low_i16x8(lo)),
        f32x4_convert_i32x4(i32x4_extend_high_i16x8(lo)),
        f32x4_convert_i32x4(i32x4_extend_low_i16x8(hi)),
        f32x4_convert_i32x4(i32x4_extend_high_i16x8(hi)),
    ]
}

/// 16 packed nibble bytes at `b[at..at + 16]` → their 32 values as f32 vectors (the low nibbles
/// are elements 0–15, the high ones 16–31).
#[inline(always)]
fn nibbles(b: &[u8], at: usize) -> [v128; 8] {
    let Some(q) = b.get(at..at + 16) else { return [f32x4_splat(0.0); 8] };
    // SAFETY: `q` is 16 bytes.
    let v = unsafe { v128_load(q.as_ptr() as *const v128) };
    let mask = u8x16_splat(0x0F);
    let lo = u8x16_to_f32(v128_and(v, mask));
    let hi = u8x16_to_f32(u8x16_shr(v, 4));
    [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]]
}

pub fn dot_q4_1(row: &[u8], x: &[f32]) -> f32 {
    blocks(row, x, GgmlType::Q4_1.type_size(), |b, xs, acc| {
        let (d, m) = (f32x4_splat(f16_at(b, 0)), f32x4_splat(f16_at(b, 2)));
        let y = nibbles(b, 4).map(|q| f32x4_add(f32x4_mul(d, q), m));
        madd8(acc, y, xs);
    })
}

pub fn dot_q4_0(row: &[u8], x: &[f32]) -> f32 {
    blocks(row, x, GgmlType::Q4_0.type_size(), |b, xs, acc| {
        let d = f32x4_splat(f16_at(b, 0));
        let eight = f32x4_splat(8.0);
        // (q − 8) is exact in f32, as the scalar's integer subtraction
        let y = nibbles(b, 2).map(|q| f32x4_mul(d, f32x4_sub(q, eight)));
        madd8(acc, y, xs);
    })
}

/// The fifth bits of 16 elements (element `j`'s in bit `j` of `h`) as 0x10 in their bytes: each
/// byte picks its byte of `h` and tests its own bit.
#[inline(always)]
fn q5_high(h: u16) -> v128 {
    let bits = i8x16_swizzle(u16x8_splat(h), i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    let bit = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    v128_and(i8x16_eq(v128_and(bits, bit), bit), u8x16_splat(0x10))
}

/// The 32 quants (0–31) of a Q5_0/Q5_1 block, nibbles at `b[at..at + 16]` and fifth bits at
/// `b[h..h + 4]`: elements 0–15 and 16–31 as two byte vectors.
#[inline(always)]
fn q5_bytes(b: &[u8], h: usize, at: usize) -> (v128, v128) {
    let (Some(q), Some(qh)) = (b.get(at..at + 16), b.get(h..h + 4)) else {
        return (u8x16_splat(0), u8x16_splat(0));
    };
    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    // SAFETY: `q` is 16 bytes.
    let v = unsafe { v128_load(q.as_ptr() as *const v128) };
    (
        v128_or(v128_and(v, u8x16_splat(0x0F)), q5_high(qh as u16)),
        v128_or(u8x16_shr(v, 4), q5_high((qh >> 16) as u16)),
    )
}

/// IQ4_NL's values of the 16 nibble bytes at `b[at..at + 16]` as i8: elements 0–15 (low nibbles)
/// and 16–31.
#[inline(always)]
fn iq4nl_bytes(b: &[u8], at: usize) -> (v128, v128) {
    let Some(q) = b.get(at..at + 16) else { return (i8x16_splat(0), i8x16_splat(0)) };
    // SAFETY: `q` and the table are 16 bytes.
    let (v, table) =
        unsafe { (v128_load(q.as_ptr() as *const v128), v128_load(IQ4NL_VALUES.as_ptr() as *const v128)) };
    (i8x16_swizzle(table, v128_and(v, u8x16_splat(0x0F))), i8x16_swizzle(table, u8x16_shr(v, 4)))
}

/// Two vectors of 16 bytes (elements 0–15, 16–31) as eight f32 vectors, unsigned or signed.
#[inline(always)]
fn bytes_to_f32(lo: v128, hi: v128, signed: bool) -> [v128; 8] {
    let conv = if signed { i8x16_to_f32 } else { u8x16_to_f32 };
    let (a, c) = (conv(lo), conv(hi));
    [a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3]]
}

pub fn dot_q5_0(row: &[u8], x: &[f32]) -> f32 {
    blocks(row, x, GgmlType::Q5_0.type_size(), |b, xs, acc| {
        let d = f32x4_splat(f16_at(b, 0));
        let sixteen = f32x4_splat(16.0);
        let (lo, hi) = q5_bytes(b, 2, 6);
        // (q − 16) is exact in f32, as the scalar's integer subtraction
        let y = bytes_to_f32(lo, hi, false).map(|q| f32x4_mul(d, f32x4_sub(q, sixteen)));
        madd8(acc, y, xs);
    })
}

pub fn dot_q5_1(row: &[u8], x: &[f32]) -> f32 {
    blocks(row, x, GgmlType::Q5_1.type_size(), |b, xs, acc| {
        let (d, m) = (f32x4_splat(f16_at(b, 0)), f32x4_splat(f16_at(b, 2)));
        let (lo, hi) = q5_bytes(b, 4, 8);
        let y = bytes_to_f32(lo, hi, false).map(|q| f32x4_add(f32x4_mul(d, q), m));
        madd8(acc, y, xs);
    })
}

pub fn dot_iq4_nl(row: &[u8], x: &[f32]) -> f32 {
    blocks(row, x, GgmlType::IQ4NL.type_size(), |b, xs, acc| {
        let d = f32x4_splat(f16_at(b, 0));
        let (lo, hi) = iq4nl_bytes(b, 2);
        let y = bytes_to_f32(lo, hi, true).map(|q| f32x4_mul(d, q));
        madd8(acc, y, xs);
    })
}

pub fn dot_q8_0(row: &[u8], x: &[f32]) -> f32 {
    blocks(row, x, GgmlType::Q8_0.type_size(), |b, xs, acc| {
        let Some(q) = b.get(2..34) else { return };
        let d = f32x4_splat(f16_at(b, 0));
        // SAFETY: `q` is 32 bytes: two 16-byte loads.
        let (a, c) =
            unsafe { (v128_load(q.as_ptr() as *const v128), v128_load(q.as_ptr().add(16) as *const v128)) };
        let (a, c) = (i8x16_to_f32(a), i8x16_to_f32(c));
        let y = [a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3]].map(|q| f32x4_mul(d, q));
        madd8(acc, y, xs);
    })
}

// ---- int8 activations (`Numerics::LlamaCpp`): integer block dots, the float parts as the
// scalar `vec_dot_q8_scalar` computes them, in its order (the integer sums are exact in any order)

/// a[j]·b[j] + a[j + 8]·b[j + 8] for the 16 i8 lanes of `a` and `b`, as eight i16 lanes (two
/// widening multiplies, `i16x8.extmul_*_i8x16_s`, and an add; half the instructions of widening
/// both operands for `i32x4.dot_i16x8_s`). Exact while each sum stays within i16: activations
/// from `quantize_q8` are within ±127, so |a·b| ≤ 128·127 and two such products fit.
#[inline(always)]
fn mul16(a: v128, b: v128) -> v128 {
    i16x8_add(i16x8_extmul_low_i8x16(a, b), i16x8_extmul_high_i8x16(a, b))
}

#[inline(always)]
fn hsum_i32(v: v128) -> i32 {
    i32x4_extract_lane::<0>(v)
        .wrapping_add(i32x4_extract_lane::<1>(v))
        .wrapping_add(i32x4_extract_lane::<2>(v))
        .wrapping_add(i32x4_extract_lane::<3>(v))
}

/// The four lane sums of each of four i32x4 vectors: [Σv0, Σv1, Σv2, Σv3] (wrapping, as
/// `hsum_i32`; integer sums are exact in any order).
#[inline(always)]
fn hsum_4x4(v: [v128; 4]) -> v128 {
    // [x0 + x2, y0 + y2, x1 + x3, y1 + y3] for a pair of vectors x, y
    let pair = |x, y| i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(x, y), i32x4_shuffle::<2, 6, 3, 7>(x, y));
    let (a, b) = (pair(v[0], v[1]), pair(v[2], v[3]));
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(a, b), i32x4_shuffle::<2, 3, 6, 7>(a, b))
}

/// The 16 nibble bytes at `b[at..]` against the activations: Σ lo·a[0..16] + hi·a[16..32], as
/// four i32 lanes. (Nibbles are 0–15, so they are valid i8 lanes.)
#[inline(always)]
fn dot_nibbles_q8(b: &[u8], at: usize, y: &BlockQ8) -> v128 {
    let (lo, hi) = nibble_bytes(b, at);
    let (a0, a1) = activations(y);
    nibble_dot(lo, hi, a0, a1)
}

/// The 16 nibble bytes at `b[at..]` unpacked: low nibbles (elements 0–15) and high (16–31), one
/// per byte lane; zeros where the block is short.
#[inline(always)]
fn nibble_bytes(b: &[u8], at: usize) -> (v128, v128) {
    let Some(q) = b.get(at..at + 16) else { return (i32x4_splat(0), i32x4_splat(0)) };
    // SAFETY: `q` is 16 bytes.
    let v = unsafe { v128_load(q.as_ptr() as *const v128) };
    (v128_and(v, u8x16_splat(0x0F)), u8x16_shr(v, 4))
}

/// Σ lo·a0 + hi·a1 over 16 lanes each (nibbles lo, hi of 0–15, or Q5 quants of 0–31), as four
/// i32 lanes: with relaxed SIMD, two `i32x4.relaxed_dot_i8x16_i7x16_add_s` (one `pmaddubsw` +
/// `pmaddwd` each on x86): its result is only implementation-defined for a second operand with
/// the top bit set or an i16 pair sum that overflows, and these quants are 7-bit with pair sums
/// under 2·31·128, so it is exact.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn nibble_dot(lo: v128, hi: v128, a0: v128, a1: v128) -> v128 {
    i32x4_relaxed_dot_i8x16_i7x16_add(a1, hi, i32x4_relaxed_dot_i8x16_i7x16_add(a0, lo, i32x4_splat(0)))
}

/// Without relaxed SIMD: widening multiplies; four products per i16 lane stay under 4·31·128.
#[cfg(not(target_feature = "relaxed-simd"))]
#[inline(always)]
fn nibble_dot(lo: v128, hi: v128, a0: v128, a1: v128) -> v128 {
    i32x4_extadd_pairwise_i16x8(i16x8_add(mul16(lo, a0), mul16(hi, a1)))
}

/// The 32 signed bytes at `b[2..34]` against the activations, as four i32 lanes.
#[inline(always)]
fn dot_bytes_q8(b: &[u8], y: &BlockQ8) -> v128 {
    let Some(q) = b.get(2..34) else { return i32x4_splat(0) };
    // SAFETY: `q` is 32 bytes.
    let (w0, w1) =
        unsafe { (v128_load(q.as_ptr() as *const v128), v128_load(q.as_ptr().add(16) as *const v128)) };
    dot_i8_q8(w0, w1, y)
}

/// 32 signed values (elements 0–15 in `w0`, 16–31 in `w1`) against the activations, as four i32
/// lanes.
#[inline(always)]
fn dot_i8_q8(w0: v128, w1: v128, y: &BlockQ8) -> v128 {
    let (a0, a1) = activations(y);
    i32x4_add(i32x4_extadd_pairwise_i16x8(mul16(w0, a0)), i32x4_extadd_pairwise_i16x8(mul16(w1, a1)))
}

/// The activations `y.qs` as two vectors (elements 0–15, 16–31).
#[inline(always)]
fn activations(y: &BlockQ8) -> (v128, v128) {
    // SAFETY: `y.qs` is 32 bytes.
    unsafe { (v128_load(y.qs.as_ptr() as *const v128), v128_load(y.qs.as_ptr().add(16) as *const v128)) }
}

/// The f32 scales of four 32-wide blocks: `d` at byte 0 and (Q4_1, Q5_1) `m` at byte 2, as
/// lanes 0–3 of two vectors.
#[inline(always)]
fn scales4(b: [&[u8]; 4]) -> [v128; 2] {
    let half = |b: &[u8], at: usize| b.get(at..at + 2).map_or(0, |h| u16::from_le_bytes([h[0], h[1]]));
    let h = [
        half(b[0], 0),
        half(b[1], 0),
        half(b[2], 0),
        half(b[3], 0),
        half(b[0], 2),
        half(b[1], 2),
        half(b[2], 2),
        half(b[3], 2),
    ];
    // SAFETY: `h` is 16 bytes.
    f16x8_to_f32x4x2(unsafe { v128_load(h.as_ptr() as *const v128) })
}

/// The f32 terms of four blocks (scales `d`, `m` from [`scales4`], activation blocks `y`) from
/// their integer sums `s`: `q8_term` lane-wise, the same operations in the same order.
#[inline(always)]
fn terms4(ty: GgmlType, s: v128, [d, m]: [v128; 2], y: &[BlockQ8; 4]) -> v128 {
    let dy = f32x4_mul(d, f32x4(y[0].d, y[1].d, y[2].d, y[3].d));
    match ty {
        GgmlType::Q4_1 | GgmlType::Q5_1 => f32x4_add(
            f32x4_mul(dy, f32x4_convert_i32x4(s)),
            f32x4_mul(m, f32x4(y[0].s, y[1].s, y[2].s, y[3].s)),
        ),
        GgmlType::Q4_0 => {
            let sum = i32x4_shl(i32x4(y[0].sum, y[1].sum, y[2].sum, y[3].sum), 3);
            f32x4_mul(f32x4_convert_i32x4(i32x4_sub(s, sum)), dy)
        }
        GgmlType::Q5_0 => {
            let sum = i32x4_shl(i32x4(y[0].sum, y[1].sum, y[2].sum, y[3].sum), 4);
            f32x4_mul(f32x4_convert_i32x4(i32x4_sub(s, sum)), dy)
        }
        _ => f32x4_mul(f32x4_convert_i32x4(s), dy),
    }
}

/// Adds a [`terms4`] result's lanes to `acc` one by one, in lane order.
#[inline(always)]
fn add_lanes(acc: &mut f32, t: v128) {
    *acc += f32x4_extract_lane::<0>(t);
    *acc += f32x4_extract_lane::<1>(t);
    *acc += f32x4_extract_lane::<2>(t);
    *acc += f32x4_extract_lane::<3>(t);
}

/// `Σ_blocks q8_term(ty, isum(block, a[block]), …)` in block order: four blocks' integer sums
/// reduced together and their terms computed four at a time, then added one by one.
#[inline(always)]
fn q8_blocks(ty: GgmlType, row: &[u8], a: &[BlockQ8], isum: impl Fn(&[u8], &BlockQ8) -> v128) -> f32 {
    let ts = ty.type_size();
    let nb = (row.len() / ts).min(a.len());
    let n4 = nb / 4 * 4;
    let mut acc = 0.0f32;
    for (b, y) in row[..n4 * ts].chunks_exact(4 * ts).zip(a[..n4].chunks_exact(4)) {
        let Ok(y) = <&[BlockQ8; 4]>::try_from(y) else { continue };
        let b = [&b[..ts], &b[ts..2 * ts], &b[2 * ts..3 * ts], &b[3 * ts..]];
        let s = hsum_4x4([isum(b[0], &y[0]), isum(b[1], &y[1]), isum(b[2], &y[2]), isum(b[3], &y[3])]);
        add_lanes(&mut acc, terms4(ty, s, scales4(b), y));
    }
    for (b, y) in row[n4 * ts..nb * ts].chunks_exact(ts).zip(&a[n4..nb]) {
        acc += q8_term(ty, hsum_i32(isum(b, y)), b, y);
    }
    acc
}

/// [`q8_blocks`] of one weight row of 4-bit quants (at byte `at` of each block) against every
/// token row of a batch: `out[t]` for the activations `a[t·bpr..(t+1)·bpr]`. Each group of four
/// weight blocks is unpacked and its scales converted once for all the tokens rather than once
/// per token (the prefill's products); per token the integer sums are exact and the float
/// operations are `q8_blocks`' in its order, so every `out[t]` is bit-identical to it.
fn q8_rows_nibbles(ty: GgmlType, at: usize, row: &[u8], a: &[BlockQ8], bpr: usize, out: &mut [f32]) {
    let ts = ty.type_size();
    let tokens = a.len().checked_div(bpr).map_or(0, |n| n.min(out.len()));
    let nb = (row.len() / ts).min(bpr);
    let n4 = nb / 4 * 4;
    out[..tokens].fill(0.0);
    for g in (0..n4).step_by(4) {
        let b = [
            &row[g * ts..][..ts],
            &row[(g + 1) * ts..][..ts],
            &row[(g + 2) * ts..][..ts],
            &row[(g + 3) * ts..][..ts],
        ];
        let w = b.map(|b| nibble_bytes(b, at));
        let scales = scales4(b);
        for (t, acc) in out[..tokens].iter_mut().enumerate() {
            let Ok(y) = <&[BlockQ8; 4]>::try_from(&a[t * bpr + g..t * bpr + g + 4]) else { continue };
            let dot = |k: usize| {
                let (a0, a1) = activations(&y[k]);
                nibble_dot(w[k].0, w[k].1, a0, a1)
            };
            let s = hsum_4x4([dot(0), dot(1), dot(2), dot(3)]);
            add_lanes(acc, terms4(ty, s, scales, y));
        }
    }
    for i in n4..nb {
        let b = &row[i * ts..][..ts];
        for (t, acc) in out[..tokens].iter_mut().enumerate() {
            let y = &a[t * bpr + i];
            *acc += q8_term(ty, hsum_i32(dot_nibbles_q8(b, at, y)), b, y);
        }
    }
}

/// [`q8_dot_q4_0`] and [`q8_dot_q4_1`] of one row against a batch of token rows (see
/// [`q8_rows_nibbles`]); `None` for the other types.
pub fn q8_rows(ty: GgmlType, row: &[u8], a: &[BlockQ8], bpr: usize, out: &mut [f32]) -> Option<()> {
    match ty {
        GgmlType::Q4_0 => q8_rows_nibbles(ty, 2, row, a, bpr, out),
        GgmlType::Q4_1 => q8_rows_nibbles(ty, 4, row, a, bpr, out),
        _ => return None,
    }
    Some(())
}

pub fn q8_dot_q4_1(row: &[u8], a: &[BlockQ8]) -> f32 {
    q8_blocks(GgmlType::Q4_1, row, a, |b, y| dot_nibbles_q8(b, 4, y))
}

pub fn q8_dot_q4_0(row: &[u8], a: &[BlockQ8]) -> f32 {
    q8_blocks(GgmlType::Q4_0, row, a, |b, y| dot_nibbles_q8(b, 2, y))
}

pub fn q8_dot_q8_0(row: &[u8], a: &[BlockQ8]) -> f32 {
    q8_blocks(GgmlType::Q8_0, row, a, dot_bytes_q8)
}

pub fn q8_dot_q5_0(row: &[u8], a: &[BlockQ8]) -> f32 {
    q8_blocks(GgmlType::Q5_0, row, a, |b, y| {
        let ((lo, hi), (a0, a1)) = (q5_bytes(b, 2, 6), activations(y));
        nibble_dot(lo, hi, a0, a1)
    })
}

pub fn q8_dot_q5_1(row: &[u8], a: &[BlockQ8]) -> f32 {
    q8_blocks(GgmlType::Q5_1, row, a, |b, y| {
        let ((lo, hi), (a0, a1)) = (q5_bytes(b, 4, 8), activations(y));
        nibble_dot(lo, hi, a0, a1)
    })
}

/// IQ4_NL's values are signed (−127…113), so its integer dots widen like Q8_0's (pair sums under
/// 2·127·127), with or without relaxed SIMD.
pub fn q8_dot_iq4_nl(row: &[u8], a: &[BlockQ8]) -> f32 {
    q8_blocks(GgmlType::IQ4NL, row, a, |b, y| {
        let (w0, w1) = iq4nl_bytes(b, 2);
        dot_i8_q8(w0, w1, y)
    })
}

/// Eight f16 values (the u16 lanes of `v`) as f32, lanes 0–3 and 4–7: `f16_to_f32`'s operations
/// four lanes at a time (exact, so identical).
#[inline(always)]
fn f16x8_to_f32x4x2(v: v128) -> [v128; 2] {
    [u32x4_extend_low_u16x8(v), u32x4_extend_high_u16x8(v)].map(|x| {
        let sign = i32x4_shl(v128_and(x, u32x4_splat(0x8000)), 16);
        let em = v128_and(x, u32x4_splat(0x7FFF));
        let shifted = i32x4_shl(em, 13);
        let finite = f32x4_mul(shifted, f32x4_splat(f32::from_bits(0x7780_0000))); // 2^112
        let special = v128_or(shifted, u32x4_splat(0x7F80_0000));
        let mag = v128_bitselect(special, finite, u32x4_ge(em, u32x4_splat(0x7C00)));
        v128_or(mag, sign)
    })
}

/// Eight f16 values as f32: `f16_to_f32`'s operations four lanes at a time (exact, so identical).
#[inline(always)]
pub fn f16x8_to_f32(h: &[u16; 8]) -> [f32; 8] {
    // SAFETY: `h` is 16 bytes; `out` is 32.
    unsafe {
        let [lo, hi] = f16x8_to_f32x4x2(v128_load(h.as_ptr() as *const v128));
        let mut out = [0.0f32; 8];
        v128_store(out.as_mut_ptr() as *mut v128, lo);
        v128_store(out.as_mut_ptr().add(4) as *mut v128, hi);
        out
    }
}
