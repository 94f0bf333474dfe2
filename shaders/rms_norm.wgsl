// out[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) · weight: RMSNorm, one workgroup per row
// (rows along x, then y, of the dispatch grid). The sum of squares is reduced in workgroup memory.
// #ifdef INPLACE the rows of x are normalised where they are (Qwen3's per-head norm of the
// queries and keys: a row is one head), with no `out` binding.

struct Params {
    n: u32,         // row length
    rows: u32,
    groups_x: u32,  // workgroups along x in the dispatch grid
    eps: f32,
}

#ifdef INPLACE
@group(0) @binding(0) var<storage, read_write> x: array<f32>;    // [rows · n]
#else
@group(0) @binding(0) var<storage, read> x: array<f32>;          // [rows · n]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [rows · n]
#endif
@group(0) @binding(1) var<storage, read> weight: array<f32>;     // [n]
@group(0) @binding(3) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = wid.y * p.groups_x + wid.x;
    let live = row < p.rows;
    let o = row * p.n;
    var ss = 0.0;
    if (live) {
        for (var i = li; i < p.n; i += WG) {
            ss += x[o + i] * x[o + i];
        }
    }
    partial[li] = ss;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            partial[li] += partial[li + s];
        }
        workgroupBarrier();
    }
    if (live) {
        let scale = inverseSqrt(partial[0] / f32(p.n) + p.eps);
        for (var i = li; i < p.n; i += WG) {
#ifdef INPLACE
            x[o + i] = x[o + i] * scale * weight[i];
#else
            out[o + i] = x[o + i] * scale * weight[i];
#endif
        }
    }
}
