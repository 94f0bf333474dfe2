// Rotary position embedding, in place on the query and key heads of batch row t (along z) at
// position state[0] + t. Angles as the CPU path (and llama.cpp): θ₀ = pos, θᵢ₊₁ = θᵢ · theta_scale, in f32.
// #ifdef NEOX rotates pairs (i, i + rope_dims/2), otherwise adjacent pairs (2i, 2i + 1).
// One thread per (head, pair) over the query heads, then the key heads.

struct Params {
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    rope_dims: u32,
    theta_scale: f32,  // base^(−2 / rope_dims)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> q: array<f32>;  // [batch · n_head · head_dim]
@group(0) @binding(1) var<storage, read_write> k: array<f32>;  // [batch · n_head_kv · head_dim]
@group(0) @binding(2) var<storage, read> state: array<u32>;    // [pos0, n, tokens…]
@group(0) @binding(3) var<uniform> p: Params;

// the pair of element indices rotated by pair i of the head starting at `base`
fn pair(base: u32, i: u32) -> vec2<u32> {
#ifdef NEOX
    return vec2<u32>(base + i, base + i + p.rope_dims / 2u);
#else
    return vec2<u32>(base + 2u * i, base + 2u * i + 1u);
#endif
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let half = p.rope_dims / 2u;
    let head = gid.x / half;
    let i = gid.x % half;
    let t = gid.z;
    if (t >= state[1]) {
        return;
    }
    var theta = f32(state[0] + t);
    for (var j = 0u; j < i; j++) {
        theta *= p.theta_scale;
    }
    let c = cos(theta);
    let s = sin(theta);
    if (head < p.n_head) {
        let ab = pair((t * p.n_head + head) * p.head_dim, i);
        let x0 = q[ab.x];
        let x1 = q[ab.y];
        q[ab.x] = x0 * c - x1 * s;
        q[ab.y] = x0 * s + x1 * c;
    } else if (head < p.n_head + p.n_head_kv) {
        let ab = pair((t * p.n_head_kv + head - p.n_head) * p.head_dim, i);
        let x0 = k[ab.x];
        let x1 = k[ab.y];
        k[ab.x] = x0 * c - x1 * s;
        k[ab.y] = x0 * s + x1 * c;
    }
}
