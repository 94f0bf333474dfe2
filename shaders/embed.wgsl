// out[t, i] = W[token_t, i]: the embedding row of batch row t's token, state[2 + t] (with
// #ifdef POSITION, of its position state[0] + t: GPT-2's learned positions), expanded to f32,
// one variant per weight type (#ifdef F32 | F16 | BF16 | Q4_0 | Q4_1 | Q8_0 | Q4_K | Q6_K). W is
// in the GPU layout of src/gpu/repack.rs. One thread per element along x, batch rows along z.

struct Params {
    cols: u32,       // row length
    row_words: u32,  // u32 words per row of W
    n_vocab: u32,    // rows of W (the token id is clamped below it)
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;          // [n_vocab · row_words]
@group(0) @binding(1) var<storage, read> state: array<u32>;      // [pos0, n, tokens…]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [batch · cols]
@group(0) @binding(3) var<uniform> p: Params;

// nibble j (0–31) of the 16 bytes at `base`: low nibbles are 0–15, high 16–31
fn nibble(base: u32, j: u32) -> f32 {
    let b = wbyte(base, j % 16u);
    return f32(select(b & 0xFu, b >> 4u, j >= 16u));
}

#ifdef F32
fn value(row: u32, i: u32) -> f32 { return bitcast<f32>(w[row + i]); }
#endif
#ifdef F16
fn value(row: u32, i: u32) -> f32 { return unpack2x16float(w[row + i / 2u])[i % 2u]; }
#endif
#ifdef BF16
fn value(row: u32, i: u32) -> f32 { return bitcast<f32>(((w[row + i / 2u] >> (16u * (i % 2u))) & 0xFFFFu) << 16u); }
#endif
#ifdef Q4_0
fn value(row: u32, i: u32) -> f32 {
    let b = row + (i / 32u) * 5u;
    return unpack2x16float(w[b]).x * (nibble(b + 1u, i % 32u) - 8.0);
}
#endif
#ifdef Q4_1
fn value(row: u32, i: u32) -> f32 {
    let b = row + (i / 32u) * 5u;
    let dm = unpack2x16float(w[b]);
    return dm.x * nibble(b + 1u, i % 32u) + dm.y;
}
#endif
#ifdef Q8_0
fn value(row: u32, i: u32) -> f32 {
    let b = row + (i / 32u) * 9u;
    return unpack2x16float(w[b]).x * sbyte(wbyte(b + 1u, i % 32u));
}
#endif
#ifdef Q4_K
fn value(row: u32, i: u32) -> f32 {
    let b = row + (i / 256u) * 36u;
    let j = i % 256u;
    let g = j / 64u;
    let hi = (j % 64u) >= 32u;
    let q = wbyte(b, 16u + 32u * g + j % 32u);
    let sm = scale_min(b, 2u * g + select(0u, 1u, hi));
    let dm = unpack2x16float(w[b]);
    return dm.x * sm.x * f32(select(q & 0xFu, q >> 4u, hi)) - dm.y * sm.y;
}
#endif
#ifdef Q6_K
fn value(row: u32, i: u32) -> f32 {
    let b = row + (i / 256u) * 53u;
    let j = i % 256u;
    let h = j / 128u;
    let k = (j % 128u) / 32u;
    let l = j % 32u;
    let ql = wbyte(b, 64u * h + l + 32u * (k % 2u));
    let lo = select(ql & 0xFu, ql >> 4u, k >= 2u);
    let hi = (wbyte(b, 128u + 32u * h + l) >> (2u * k)) & 3u;
    let sc = sbyte(wbyte(b, 192u + 8u * h + l / 16u + 2u * k));
    return unpack2x16float(w[b + 52u]).x * sc * (f32(lo | (hi << 4u)) - 32.0);
}
#endif

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let t = gid.z;
    if (i >= p.cols || t >= state[1]) {
        return;
    }
#ifdef POSITION
    let token = min(state[0] + t, p.n_vocab - 1u);
#else
    let token = min(state[2u + t], p.n_vocab - 1u);
#endif
    out[t * p.cols + i] = value(token * p.row_words, i);
}

// wbyte, sbyte, scale_min
#include "blocks"
