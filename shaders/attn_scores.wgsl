// Decode attention, step 1: scores[h, t] = q[h] · K[t, h / group] · scale for every cached
// position t ≤ pos (state[0]); K is the layer's f16 cache (pairs packed in u32). One thread per
// (head, position): workgroups along x cover positions 0..=pos (the grid is sized from pos when
// the step is recorded), along y the heads; positions past pos are left untouched.

struct Params {
    n_head: u32,
    group: u32,      // query heads per KV head
    head_dim: u32,   // even
    kv_dim: u32,
    n_ctx: u32,
    _pad0: u32,
    scale: f32,      // 1 / sqrt(head_dim)
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;             // [n_head · head_dim]
@group(0) @binding(1) var<storage, read> kc: array<u32>;            // [n_ctx · kv_dim / 2]
@group(0) @binding(2) var<storage, read_write> scores: array<f32>;  // [n_head · n_ctx]
@group(0) @binding(3) var<storage, read> state: array<u32>;         // [pos, 1, token]
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wid.y;
    let t = wid.x * 64u + li;
    if (h >= p.n_head || t > state[0] || t >= p.n_ctx) {
        return;
    }
    let qo = h * p.head_dim;
    let ko = (t * p.kv_dim + (h / p.group) * p.head_dim) / 2u;
    var dot = 0.0;
    for (var j = 0u; j < p.head_dim / 2u; j++) {
        let kk = unpack2x16float(kc[ko + j]);
        dot += q[qo + 2u * j] * kk.x + q[qo + 2u * j + 1u] * kk.y;
    }
    scores[h * p.n_ctx + t] = dot * p.scale;
}
