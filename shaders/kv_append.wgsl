// Appends the keys and values (f32) of batch row t (along z) to a layer's f16 cache at position
// state[0] + t. The cache holds f16 pairs packed in u32 (pack2x16float), [n_ctx · kv_dim / 2] words; kv_dim is even.

struct Params {
    kv_dim: u32,
    n_ctx: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> k: array<f32>;           // [batch · kv_dim]
@group(0) @binding(1) var<storage, read> v: array<f32>;           // [batch · kv_dim]
@group(0) @binding(2) var<storage, read_write> kc: array<u32>;    // [n_ctx · kv_dim / 2]
@group(0) @binding(3) var<storage, read_write> vc: array<u32>;    // [n_ctx · kv_dim / 2]
@group(0) @binding(4) var<storage, read> state: array<u32>;       // [pos0, n, tokens…]
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;  // pair index
    let t = gid.z;
    let pos = state[0] + t;
    if (2u * i >= p.kv_dim || pos >= p.n_ctx || t >= state[1]) {
        return;
    }
    let at = pos * (p.kv_dim / 2u) + i;
    let src = t * p.kv_dim + 2u * i;
    kc[at] = pack2x16float(vec2<f32>(k[src], k[src + 1u]));
    vc[at] = pack2x16float(vec2<f32>(v[src], v[src + 1u]));
}
