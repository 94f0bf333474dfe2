// block_dot(base, xo): the dot product of one weight block at word `base` with x[xo ..], one
// variant per weight type (#ifdef F32 | F16 | BF16 | Q4_0 | Q4_1 | Q8_0 | Q4_K | Q6_K), with BLOCK
// (values per block) and BLOCK_WORDS (u32 words per block). Shared by the matrix–vector and the
// matrix–matrix kernels (`#include "block_dot"`); expects them to declare `w: array<u32>`,
// `x: array<f32>` and `xat(i)` (x[i], or 0 past the end: odd f16 rows are padded with a zero
// weight), and to include "blocks" too.

#ifdef F32
const BLOCK: u32 = 1u;
const BLOCK_WORDS: u32 = 1u;
fn block_dot(base: u32, xo: u32) -> f32 {
    return bitcast<f32>(w[base]) * x[xo];
}
#endif

#ifdef F16
const BLOCK: u32 = 2u;
const BLOCK_WORDS: u32 = 1u;
fn block_dot(base: u32, xo: u32) -> f32 {
    let v = unpack2x16float(w[base]);
    return v.x * x[xo] + v.y * xat(xo + 1u);
}
#endif

#ifdef BF16
const BLOCK: u32 = 2u;
const BLOCK_WORDS: u32 = 1u;
fn block_dot(base: u32, xo: u32) -> f32 {
    let v = w[base];
    return bitcast<f32>(v << 16u) * x[xo] + bitcast<f32>(v & 0xFFFF0000u) * xat(xo + 1u);
}
#endif

#ifdef Q4_0
const BLOCK: u32 = 32u;
const BLOCK_WORDS: u32 = 5u;
// word 0: d (f16, low half); words 1–4: 16 bytes, low nibbles elements 0–15, high 16–31
fn block_dot(base: u32, xo: u32) -> f32 {
    let d = unpack2x16float(w[base]).x;
    var s = 0.0;
    for (var j = 0u; j < 16u; j++) {
        let b = wbyte(base + 1u, j);
        s += (f32(b & 0xFu) - 8.0) * x[xo + j] + (f32(b >> 4u) - 8.0) * x[xo + j + 16u];
    }
    return d * s;
}
#endif

#ifdef Q4_1
const BLOCK: u32 = 32u;
const BLOCK_WORDS: u32 = 5u;
// word 0: d, m (f16 pair); words 1–4: nibbles as Q4_0; value = d·q + m
fn block_dot(base: u32, xo: u32) -> f32 {
    let dm = unpack2x16float(w[base]);
    var s = 0.0;
    var sx = 0.0;
    for (var j = 0u; j < 16u; j++) {
        let b = wbyte(base + 1u, j);
        let x0 = x[xo + j];
        let x1 = x[xo + j + 16u];
        s += f32(b & 0xFu) * x0 + f32(b >> 4u) * x1;
        sx += x0 + x1;
    }
    return dm.x * s + dm.y * sx;
}
#endif

#ifdef Q8_0
const BLOCK: u32 = 32u;
const BLOCK_WORDS: u32 = 9u;
// word 0: d (f16, low half); words 1–8: 32 signed bytes
fn block_dot(base: u32, xo: u32) -> f32 {
    let d = unpack2x16float(w[base]).x;
    var s = 0.0;
    for (var i = 0u; i < 8u; i++) {
        let q = w[base + 1u + i];
        for (var k = 0u; k < 4u; k++) {
            s += sbyte(q >> (8u * k)) * x[xo + 4u * i + k];
        }
    }
    return d * s;
}
#endif

#ifdef Q4_K
const BLOCK: u32 = 256u;
const BLOCK_WORDS: u32 = 36u;
// word 0: d, dmin; bytes 4–15: eight 6-bit (scale, min) pairs; bytes 16–143: nibbles, in four
// groups of 32 bytes (low nibbles: sub-block 2g, high: 2g + 1)
fn block_dot(base: u32, xo: u32) -> f32 {
    let dm = unpack2x16float(w[base]);
    var acc = 0.0;
    for (var g = 0u; g < 4u; g++) {
        let a = scale_min(base, 2u * g);
        let b = scale_min(base, 2u * g + 1u);
        var s1 = 0.0;
        var s2 = 0.0;
        var x1 = 0.0;
        var x2 = 0.0;
        for (var l = 0u; l < 32u; l++) {
            let q = wbyte(base, 16u + 32u * g + l);
            let xa = x[xo + 64u * g + l];
            let xb = x[xo + 64u * g + 32u + l];
            s1 += f32(q & 0xFu) * xa;
            s2 += f32(q >> 4u) * xb;
            x1 += xa;
            x2 += xb;
        }
        acc += dm.x * (a.x * s1 + b.x * s2) - dm.y * (a.y * x1 + b.y * x2);
    }
    return acc;
}
#endif

#ifdef Q6_K
const BLOCK: u32 = 256u;
const BLOCK_WORDS: u32 = 53u;
// bytes 0–127: low 4 bits; 128–191: high 2 bits; 192–207: signed 8-bit scales per 16 values;
// word 52: d (f16, low half)
fn block_dot(base: u32, xo: u32) -> f32 {
    let d = unpack2x16float(w[base + 52u]).x;
    var acc = 0.0;
    for (var h = 0u; h < 2u; h++) {
        let ql = 64u * h;
        let qh = 128u + 32u * h;
        let sc = 192u + 8u * h;
        let xh = xo + 128u * h;
        for (var l = 0u; l < 32u; l++) {
            let is = l / 16u;
            let lo0 = wbyte(base, ql + l);
            let lo1 = wbyte(base, ql + l + 32u);
            let hi = wbyte(base, qh + l);
            let q1 = f32((lo0 & 0xFu) | ((hi & 3u) << 4u)) - 32.0;
            let q2 = f32((lo1 & 0xFu) | (((hi >> 2u) & 3u) << 4u)) - 32.0;
            let q3 = f32((lo0 >> 4u) | (((hi >> 4u) & 3u) << 4u)) - 32.0;
            let q4 = f32((lo1 >> 4u) | (((hi >> 6u) & 3u) << 4u)) - 32.0;
            acc += sbyte(wbyte(base, sc + is)) * q1 * x[xh + l]
                + sbyte(wbyte(base, sc + is + 2u)) * q2 * x[xh + l + 32u]
                + sbyte(wbyte(base, sc + is + 4u)) * q3 * x[xh + l + 64u]
                + sbyte(wbyte(base, sc + is + 6u)) * q4 * x[xh + l + 96u];
        }
    }
    return d * acc;
}
#endif
