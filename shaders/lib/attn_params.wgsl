// The attention kernels' uniform (attn_decode, attn_merge, attn_prefill: `#include "attn_params"`),
// filled once per model by src/gpu/forward.rs.
struct Params {
    n_head: u32,
    group: u32,       // query heads per KV head
    head_dim: u32,    // even, ≤ 256
    kv_dim: u32,
    n_ctx: u32,
    max_chunks: u32,  // n_ctx / 64 rounded up: decode's partials per head
    scale: f32,       // 1 / sqrt(head_dim), or the architecture's
    window: u32,      // sliding window: a query at p sees p − window + 1 ..= p; 0 for none
}

// The first position a query at `len − 1` sees: 0, or the start of its sliding window.
fn window_start(len: u32) -> u32 {
    return select(0u, len - p.window, p.window > 0u && len > p.window);
}
