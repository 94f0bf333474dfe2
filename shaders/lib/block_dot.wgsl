// block_dot(base, xo): the dot product of one weight block at word `base` with x[xo ..], one
// variant per weight type (#ifdef F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | IQ4_NL |
// Q2_K | Q3_K | Q4_K | Q5_K | Q6_K), with BLOCK
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

#ifdef Q5_0
const BLOCK: u32 = 32u;
const BLOCK_WORDS: u32 = 6u;
// word 0: d (f16, low half); word 1: qh (bit j: element j's fifth bit); words 2–5: nibbles as
// Q4_0; value = d·(q − 16)
fn block_dot(base: u32, xo: u32) -> f32 {
    let d = unpack2x16float(w[base]).x;
    let qh = w[base + 1u];
    var s = 0.0;
    for (var j = 0u; j < 16u; j++) {
        let b = wbyte(base + 2u, j);
        let q0 = (b & 0xFu) | (((qh >> j) & 1u) << 4u);
        let q1 = (b >> 4u) | (((qh >> (j + 16u)) & 1u) << 4u);
        s += (f32(q0) - 16.0) * x[xo + j] + (f32(q1) - 16.0) * x[xo + j + 16u];
    }
    return d * s;
}
#endif

#ifdef Q5_1
const BLOCK: u32 = 32u;
const BLOCK_WORDS: u32 = 6u;
// word 0: d, m (f16 pair); word 1: qh; words 2–5: nibbles as Q5_0; value = d·q + m
fn block_dot(base: u32, xo: u32) -> f32 {
    let dm = unpack2x16float(w[base]);
    let qh = w[base + 1u];
    var s = 0.0;
    var sx = 0.0;
    for (var j = 0u; j < 16u; j++) {
        let b = wbyte(base + 2u, j);
        let q0 = (b & 0xFu) | (((qh >> j) & 1u) << 4u);
        let q1 = (b >> 4u) | (((qh >> (j + 16u)) & 1u) << 4u);
        let x0 = x[xo + j];
        let x1 = x[xo + j + 16u];
        s += f32(q0) * x0 + f32(q1) * x1;
        sx += x0 + x1;
    }
    return dm.x * s + dm.y * sx;
}
#endif

#ifdef IQ4_NL
const BLOCK: u32 = 32u;
const BLOCK_WORDS: u32 = 5u;
// word 0: d (f16, low half); words 1–4: nibbles as Q4_0; value = d·iq4nl(q)
fn block_dot(base: u32, xo: u32) -> f32 {
    let d = unpack2x16float(w[base]).x;
    var s = 0.0;
    for (var j = 0u; j < 16u; j++) {
        let b = wbyte(base + 1u, j);
        s += iq4nl(b & 0xFu) * x[xo + j] + iq4nl(b >> 4u) * x[xo + j + 16u];
    }
    return d * s;
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

#ifdef Q2_K
const BLOCK: u32 = 256u;
const BLOCK_WORDS: u32 = 21u;
// bytes 0–15: a 4-bit scale and a 4-bit min per 16 values; bytes 16–79: 2-bit quants (value
// 128c + 32s + l in bits 2s of byte 16 + 32c + l); word 20: d, dmin; value = d·sc·q − dmin·m
fn block_dot(base: u32, xo: u32) -> f32 {
    let dm = unpack2x16float(w[base + 20u]);
    var acc = 0.0;
    for (var g = 0u; g < 16u; g++) {
        // values 16g + i: c = g / 8, s = (g / 2) % 4, l = 16·(g % 2) + i
        let at = 16u + 32u * (g / 8u) + 16u * (g % 2u);
        let shift = 2u * ((g / 2u) % 4u);
        var sq = 0.0;
        var sx = 0.0;
        for (var i = 0u; i < 16u; i++) {
            let xv = x[xo + 16u * g + i];
            sq += f32((wbyte(base, at + i) >> shift) & 3u) * xv;
            sx += xv;
        }
        let sc = wbyte(base, g);
        acc += dm.x * f32(sc & 0xFu) * sq - dm.y * f32(sc >> 4u) * sx;
    }
    return acc;
}
#endif

#ifdef Q3_K
const BLOCK: u32 = 256u;
const BLOCK_WORDS: u32 = 28u;
// bytes 0–31: hmask (value 32b + l in bit b of byte l; clear means −4); bytes 32–95: low 2 bits
// as Q2_K's; bytes 96–107: sixteen 6-bit scales; word 27: d (f16, low half); value = d·sc·q
fn block_dot(base: u32, xo: u32) -> f32 {
    let d = unpack2x16float(w[base + 27u]).x;
    var acc = 0.0;
    for (var g = 0u; g < 16u; g++) {
        let c = g / 8u;
        let s = (g / 2u) % 4u;
        let l0 = 16u * (g % 2u);
        var sq = 0.0;
        for (var i = 0u; i < 16u; i++) {
            let lo = (wbyte(base, 32u + 32u * c + l0 + i) >> (2u * s)) & 3u;
            let hb = (wbyte(base, l0 + i) >> (4u * c + s)) & 1u;
            sq += (f32(lo) - 4.0 + 4.0 * f32(hb)) * x[xo + 16u * g + i];
        }
        acc += q3k_scale(base, g) * sq;
    }
    return d * acc;
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

#ifdef Q5_K
const BLOCK: u32 = 256u;
const BLOCK_WORDS: u32 = 44u;
// word 0: d, dmin; bytes 4–15: scale/min pairs as Q4_K; bytes 16–47: qh (value 32b + l's fifth
// bit in bit b of byte l); bytes 48–175: nibbles as Q4_K's
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
            let q = wbyte(base, 48u + 32u * g + l);
            let h = wbyte(base, 16u + l) >> (2u * g);
            let xa = x[xo + 64u * g + l];
            let xb = x[xo + 64u * g + 32u + l];
            s1 += f32((q & 0xFu) | ((h & 1u) << 4u)) * xa;
            s2 += f32((q >> 4u) | ((h & 2u) << 3u)) * xb;
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
