// out[r, :] = (x[r, :] − mean) / sqrt(var + eps) · weight + bias: LayerNorm (GPT-2), one
// workgroup per row (rows along x, then y, of the dispatch grid); the mean and then the variance
// are reduced in workgroup memory.

struct Params {
    n: u32,         // row length
    rows: u32,
    groups_x: u32,  // workgroups along x in the dispatch grid
    eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;          // [rows · n]
@group(0) @binding(1) var<storage, read> weight: array<f32>;     // [n]
@group(0) @binding(2) var<storage, read> bias: array<f32>;       // [n]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // [rows · n]
@group(0) @binding(4) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> partial: array<f32, WG>;

// the workgroup's sum of `v` (every invocation calls it; all receive the total)
fn reduce(li: u32, v: f32) -> f32 {
    partial[li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            partial[li] += partial[li + s];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = wid.y * p.groups_x + wid.x;
    let live = row < p.rows;
    let o = row * p.n;
    var s = 0.0;
    if (live) {
        for (var i = li; i < p.n; i += WG) {
            s += x[o + i];
        }
    }
    let mean = reduce(li, s) / f32(p.n);
    var v = 0.0;
    if (live) {
        for (var i = li; i < p.n; i += WG) {
            let c = x[o + i] - mean;
            v += c * c;
        }
    }
    let scale = inverseSqrt(reduce(li, v) / f32(p.n) + p.eps);
    if (live) {
        for (var i = li; i < p.n; i += WG) {
            out[o + i] = (x[o + i] - mean) * scale * weight[i] + bias[i];
        }
    }
}
