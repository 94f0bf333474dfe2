// Byte access to quantized blocks in the GPU layout of src/gpu/repack.rs, shared by the kernels
// that read weights (`#include "blocks"` at the end of a kernel file). Expects the kernel to
// declare the weights as `w: array<u32>`.

// byte i of the words starting at `base`
fn wbyte(base: u32, i: u32) -> u32 {
    return (w[base + i / 4u] >> (8u * (i % 4u))) & 0xFFu;
}

// the low byte of `v` as a signed value
fn sbyte(v: u32) -> f32 {
    return f32(bitcast<i32>(v << 24u) >> 24u);
}

// Q4_K: the 6-bit (scale, min) pair j (0–7) packed in bytes 4–15 of the block at `base`
fn scale_min(base: u32, j: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(wbyte(base, 4u + j) & 63u), f32(wbyte(base, 8u + j) & 63u));
    }
    let sc = (wbyte(base, 8u + j) & 0xFu) | ((wbyte(base, j) >> 6u) << 4u);
    let mn = (wbyte(base, 8u + j) >> 4u) | ((wbyte(base, 4u + j) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(mn));
}

// Q3_K: the 6-bit scale j (0–15), stored less 32: low four bits in nibble j / 8 of byte 96 + j % 8,
// high two in bits 2·(j / 4) of byte 104 + j % 4 (src/quant's q3_k_scales)
fn q3k_scale(base: u32, j: u32) -> f32 {
    let lo = (wbyte(base, 96u + j % 8u) >> (4u * (j / 8u))) & 0xFu;
    let hi = (wbyte(base, 104u + j % 4u) >> (2u * (j / 4u))) & 3u;
    return f32(lo | (hi << 4u)) - 32.0;
}

// IQ4_NL's 16 levels (src/quant's IQ4NL_VALUES) as signed bytes, four to a word
const IQ4NL_LEVELS = vec4<u32>(0xBFAD9881u, 0xF6EADDCFu, 0x26190D01u, 0x71594535u);

// the IQ4_NL level of the 4-bit quant q
fn iq4nl(q: u32) -> f32 {
    return sbyte(IQ4NL_LEVELS[q / 4u] >> (8u * (q % 4u)));
}
