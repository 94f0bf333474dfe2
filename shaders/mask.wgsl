// Constrained decoding on the GPU: logits[i] = −3.4e38 (as low as the argmax starts from, and
// nothing the sampler would pick; Tint refuses a constant −∞) unless bit i of the allowed set is
// set (the grammar's mask, written by the host each step: 32 tokens per word, bit i % 32 of word
// i / 32), before the argmax or the sampler, so a constrained step still reads back only its token
// id. One thread per logit along x (and y).

struct Params {
    n: u32,         // vocabulary size
    groups_x: u32,  // workgroups along x in the dispatch grid
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;  // [n]
@group(0) @binding(1) var<storage, read> allowed: array<u32>;       // [ceil(n / 32)]
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = (wid.y * p.groups_x + wid.x) * 64u + li;
    if (i >= p.n) {
        return;
    }
    if (((allowed[i / 32u] >> (i % 32u)) & 1u) == 0u) {
        logits[i] = -3.4e38;
    }
}
