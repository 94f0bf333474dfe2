// out[t, i] = W[token_t, i]: the embedding row of batch row t's token, state[2 + t] (with
// #ifdef POSITION, of its position state[0] + t: GPT-2's learned positions), expanded to f32,
// one variant per weight type (#ifdef F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | IQ4_NL |
// Q2_K | Q3_K | Q4_K | Q5_K | Q6_K). W is in the GPU layout of src/gpu/repack.rs. One thread per
// element along x, batch rows along z.

struct Params {
    cols: u32,       // row length
    row_words: u32,  // u32 words per row of W
    n_vocab: u32,    // rows of W (the token id is clamped below it)
    row0: u32,       // #ifdef PART: W holds rows row0 .. row0 + n_vocab of a table cut into parts
}

@group(0) @binding(0) var<storage, read> w: array<u32>;          // [n_vocab · row_words]
@group(0) @binding(1) var<storage, read> state: array<u32>;      // [pos0, n, tokens…]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [batch · cols]
@group(0) @binding(3) var<uniform> p: Params;

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
#ifdef PART
    // a table cut by rows into parts, one dispatch each: the part holding the token writes it
    let id = state[2u + t];
    if (id < p.row0 || id - p.row0 >= p.n_vocab) {
        return;
    }
    let token = id - p.row0;
#else
    let token = min(state[2u + t], p.n_vocab - 1u);
#endif
#endif
    out[t * p.cols + i] = value(token * p.row_words, i);
}

// value for the weight type; wbyte, sbyte, scale_min
#include "dequant"
#include "blocks"
