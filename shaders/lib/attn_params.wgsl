// The attention kernels' uniform (attn_decode, attn_merge, attn_prefill: `#include "attn_params"`),
// filled once per model by src/gpu/forward.rs.
struct Params {
    n_head: u32,
    group: u32,       // query heads per KV head
    head_dim: u32,    // even, ≤ 256
    kv_dim: u32,
    n_ctx: u32,
    max_chunks: u32,  // n_ctx / 64 rounded up: decode's partials per head
    scale: f32,       // 1 / sqrt(head_dim)
    _pad: u32,
}
