// Decode attention, step 2 of 2: out[h] = Σ_c e^(m_c − M) · acc_c / Σ_c e^(m_c − M) · l_c over
// the chunks c that attn_decode.wgsl wrote for head h (M = max_c m_c): the split softmax made
// whole. One workgroup per query head, one thread per output dimension.

#include "attn_params"

@group(0) @binding(0) var<storage, read> part: array<f32>;         // [n_head · max_chunks · (head_dim + 2)]
@group(0) @binding(1) var<storage, read_write> out: array<f32>;    // [n_head · head_dim]
@group(0) @binding(2) var<storage, read> state: array<u32>;        // [pos, 1, token]
@group(0) @binding(3) var<uniform> p: Params;

const C: u32 = 64u;  // positions per chunk, as attn_decode.wgsl
const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wid.x;
    let hd = p.head_dim;
    let stride = hd + 2u;
    let chunks = min((min(state[0] + 1u, p.n_ctx) + C - 1u) / C, p.max_chunks);
    let base = h * p.max_chunks * stride;
    var big = -3.0e38;
    for (var c = 0u; c < chunks; c++) {
        big = max(big, part[base + c * stride + hd]);
    }
    var l = 0.0;
    for (var c = 0u; c < chunks; c++) {
        l += exp(part[base + c * stride + hd] - big) * part[base + c * stride + hd + 1u];
    }
    for (var d = li; d < hd; d += WG) {
        var acc = 0.0;
        for (var c = 0u; c < chunks; c++) {
            acc += exp(part[base + c * stride + hd] - big) * part[base + c * stride + d];
        }
        out[h * hd + d] = acc / l;
    }
}
