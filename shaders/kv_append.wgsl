// Appends one token's key and value (f32) to a layer's f16 cache at position state[0]. The cache
// holds f16 pairs packed in u32 (pack2x16float), [n_ctx · kv_dim / 2] words; kv_dim is even.

struct Params {
    kv_dim: u32,
    n_ctx: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> k: array<f32>;           // [kv_dim]
@group(0) @binding(1) var<storage, read> v: array<f32>;           // [kv_dim]
@group(0) @binding(2) var<storage, read_write> kc: array<u32>;    // [n_ctx · kv_dim / 2]
@group(0) @binding(3) var<storage, read_write> vc: array<u32>;    // [n_ctx · kv_dim / 2]
@group(0) @binding(4) var<storage, read> state: array<u32>;       // [pos, token]
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;  // pair index
    let pos = state[0];
    if (2u * i >= p.kv_dim || pos >= p.n_ctx) {
        return;
    }
    let at = pos * (p.kv_dim / 2u) + i;
    kc[at] = pack2x16float(vec2<f32>(k[2u * i], k[2u * i + 1u]));
    vc[at] = pack2x16float(vec2<f32>(v[2u * i], v[2u * i + 1u]));
}
