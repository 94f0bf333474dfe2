// Causal attention for a prefill batch: for batch row t (position pos0 + t, pos0 = state[0]) and
// query head h, out[t, h] = softmax(q[t, h] · K[0..=pos0+t, h / group] · scale) · V[.., h / group]
// over the layer's f16 cache (pairs packed in u32), which already holds the batch's own keys and
// values. One workgroup per (head, batch row): the keys are visited in chunks of WG positions,
// one thread per position for the scores, with an online softmax (running max and sum, the
// partial output rescaled when the max grows), so no score buffer of n_ctx entries is needed.
// Each thread accumulates up to four output dimensions (head_dim ≤ 4 · WG = 256).

#include "attn_params"

@group(0) @binding(0) var<storage, read> q: array<f32>;            // [batch · n_head · head_dim]
@group(0) @binding(1) var<storage, read> kc: array<u32>;           // [n_ctx · kv_dim / 2]
@group(0) @binding(2) var<storage, read> vc: array<u32>;           // [n_ctx · kv_dim / 2]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;    // [batch · n_head · head_dim]
@group(0) @binding(4) var<storage, read> state: array<u32>;        // [pos0, n, tokens…]
@group(0) @binding(5) var<uniform> p: Params;

const WG: u32 = 64u;
var<workgroup> qs: array<f32, 256>;  // the query head
var<workgroup> pr: array<f32, WG>;   // the chunk's probabilities (unnormalised)
var<workgroup> red: array<f32, WG>;

fn reduce_max(li: u32, v: f32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] = max(red[li], red[li + s]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn reduce_sum(li: u32, v: f32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] += red[li + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wid.x;
    let t = wid.z;
    if (h >= p.n_head || t >= state[1]) {
        return;
    }
    let len = min(state[0] + t + 1u, p.n_ctx);
    let lo = window_start(len);
    let qo = (t * p.n_head + h) * p.head_dim;
    for (var d = li; d < p.head_dim; d += WG) {
        qs[d] = q[qo + d];
    }
    workgroupBarrier();
    let kvo = (h / p.group) * p.head_dim;
    var m = -3.0e38;
    var l = 0.0;
    var acc = vec4<f32>(0.0);
    // from the chunk holding the window's first position (0 without a window)
    for (var c0 = lo / WG * WG; c0 < len; c0 += WG) {
        let j = c0 + li;
        let live = j >= lo && j < len;
        var s = -3.0e38;
        if (live) {
            let ko = (j * p.kv_dim + kvo) / 2u;
            var dot = 0.0;
            for (var i = 0u; i < p.head_dim / 2u; i++) {
                let kk = unpack2x16float(kc[ko + i]);
                dot += qs[2u * i] * kk.x + qs[2u * i + 1u] * kk.y;
            }
            s = dot * p.scale;
        }
        let m_new = max(m, reduce_max(li, s));
        let corr = exp(m - m_new);
        let e = select(0.0, exp(s - m_new), live);
        pr[li] = e;
        l = l * corr + reduce_sum(li, e);
        m = m_new;
        acc *= corr;
        let nj = min(WG, len - c0);
        let j0 = select(0u, lo - c0, lo > c0);
        for (var k = 0u; k < 4u; k++) {
            let d = li + k * WG;
            if (d < p.head_dim) {
                var a = 0.0;
                for (var jj = j0; jj < nj; jj++) {
                    a += pr[jj] * unpack2x16float(vc[((c0 + jj) * p.kv_dim + kvo + d) / 2u])[d % 2u];
                }
                acc[k] += a;
            }
        }
        workgroupBarrier();
    }
    for (var k = 0u; k < 4u; k++) {
        let d = li + k * WG;
        if (d < p.head_dim) {
            out[qo + d] = acc[k] / l;
        }
    }
}
