// Y[t, r] = Σ_c W[r, c] · X[t, c] (+ bias[r] with #ifdef BIAS) for the n = state[1] rows of a
// prefill batch: the matrix–matrix product, one variant per weight type (#ifdef F32 | F16 | BF16 |
// Q4_0 | Q4_1 | Q8_0 | Q4_K | Q6_K), on the GPU layout of src/gpu/repack.rs.
//
// Tiling: a workgroup of WG threads owns WG / TPR weight rows × TT batch rows. The TPR threads
// of a weight row stride over its blocks; each block is fetched from memory once and applied to
// all TT rows of X, so the weights are read n / TT times per batch instead of n times (the decode
// matvec reads them once per token). The TT partial sums per thread are then reduced in workgroup
// memory. Weight-row groups are numbered over a 2-D (x, y) grid (groups_x wide); z numbers the
// tiles of TT batch rows.

struct Params {
    rows: u32,       // rows of W = row length of Y
    cols: u32,       // columns of W = row length of X
    row_words: u32,  // u32 words per row of W
    groups_x: u32,   // workgroups along x in the dispatch grid
}

@group(0) @binding(0) var<storage, read> w: array<u32>;        // [rows · row_words]
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [batch · cols]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [batch · rows]
@group(0) @binding(3) var<storage, read> state: array<u32>;    // [pos0, n, tokens…]
@group(0) @binding(4) var<uniform> p: Params;
#ifdef BIAS
@group(0) @binding(5) var<storage, read> bias: array<f32>;     // [rows]
#endif

override WG: u32 = 64u;   // threads per workgroup (WG · TT ≤ 2048)
override TPR: u32 = 16u;  // threads per weight row: a power of two dividing WG
const TT: u32 = 8u;       // batch rows per workgroup

var<workgroup> partial: array<f32, 2048>;  // [TT · WG]

// x[i], or 0 past the end of the buffer (odd f16 rows are padded with a zero weight, so the
// element after a row, the next row's first, is multiplied by zero)
fn xat(i: u32) -> f32 {
    let n = arrayLength(&x);
    return select(0.0, x[min(i, n - 1u)], i < n);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = (wid.y * p.groups_x + wid.x) * (WG / TPR) + li / TPR;
    let lane = li % TPR;
    let t0 = wid.z * TT;
    let nt = min(TT, max(state[1], t0) - t0);  // live batch rows in this tile
    var acc: array<f32, TT>;
    if (row < p.rows) {
        let nb = (p.cols + BLOCK - 1u) / BLOCK;
        for (var b = lane; b < nb; b += TPR) {
            let base = row * p.row_words + b * BLOCK_WORDS;
            for (var j = 0u; j < nt; j++) {
                acc[j] += block_dot(base, (t0 + j) * p.cols + b * BLOCK);
            }
        }
    }
    for (var j = 0u; j < TT; j++) {
        partial[j * WG + li] = acc[j];
    }
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            for (var j = 0u; j < TT; j++) {
                partial[j * WG + li] += partial[j * WG + li + s];
            }
        }
        workgroupBarrier();
    }
    if (lane == 0u && row < p.rows) {
        for (var j = 0u; j < nt; j++) {
#ifdef BIAS
            y[(t0 + j) * p.rows + row] = partial[j * WG + li] + bias[row];
#else
            y[(t0 + j) * p.rows + row] = partial[j * WG + li];
#endif
        }
    }
}

// block_dot for the weight type; wbyte, sbyte, scale_min
#include "block_dot"
#include "blocks"
