// Decode attention, split over the KV cache (step 1 of 2): for one new token at pos = state[0],
// workgroup (c, y) takes the chunk of C positions c·C .. c·C + C − 1 (≤ pos) and up to GMAX query
// heads that share one KV head, so each key and value is loaded once for all of them. It writes
// the chunk's partial softmax for each head, unnormalised: m (the chunk's largest score), l
// (Σ exp(s − m)) and acc[d] = Σ exp(s − m) · V[t, d]; attn_merge.wgsl combines the chunks. The
// grid is sized per token, ((pos + 1) / C chunks, KV heads · head subgroups), so the work grows
// with the context while every chunk runs in parallel: no thread walks the whole context.
// K and V are the layer's f16 caches (pairs packed in u32). With a sliding window, positions
// before it are neither read nor counted (a chunk wholly before it writes an empty partial).

#include "attn_params"

@group(0) @binding(0) var<storage, read> q: array<f32>;             // [n_head · head_dim]
@group(0) @binding(1) var<storage, read> kc: array<u32>;            // [n_ctx · kv_dim / 2]
@group(0) @binding(2) var<storage, read> vc: array<u32>;            // [n_ctx · kv_dim / 2]
@group(0) @binding(3) var<storage, read_write> part: array<f32>;    // [n_head · max_chunks · (head_dim + 2)]
@group(0) @binding(4) var<storage, read> state: array<u32>;         // [pos, 1, token]
@group(0) @binding(5) var<uniform> p: Params;

const C: u32 = 64u;     // positions per chunk = threads per workgroup
const GMAX: u32 = 8u;   // query heads per workgroup
var<workgroup> qs: array<f32, 2048>;    // [GMAX · 256] the heads' queries
var<workgroup> s: array<f32, 512>;      // [GMAX · C] scores, then exp(s − m)
var<workgroup> stat: array<f32, 16>;    // [GMAX] m, then [GMAX] l

@compute @workgroup_size(C)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let hd = p.head_dim;
    let subgroups = (p.group + GMAX - 1u) / GMAX;
    let kvh = wid.y / subgroups;
    let g0 = (wid.y % subgroups) * GMAX;          // first head of this subgroup within the group
    let gn = min(GMAX, p.group - g0);             // heads here
    let h0 = kvh * p.group + g0;                  // first query head
    let len = min(state[0] + 1u, p.n_ctx);
    let lo = window_start(len);
    let t0 = wid.x * C;
    for (var i = li; i < gn * hd; i += C) {
        qs[i] = q[h0 * hd + i];
    }
    workgroupBarrier();

    // scores: one thread per position, its key row read once for every head
    let t = t0 + li;
    let ko = (t * p.kv_dim + kvh * hd) / 2u;
    var dots: array<f32, GMAX>;
    for (var g = 0u; g < GMAX; g++) {
        dots[g] = 0.0;
    }
    let live = t >= lo && t < len;
    if (live) {
        for (var j = 0u; j < hd / 2u; j++) {
            let kk = unpack2x16float(kc[ko + j]);
            for (var g = 0u; g < gn; g++) {
                dots[g] += qs[g * hd + 2u * j] * kk.x + qs[g * hd + 2u * j + 1u] * kk.y;
            }
        }
    }
    for (var g = 0u; g < gn; g++) {
        s[g * C + li] = select(-3.0e38, dots[g] * p.scale, live);
    }
    workgroupBarrier();
    // the chunk's max and sum per head (one thread each, C values)
    if (li < gn) {
        var m = -3.0e38;
        for (var i = 0u; i < C; i++) {
            m = max(m, s[li * C + i]);
        }
        stat[li] = m;
    }
    workgroupBarrier();
    for (var g = 0u; g < gn; g++) {
        s[g * C + li] = select(0.0, exp(s[g * C + li] - stat[g]), live);
    }
    workgroupBarrier();
    if (li < gn) {
        var l = 0.0;
        for (var i = 0u; i < C; i++) {
            l += s[li * C + i];
        }
        stat[GMAX + li] = l;
    }
    workgroupBarrier();

    // Σ exp(s − m) · V: one thread per output dimension, each value read once for every head
    let n = select(0u, min(C, len - t0), t0 < len);
    let i0 = min(select(0u, lo - t0, lo > t0), n);
    let vo = kvh * hd;
    let stride = hd + 2u;
    for (var d = li; d < hd; d += C) {
        // zeroed on every pass explicitly: Chromium's WebGPU (Tint, SwiftShader) carried the
        // previous pass's sums into a loop-local array's implicit zero value, so head
        // dimensions past the first 64 came out wrong (Gemma 3's 256; seen by tracing a decode
        // step in the page against the same adapter natively)
        var acc: array<f32, GMAX>;
        for (var g = 0u; g < GMAX; g++) {
            acc[g] = 0.0;
        }
        for (var i = i0; i < n; i++) {
            let v = unpack2x16float(vc[((t0 + i) * p.kv_dim + vo + d) / 2u])[d % 2u];
            for (var g = 0u; g < gn; g++) {
                acc[g] += s[g * C + i] * v;
            }
        }
        for (var g = 0u; g < gn; g++) {
            part[((h0 + g) * p.max_chunks + wid.x) * stride + d] = acc[g];
        }
    }
    if (li < gn) {
        let o = ((h0 + li) * p.max_chunks + wid.x) * stride + hd;
        part[o] = stat[li];
        part[o + 1u] = stat[GMAX + li];
    }
}
