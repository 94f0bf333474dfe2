// Rotary position embedding fused with the KV-cache append, for batch row t (along z) at position
// state[0] + t: the query heads are rotated in place, the key heads rotated on their way into the
// layer's f16 key cache, and the values copied into the value cache (as `kv_append.wgsl` does for
// models without RoPE). Angles as the CPU path (and llama.cpp): θ₀ = pos, θᵢ₊₁ = θᵢ · theta_scale, in
// f32, then as ggml's rope: θ = freq_scale · θ / factor[i] (#ifdef FACTORS, Llama 3.x's
// rope_freqs and Phi-3.5's LongRoPE factors; otherwise θ = freq_scale · θ), and cos θ, sin θ times
// attn_factor. #ifdef NEOX rotates pairs (i, i + rope_dims/2), otherwise adjacent pairs (2i, 2i + 1);
// elements past rope_dims pass through.
// Threads: one per (query head, pair), then one per cache word (two adjacent key and value
// elements, which is how the cache packs them; each of the two keys is rotated on its own from
// its pair partner, so no thread writes what another reads).

struct Params {
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    rope_dims: u32,
    theta_scale: f32,  // base^(−2 / rope_dims)
    n_ctx: u32,        // positions the caches hold
    freq_scale: f32,   // 1 / the linear scaling factor
    attn_factor: f32,  // scales cos and sin
}

@group(0) @binding(0) var<storage, read_write> q: array<f32>;  // [batch · n_head · head_dim]
@group(0) @binding(1) var<storage, read> k: array<f32>;        // [batch · kv_dim]
@group(0) @binding(2) var<storage, read> v: array<f32>;        // [batch · kv_dim]
@group(0) @binding(3) var<storage, read_write> kc: array<u32>; // [n_ctx · kv_dim / 2] f16 pairs
@group(0) @binding(4) var<storage, read_write> vc: array<u32>; // [n_ctx · kv_dim / 2] f16 pairs
@group(0) @binding(5) var<storage, read> state: array<u32>;    // [pos0, n, tokens…]
@group(0) @binding(6) var<uniform> p: Params;
#ifdef FACTORS
@group(0) @binding(7) var<storage, read> factors: array<f32>;  // [rope_dims / 2]
#endif

// cos and sin of pair i's angle at position pos
fn angle(pos: u32, i: u32) -> vec2<f32> {
    var theta = f32(pos);
    for (var j = 0u; j < i; j++) {
        theta *= p.theta_scale;
    }
#ifdef FACTORS
    theta = theta / factors[i];
#endif
    theta = p.freq_scale * theta;
    return vec2<f32>(cos(theta) * p.attn_factor, sin(theta) * p.attn_factor);
}

// the pair of element indices rotated by pair i of the head starting at `base`
fn pair(base: u32, i: u32) -> vec2<u32> {
#ifdef NEOX
    return vec2<u32>(base + i, base + i + p.rope_dims / 2u);
#else
    return vec2<u32>(base + 2u * i, base + 2u * i + 1u);
#endif
}

// element e of the key head starting at `base`, rotated (x0·c − x1·s for the first of its pair,
// x0·s + x1·c for the second, the expressions the query's in-place rotation uses)
fn key(base: u32, e: u32, pos: u32) -> f32 {
    if (e >= p.rope_dims) {
        return k[base + e];
    }
    let half = p.rope_dims / 2u;
#ifdef NEOX
    let i = e % half;
    let first = e < half;
#else
    let i = e / 2u;
    let first = e % 2u == 0u;
#endif
    let ab = pair(base, i);
    let cs = angle(pos, i);
    if (first) {
        return k[ab.x] * cs.x - k[ab.y] * cs.y;
    }
    return k[ab.x] * cs.y + k[ab.y] * cs.x;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.z;
    let pos = state[0] + t;
    if (t >= state[1] || pos >= p.n_ctx) {
        return;
    }
    let half = p.rope_dims / 2u;
    let q_pairs = p.n_head * half;
    if (gid.x < q_pairs) {
        let head = gid.x / half;
        let i = gid.x % half;
        let cs = angle(pos, i);
        let ab = pair((t * p.n_head + head) * p.head_dim, i);
        let x0 = q[ab.x];
        let x1 = q[ab.y];
        q[ab.x] = x0 * cs.x - x1 * cs.y;
        q[ab.y] = x0 * cs.y + x1 * cs.x;
        return;
    }
    let kv_dim = p.n_head_kv * p.head_dim;
    let word = gid.x - q_pairs;  // elements 2·word, 2·word + 1 of this row's keys and values
    if (2u * word >= kv_dim) {
        return;
    }
    let e = (2u * word) % p.head_dim;  // head_dim is even: both elements are in one head
    let base = t * kv_dim + 2u * word - e;
    let at = pos * (kv_dim / 2u) + word;
    kc[at] = pack2x16float(vec2<f32>(key(base, e, pos), key(base, e + 1u, pos)));
    let src = t * kv_dim + 2u * word;
    vc[at] = pack2x16float(vec2<f32>(v[src], v[src + 1u]));
}
