// Weight values of a row in the GPU layout of src/gpu/repack.rs, one variant per weight type
// (#ifdef F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | IQ4_NL | Q2_K | Q3_K | Q4_K | Q5_K |
// Q6_K), shared by the embedding lookup
// and the tiled matrix–matrix product (`#include "dequant"`, with "blocks" after it). Expects
// the kernel to declare `w: array<u32>` and a uniform `p` with `cols` (the row length).
//
// value(row, i): element i of the row whose first word is `row`.
// value4(row, i): elements i .. i + 3 (i a multiple of 4); 0 past the row's end. A quantized
// block holds a multiple of 4 values and every 4 aligned ones share a byte word, so the
// quantized variants read one word of quants per call, and their `value` is a lane of it (one
// decoding per type); the float types build `value4` from `value`.

// the four bytes of `v` as values
fn bytes4(v: u32) -> vec4<f32> {
    return vec4<f32>(vec4<u32>(v, v >> 8u, v >> 16u, v >> 24u) & vec4<u32>(0xFFu));
}

// the low (hi = false) or high nibbles of the four bytes of `v`
fn nibbles4(v: u32, hi: bool) -> vec4<f32> {
    return bytes4((v >> select(0u, 4u, hi)) & 0x0F0F0F0Fu);
}

// the four bytes of `v` as signed values
fn sbytes4(v: u32) -> vec4<f32> {
    return vec4<f32>(sbyte(v), sbyte(v >> 8u), sbyte(v >> 16u), sbyte(v >> 24u));
}

// bits j .. j + 3 of `v` as values (Q5_0/Q5_1's fifth bits of values j .. j + 3)
fn bits4(v: u32, j: u32) -> vec4<f32> {
    return vec4<f32>((vec4<u32>(v) >> vec4<u32>(j, j + 1u, j + 2u, j + 3u)) & vec4<u32>(1u));
}

// a float row's four values one by one, clamped to the row (the index past its end is never used)
fn float4(row: u32, i: u32) -> vec4<f32> {
    var v: vec4<f32>;
    for (var k = 0u; k < 4u; k++) {
        v[k] = select(0.0, value(row, min(i + k, p.cols - 1u)), i + k < p.cols);
    }
    return v;
}

#ifdef F32
fn value(row: u32, i: u32) -> f32 { return bitcast<f32>(w[row + i]); }
fn value4(row: u32, i: u32) -> vec4<f32> { return float4(row, i); }
#endif
#ifdef F16
fn value(row: u32, i: u32) -> f32 { return unpack2x16float(w[row + i / 2u])[i % 2u]; }
fn value4(row: u32, i: u32) -> vec4<f32> { return float4(row, i); }
#endif
#ifdef BF16
fn value(row: u32, i: u32) -> f32 { return bitcast<f32>(((w[row + i / 2u] >> (16u * (i % 2u))) & 0xFFFFu) << 16u); }
fn value4(row: u32, i: u32) -> vec4<f32> { return float4(row, i); }
#endif
#ifdef Q4_0
fn value4(row: u32, i: u32) -> vec4<f32> {
    let b = row + (i / 32u) * 5u;
    let j = i % 32u;
    return unpack2x16float(w[b]).x * (nibbles4(w[b + 1u + (j % 16u) / 4u], j >= 16u) - 8.0);
}
#endif
#ifdef Q4_1
fn value4(row: u32, i: u32) -> vec4<f32> {
    let b = row + (i / 32u) * 5u;
    let j = i % 32u;
    let dm = unpack2x16float(w[b]);
    return dm.x * nibbles4(w[b + 1u + (j % 16u) / 4u], j >= 16u) + dm.y;
}
#endif
#ifdef Q5_0
fn value4(row: u32, i: u32) -> vec4<f32> {
    let b = row + (i / 32u) * 6u;
    let j = i % 32u;
    let q = nibbles4(w[b + 2u + (j % 16u) / 4u], j >= 16u) + 16.0 * bits4(w[b + 1u], j);
    return unpack2x16float(w[b]).x * (q - 16.0);
}
#endif
#ifdef Q5_1
fn value4(row: u32, i: u32) -> vec4<f32> {
    let b = row + (i / 32u) * 6u;
    let j = i % 32u;
    let q = nibbles4(w[b + 2u + (j % 16u) / 4u], j >= 16u) + 16.0 * bits4(w[b + 1u], j);
    let dm = unpack2x16float(w[b]);
    return dm.x * q + dm.y;
}
#endif
#ifdef IQ4_NL
fn value4(row: u32, i: u32) -> vec4<f32> {
    let b = row + (i / 32u) * 5u;
    let j = i % 32u;
    let q = (w[b + 1u + (j % 16u) / 4u] >> select(0u, 4u, j >= 16u)) & 0x0F0F0F0Fu;
    let v = vec4<f32>(iq4nl(q & 0xFu), iq4nl((q >> 8u) & 0xFu), iq4nl((q >> 16u) & 0xFu), iq4nl(q >> 24u));
    return unpack2x16float(w[b]).x * v;
}
#endif
#ifdef Q8_0
fn value4(row: u32, i: u32) -> vec4<f32> {
    let b = row + (i / 32u) * 9u;
    return unpack2x16float(w[b]).x * sbytes4(w[b + 1u + (i % 32u) / 4u]);
}
#endif
#ifdef Q2_K
fn value4(row: u32, i: u32) -> vec4<f32> {
    let b = row + (i / 256u) * 21u;
    let j = i % 256u;
    // value j = 128c + 32s + l: bits 2s of byte 16 + 32c + l
    let q = (w[b + 4u + (32u * (j / 128u) + j % 32u) / 4u] >> (2u * ((j % 128u) / 32u))) & 0x03030303u;
    let sc = wbyte(b, j / 16u);
    let dm = unpack2x16float(w[b + 20u]);
    return dm.x * f32(sc & 0xFu) * bytes4(q) - dm.y * f32(sc >> 4u);
}
#endif
#ifdef Q3_K
fn value4(row: u32, i: u32) -> vec4<f32> {
    let b = row + (i / 256u) * 28u;
    let j = i % 256u;
    let c = j / 128u;
    let s = (j % 128u) / 32u;
    let l = j % 32u;
    let lo = bytes4((w[b + 8u + (32u * c + l) / 4u] >> (2u * s)) & 0x03030303u);
    let hb = bytes4((w[b + l / 4u] >> (4u * c + s)) & 0x01010101u);
    return unpack2x16float(w[b + 27u]).x * q3k_scale(b, j / 16u) * (lo - 4.0 + 4.0 * hb);
}
#endif
#ifdef Q4_K
fn value4(row: u32, i: u32) -> vec4<f32> {
    let b = row + (i / 256u) * 36u;
    let j = i % 256u;
    let g = j / 64u;
    let hi = (j % 64u) >= 32u;
    let q = nibbles4(w[b + 4u + 8u * g + (j % 32u) / 4u], hi);
    let sm = scale_min(b, 2u * g + select(0u, 1u, hi));
    let dm = unpack2x16float(w[b]);
    return dm.x * sm.x * q - dm.y * sm.y;
}
#endif
#ifdef Q5_K
fn value4(row: u32, i: u32) -> vec4<f32> {
    let b = row + (i / 256u) * 44u;
    let j = i % 256u;
    let g = j / 64u;
    let hi = (j % 64u) >= 32u;
    let l = j % 32u;
    let sub = 2u * g + select(0u, 1u, hi);
    let q = nibbles4(w[b + 12u + 8u * g + l / 4u], hi) + 16.0 * bytes4((w[b + 4u + l / 4u] >> sub) & 0x01010101u);
    let sm = scale_min(b, sub);
    let dm = unpack2x16float(w[b]);
    return dm.x * sm.x * q - dm.y * sm.y;
}
#endif
#ifdef Q6_K
fn value4(row: u32, i: u32) -> vec4<f32> {
    let b = row + (i / 256u) * 53u;
    let j = i % 256u;
    let h = j / 128u;
    let k = (j % 128u) / 32u;
    let l = j % 32u;
    let lo = (w[b + (64u * h + l + 32u * (k % 2u)) / 4u] >> select(0u, 4u, k >= 2u)) & 0x0F0F0F0Fu;
    let hi = ((w[b + (128u + 32u * h + l) / 4u] >> (2u * k)) & 0x03030303u) << 4u;
    let sc = sbyte(wbyte(b, 192u + 8u * h + l / 16u + 2u * k));
    return unpack2x16float(w[b + 52u]).x * sc * (bytes4(lo | hi) - 32.0);
}
#endif
#ifndef F32
#ifndef F16
#ifndef BF16
fn value(row: u32, i: u32) -> f32 {
    return value4(row, i & ~3u)[i % 4u];
}
#endif
#endif
#endif
