// Greedy sampling on the GPU: the index of the largest logit (the lowest index among equals, as
// the CPU's argmax), written to state[2] (the next step's token, tokens[0]) and to out[0] for readback.
// One workgroup: strided scan, then a (value, index) reduction in workgroup memory.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;        // [n]
@group(0) @binding(1) var<storage, read_write> state: array<u32>;   // [pos0, n, tokens…]
@group(0) @binding(2) var<storage, read_write> out: array<u32>;     // [1]
@group(0) @binding(3) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32) {
    var bv = -3.4e38;
    var bi = 0xFFFFFFFFu;
    for (var i = li; i < p.n; i += WG) {
        let v = logits[i];
        if (v > bv) {
            bv = v;
            bi = i;
        }
    }
    best_v[li] = bv;
    best_i[li] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            let ov = best_v[li + s];
            let oi = best_i[li + s];
            if (ov > best_v[li] || (ov == best_v[li] && oi < best_i[li])) {
                best_v[li] = ov;
                best_i[li] = oi;
            }
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        let tok = select(best_i[0], 0u, best_i[0] == 0xFFFFFFFFu);
        state[2] = tok;
        out[0] = tok;
    }
}
