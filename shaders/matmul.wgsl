// Y[t, r] = Σ_c W[r, c] · X[t, c] (+ bias[r] with #ifdef BIAS) for the n = state[1] rows of a
// prefill batch: the matrix–matrix product, one variant per weight type (#ifdef F32 | F16 | BF16 |
// Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | IQ4_NL | Q2_K | Q3_K | Q4_K | Q5_K | Q6_K), on the GPU layout of
// src/gpu/repack.rs.
//
// Shared-memory tiling: a workgroup of 256 threads owns a 64 × 64 tile of Y (BM weight rows, BN
// batch rows: a whole prefill submission). It walks the columns BK at a time: the threads together
// expand the BM × BK slice of W to f32 (each weight is dequantized once per tile, four values per
// call of `value4`) and copy the BN × BK slice of X into workgroup memory, then each thread
// accumulates its 4 × 4 outputs from there, two vec4 loads per 16 multiply-adds. A thread's
// weight rows are r0 + tr + 16·i and its batch rows t0 + tt + 16·j (i, j < 4), so neighbouring
// threads read neighbouring workgroup-memory words; threads whose batch rows are all past n skip
// the arithmetic. Weights are read once per 64 batch rows. Weight-row tiles are numbered over a
// 2-D (x, y) grid (groups_x wide); z numbers the tiles of BN batch rows.
//
// #ifdef SWIGLU: W stacks SwiGLU's gate (rows 0 .. rows) and up (rows .. 2·rows) projections and
// Y[t, r] = silu(gate_r · X_t) · (up_r · X_t): a second slice of W for the up rows, and BK halved
// to stay within 16 KiB of workgroup memory.
// #ifdef ACC: Y[t, r] += the product (+ bias), the residual add fused (as in matvec.wgsl).
// #ifdef SPLIT: W stacks Q, K and V (as in matvec.wgsl): row r of batch row t goes to
// Y[t, r] (r < split0, rows of split0), Y1[t, r − split0] or Y2[t, r − split1].

struct Params {
    rows: u32,       // rows of W = row length of Y (SWIGLU: half of W's rows)
    cols: u32,       // columns of W = row length of X
    row_words: u32,  // u32 words per row of W
    groups_x: u32,   // workgroups along x in the dispatch grid
#ifdef SPLIT
    split0: u32,     // rows of W written to Y
    split1: u32,     // split0 + rows written to Y1 (the rest go to Y2)
    _pad0: u32,
    _pad1: u32,
#endif
}

@group(0) @binding(0) var<storage, read> w: array<u32>;        // [rows · row_words]
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [batch · cols]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [batch · rows]
@group(0) @binding(3) var<storage, read> state: array<u32>;    // [pos0, n, tokens…]
@group(0) @binding(4) var<uniform> p: Params;
#ifdef BIAS
@group(0) @binding(5) var<storage, read> bias: array<f32>;     // [rows]
#ifdef SPLIT
@group(0) @binding(6) var<storage, read_write> y1: array<f32>; // [batch · (split1 − split0)]
@group(0) @binding(7) var<storage, read_write> y2: array<f32>; // [batch · (rows − split1)]
#endif
#else
#ifdef SPLIT
@group(0) @binding(5) var<storage, read_write> y1: array<f32>;
@group(0) @binding(6) var<storage, read_write> y2: array<f32>;
#endif
#endif

const WG: u32 = 256u;  // threads per workgroup
const BM: u32 = 64u;   // weight rows per tile (MATMUL_BM in src/gpu/mod.rs)
const BN: u32 = 64u;   // batch rows per tile (MATMUL_BN)
#ifdef SWIGLU
const BK: u32 = 16u;   // columns per step
#else
const BK: u32 = 32u;
#endif
const SLICE: u32 = BK * 16u;

// 16 KiB in all (12 with SWIGLU), WebGPU's default limit
var<workgroup> ws: array<vec4<f32>, SLICE>;  // [BK][16]: ws[k·16 + i][c] = W[r0 + i + 16·c, c0 + k]
var<workgroup> xs: array<vec4<f32>, SLICE>;  // [BK][16]: xs[k·16 + j][c] = X[t0 + j + 16·c, c0 + k]
#ifdef SWIGLU
var<workgroup> ws_up: array<vec4<f32>, SLICE>;  // the same for the up rows: W[rows + r0 + …]
#endif

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r0 = (wid.y * p.groups_x + wid.x) * BM;
    let t0 = wid.z * BN;
    let n = state[1];
    let tr = li % 16u;  // this thread's weight rows: r0 + tr + 16·i
    let tt = li / 16u;  // its batch rows: t0 + tt + 16·j
    var acc: array<vec4<f32>, 4>;  // acc[j][i]: Y[t0 + tt + 16·j, r0 + tr + 16·i]
#ifdef SWIGLU
    var acc_up: array<vec4<f32>, 4>;
#endif
    for (var c0 = 0u; c0 < p.cols; c0 += BK) {
        // W's slice: BM rows × BK columns in groups of 4 values (BK = 32: two per thread)
        for (var s = li; s < BM * BK / 4u; s += WG) {
            let r = s / (BK / 4u);
            let k = (s % (BK / 4u)) * 4u;
            var v = vec4<f32>(0.0);
            if (r0 + r < p.rows && c0 + k < p.cols) {
                v = value4((r0 + r) * p.row_words, c0 + k);
            }
            for (var q = 0u; q < 4u; q++) {
                ws[(k + q) * 16u + r % 16u][r / 16u] = v[q];
            }
#ifdef SWIGLU
            var u = vec4<f32>(0.0);
            if (r0 + r < p.rows && c0 + k < p.cols) {
                u = value4((p.rows + r0 + r) * p.row_words, c0 + k);
            }
            for (var q = 0u; q < 4u; q++) {
                ws_up[(k + q) * 16u + r % 16u][r / 16u] = u[q];
            }
#endif
        }
        // X's slice: BN rows × BK columns (BK = 32: eight values per thread)
        for (var s = li; s < BN * BK; s += WG) {
            let t = s / BK;
            let k = s % BK;
            let i = min((t0 + t) * p.cols + c0 + k, arrayLength(&x) - 1u);
            xs[k * 16u + t % 16u][t / 16u] = select(0.0, x[i], t0 + t < n && c0 + k < p.cols);
        }
        workgroupBarrier();
        if (t0 + tt < n) {
            for (var k = 0u; k < BK; k++) {
                let a = ws[k * 16u + tr];
                let b = xs[k * 16u + tt];
                acc[0] += a * b.x;
                acc[1] += a * b.y;
                acc[2] += a * b.z;
                acc[3] += a * b.w;
#ifdef SWIGLU
                let u = ws_up[k * 16u + tr];
                acc_up[0] += u * b.x;
                acc_up[1] += u * b.y;
                acc_up[2] += u * b.z;
                acc_up[3] += u * b.w;
#endif
            }
        }
        workgroupBarrier();
    }
    for (var j = 0u; j < 4u; j++) {
        let t = t0 + tt + 16u * j;
        for (var i = 0u; i < 4u; i++) {
            let r = r0 + tr + 16u * i;
            if (t < n && r < p.rows) {
#ifdef SWIGLU
                let g = acc[j][i];
                y[t * p.rows + r] = g / (1.0 + exp(-g)) * acc_up[j][i];
#else
                var v = acc[j][i];
#ifdef BIAS
                v += bias[r];
#endif
#ifdef ACC
                v = y[t * p.rows + r] + v;
#endif
#ifdef SPLIT
                if (r < p.split0) {
                    y[t * p.split0 + r] = v;
                } else if (r < p.split1) {
                    y1[t * (p.split1 - p.split0) + r - p.split0] = v;
                } else {
                    y2[t * (p.rows - p.split1) + r - p.split1] = v;
                }
#else
                y[t * p.rows + r] = v;
#endif
#endif
            }
        }
    }
}

// value4 for the weight type; wbyte, sbyte, scale_min
#include "dequant"
#include "blocks"
