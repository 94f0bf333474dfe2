// y[r] = Σ_c W[r, c] · x[c] (+ bias[r] with #ifdef BIAS): the decode matrix–vector product, one
// variant per weight type (#ifdef F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | IQ4_NL | Q2_K |
// Q3_K | Q4_K | Q5_K | Q6_K). W is in the GPU layout of src/gpu/repack.rs (4-byte-aligned blocks in
// u32 words); f16 is read with unpack2x16float, so no shader-f16 feature is needed. A workgroup of
// WG threads computes WG / TPR rows: the TPR threads of a row stride over its blocks, then reduce
// in workgroup memory. Workgroups are numbered over a 2-D grid (groups_x wide) so more than 65,535
// of them can be dispatched.
//
// #ifdef SWIGLU: W stacks SwiGLU's gate (rows 0 .. rows) and up (rows .. 2·rows) projections and
// y[r] = silu(gate_r · x) · (up_r · x), one dispatch instead of two products and an element-wise
// pass (silu as `elementwise.wgsl` computes it).
// #ifdef ACC: y[r] += the product (+ bias): the residual add fused into the projection that feeds
// it (y is the residual stream; x[i] + o[i] in the order `elementwise.wgsl`'s ADD computes it).
// #ifdef SPLIT: W stacks several projections of the same x (attention's Q, K and V) and row r goes
// to y[r] (r < split0), y1[r − split0] (r < split1) or y2[r − split1]: one dispatch for three.

struct Params {
    rows: u32,       // rows of W = len(y) (SWIGLU: half of W's rows; SPLIT: len(y) + len(y1) + len(y2))
    cols: u32,       // columns of W = len(x)
    row_words: u32,  // u32 words per row of W
    groups_x: u32,   // workgroups along x in the dispatch grid
#ifdef SPLIT
    split0: u32,     // rows of W written to y
    split1: u32,     // split0 + rows written to y1 (the rest go to y2)
    _pad0: u32,
    _pad1: u32,
#endif
}

@group(0) @binding(0) var<storage, read> w: array<u32>;        // [rows · row_words]
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [cols]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [rows]
@group(0) @binding(3) var<uniform> p: Params;
#ifdef BIAS
@group(0) @binding(4) var<storage, read> bias: array<f32>;     // [rows]
#ifdef SPLIT
@group(0) @binding(5) var<storage, read_write> y1: array<f32>; // [split1 − split0]
@group(0) @binding(6) var<storage, read_write> y2: array<f32>; // [rows − split1]
#endif
#else
#ifdef SPLIT
@group(0) @binding(4) var<storage, read_write> y1: array<f32>;
@group(0) @binding(5) var<storage, read_write> y2: array<f32>;
#endif
#endif

override WG: u32 = 64u;   // threads per workgroup (≤ 256)
override TPR: u32 = 16u;  // threads per row: a power of two dividing WG

var<workgroup> partial: array<f32, 256>;
#ifdef SWIGLU
var<workgroup> partial_up: array<f32, 256>;
#endif

// x[i], or 0 past the end (odd f16 rows are padded with a zero weight)
fn xat(i: u32) -> f32 {
    return select(0.0, x[min(i, p.cols - 1u)], i < p.cols);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = (wid.y * p.groups_x + wid.x) * (WG / TPR) + li / TPR;
    let lane = li % TPR;
    var acc = 0.0;
#ifdef SWIGLU
    var acc_up = 0.0;
#endif
    if (row < p.rows) {
        let nb = (p.cols + BLOCK - 1u) / BLOCK;
        for (var b = lane; b < nb; b += TPR) {
            acc += block_dot(row * p.row_words + b * BLOCK_WORDS, b * BLOCK);
#ifdef SWIGLU
            acc_up += block_dot((p.rows + row) * p.row_words + b * BLOCK_WORDS, b * BLOCK);
#endif
        }
    }
    partial[li] = acc;
#ifdef SWIGLU
    partial_up[li] = acc_up;
#endif
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            partial[li] += partial[li + s];
#ifdef SWIGLU
            partial_up[li] += partial_up[li + s];
#endif
        }
        workgroupBarrier();
    }
    if (lane == 0u && row < p.rows) {
#ifdef SWIGLU
        let g = partial[li];
        y[row] = g / (1.0 + exp(-g)) * partial_up[li];
#else
        var v = partial[li];
#ifdef BIAS
        v += bias[row];
#endif
#ifdef ACC
        v = y[row] + v;
#endif
#ifdef SPLIT
        if (row < p.split0) {
            y[row] = v;
        } else if (row < p.split1) {
            y1[row - p.split0] = v;
        } else {
            y2[row - p.split1] = v;
        }
#else
        y[row] = v;
#endif
#endif
    }
}

// block_dot for the weight type; wbyte, sbyte, scale_min
#include "block_dot"
#include "blocks"
