// Decode attention, step 2: out[h] = softmax(scores[h, 0..=pos]) · V[.., h / group]. One
// workgroup per query head: the max and the sum of exponentials are reduced in workgroup memory,
// the probabilities written back over the scores, then each thread sums V for its dimensions.

struct Params {
    n_head: u32,
    group: u32,
    head_dim: u32,  // even
    kv_dim: u32,
    n_ctx: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> scores: array<f32>;  // [n_head · n_ctx]
@group(0) @binding(1) var<storage, read> vc: array<u32>;            // [n_ctx · kv_dim / 2]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;     // [n_head · head_dim]
@group(0) @binding(3) var<storage, read> state: array<u32>;         // [pos, 1, token]
@group(0) @binding(4) var<uniform> p: Params;

const WG: u32 = 64u;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wid.x;
    let len = min(state[0] + 1u, p.n_ctx);
    let so = h * p.n_ctx;
    var m = -3.0e38;
    for (var t = li; t < len; t += WG) {
        m = max(m, scores[so + t]);
    }
    red[li] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] = max(red[li], red[li + s]);
        }
        workgroupBarrier();
    }
    m = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var t = li; t < len; t += WG) {
        let e = exp(scores[so + t] - m);
        scores[so + t] = e;
        sum += e;
    }
    red[li] = sum;
    storageBarrier();
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] += red[li + s];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / red[0];
    let vo = (h / p.group) * p.head_dim;
    for (var d = li; d < p.head_dim; d += WG) {
        var acc = 0.0;
        for (var t = 0u; t < len; t++) {
            acc += scores[so + t] * unpack2x16float(vc[(t * p.kv_dim + vo + d) / 2u])[d % 2u];
        }
        out[h * p.head_dim + d] = acc * inv;
    }
}
