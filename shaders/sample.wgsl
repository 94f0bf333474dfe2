// Sampling on the GPU, the CPU sampler's chain (src/sampling.rs) in one workgroup, so a sampled
// generation reads back the token id (8 bytes) instead of the logits:
//   penalties (repetition, frequency, presence) over the host's (id, count) list of the window
//   → top-k (radix select of the k-th largest logit: four 8-bit histogram passes)
//   → the candidate pool: the top-k set (ties at the k-th value included) cut at min-p's floor
//     (log(min_p) below the maximum, less a margin), compacted into workgroup memory
//   → bitonic sort of the pool (logit descending, id ascending, as the CPU sorts)
//   → top-p (softmax at temperature 1 over the top-k set), min-p, then softmax at the
//     temperature and the draw `r`, a uniform number the host takes from the sampler's generator.
// A pool over CAP candidates (top-k off or huge, no min-p floor) cannot be sorted here: out[1]
// then says how many there were and the host samples from the logits as before. Temperature 0
// (with penalties, or plain argmax would run instead) picks the first of the sorted pool; the
// host passes top_k = 1 for it.
//
// Logits are compared through order-preserving u32 keys (NaN → 0, never a candidate, as the CPU
// drops NaN). The penalized logits go to `work`; `logits` is left as it was for the fallback.

struct Params {
    n: u32,                   // vocabulary size
    top_k: u32,               // 0 = off
    n_pen: u32,               // (id, count) pairs in `pen`
    _pad0: u32,
    temperature: f32,         // 0 = the best after penalties
    top_p: f32,               // 1 = off
    min_p: f32,               // 0 = off
    r: f32,                   // the draw, in [0, 1)
    repetition_penalty: f32,  // 1 = off
    frequency_penalty: f32,
    presence_penalty: f32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;        // [n]
@group(0) @binding(1) var<storage, read_write> work: array<f32>;    // [n] penalized logits
@group(0) @binding(2) var<storage, read> pen: array<u32>;           // [n_pen · 2] (id, count)
@group(0) @binding(3) var<storage, read_write> state: array<u32>;   // [pos0, n, tokens…]
@group(0) @binding(4) var<storage, read_write> out: array<u32>;     // [token, pool size if over CAP]
@group(0) @binding(5) var<uniform> p: Params;

const WG: u32 = 256u;
const CAP: u32 = 1024u;  // candidates sorted in workgroup memory (8 KiB)
const MIN_P_MARGIN: f32 = 1e-3;  // the pool's floor is loose; min-p is applied exactly after the sort

var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> ured: array<u32, WG>;
var<workgroup> fred: array<f32, WG>;
var<workgroup> pool_n: atomic<u32>;
var<workgroup> bcast: array<u32, 2>;
var<workgroup> cand_key: array<u32, CAP>;
var<workgroup> cand_id: array<u32, CAP>;

// Order-preserving key of a float: larger floats, larger keys; NaN is 0, below every number.
fn key(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        return 0u;
    }
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn value(k: u32) -> f32 {
    return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}

// Workgroup reductions (called in uniform control flow; the result is uniform).
fn max_u(v: u32, li: u32) -> u32 {
    ured[li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            ured[li] = max(ured[li], ured[li + s]);
        }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&ured[0]);
    workgroupBarrier();
    return r;
}

fn sum_u(v: u32, li: u32) -> u32 {
    ured[li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            ured[li] += ured[li + s];
        }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&ured[0]);
    workgroupBarrier();
    return r;
}

fn sum_f(v: f32, li: u32) -> f32 {
    fred[li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            fred[li] += fred[li + s];
        }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&fred[0]);
    workgroupBarrier();
    return r;
}

fn finish(tok: u32, over: u32) {
    state[2] = tok;
    out[0] = tok;
    out[1] = over;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32) {
    let n = min(p.n, arrayLength(&work));
    // penalties, on a copy
    for (var i = li; i < n; i += WG) {
        work[i] = logits[i];
    }
    storageBarrier();
    for (var j = li; j < p.n_pen; j += WG) {
        let id = pen[2u * j];
        if (id < n) {
            var l = work[id];
            if (l > 0.0) {
                l = l / p.repetition_penalty;
            } else {
                l = l * p.repetition_penalty;
            }
            work[id] = l - (f32(pen[2u * j + 1u]) * p.frequency_penalty + p.presence_penalty);
        }
    }
    storageBarrier();

    // the maximum and how many logits are numbers
    var kmax = 0u;
    var real = 0u;
    for (var i = li; i < n; i += WG) {
        let k = key(work[i]);
        kmax = max(kmax, k);
        real += select(0u, 1u, k != 0u);
    }
    kmax = max_u(kmax, li);
    real = sum_u(real, li);
    if (real == 0u) {
        if (li == 0u) {
            finish(0u, 0u);
        }
        return;
    }
    let m = value(kmax);

    // top-k: the key of the k-th largest (tau) and how many logits with that key it keeps
    let k_on = p.top_k > 0u && p.top_k < real;
    var tau = 0u;
    var ties = 0u;
    if (k_on) {
        var prefix = 0u;
        var mask = 0u;
        var want = p.top_k;
        for (var digit = 0u; digit < 4u; digit++) {
            let shift = 24u - 8u * digit;
            atomicStore(&hist[li], 0u);
            workgroupBarrier();
            for (var i = li; i < n; i += WG) {
                let k = key(work[i]);
                if (k != 0u && (k & mask) == prefix) {
                    atomicAdd(&hist[(k >> shift) & 0xFFu], 1u);
                }
            }
            workgroupBarrier();
            if (li == 0u) {
                // the digit whose bucket holds the want-th largest, counting from the top
                var acc = 0u;
                var d = 255u;
                loop {
                    let h = atomicLoad(&hist[d]);
                    if (acc + h >= want || d == 0u) {
                        break;
                    }
                    acc += h;
                    d -= 1u;
                }
                bcast[0] = d;
                bcast[1] = want - acc;
            }
            prefix |= workgroupUniformLoad(&bcast[0]) << shift;
            want = workgroupUniformLoad(&bcast[1]);
            mask |= 0xFFu << shift;
            workgroupBarrier();
        }
        tau = prefix;
        ties = want;
    }

    // the normalizer of top-p's softmax over the top-k set (every number when top-k is off)
    var z = 0.0;
    for (var i = li; i < n; i += WG) {
        let v = work[i];
        if (key(v) > tau) {
            z += exp(v - m);
        }
    }
    z = sum_f(z, li);
    if (k_on) {
        z += f32(ties) * exp(value(tau) - m);
    }

    // the pool: the top-k set, cut at a loose min-p floor
    var lowest = max(tau, 1u);
    if (p.min_p > 0.0) {
        lowest = max(lowest, key(m + log(p.min_p) - MIN_P_MARGIN));
    }
    if (li == 0u) {
        atomicStore(&pool_n, 0u);
    }
    workgroupBarrier();
    for (var i = li; i < n; i += WG) {
        let k = key(work[i]);
        if (k >= lowest) {
            let s = atomicAdd(&pool_n, 1u);
            if (s < CAP) {
                cand_key[s] = k;
                cand_id[s] = i;
            }
        }
    }
    workgroupBarrier();
    if (li == 0u) {
        bcast[0] = atomicLoad(&pool_n);
    }
    let count = workgroupUniformLoad(&bcast[0]);
    if (count > CAP) {
        if (li == 0u) {
            finish(0u, count);
        }
        return;
    }

    // bitonic sort of the pool, padded to a power of two: logit descending, then id ascending
    var size_p = 2u;
    while (size_p < count) {
        size_p <<= 1u;
    }
    for (var i = count + li; i < size_p; i += WG) {
        cand_key[i] = 0u;
        cand_id[i] = 0xFFFFFFFFu;
    }
    workgroupBarrier();
    for (var size = 2u; size <= size_p; size <<= 1u) {
        for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
            for (var t = li; t < size_p / 2u; t += WG) {
                let i = 2u * stride * (t / stride) + t % stride;
                let j = i + stride;
                let ki = cand_key[i];
                let kj = cand_key[j];
                let ii = cand_id[i];
                let ij = cand_id[j];
                let j_first = kj > ki || (kj == ki && ij < ii);
                // blocks with the size bit clear end best-first, the others worst-first
                if (j_first == ((i & size) == 0u)) {
                    cand_key[i] = kj;
                    cand_key[j] = ki;
                    cand_id[i] = ij;
                    cand_id[j] = ii;
                }
            }
            workgroupBarrier();
        }
    }

    // the chain's cuts on the sorted pool, then the draw (one thread: at most CAP candidates)
    if (li != 0u) {
        return;
    }
    var len = count;
    if (k_on) {
        len = min(len, p.top_k);
    }
    if (p.temperature <= 0.0) {
        finish(cand_id[0], 0u);
        return;
    }
    if (p.top_p < 1.0) {
        var cum = 0.0;
        for (var i = 0u; i < len; i++) {
            cum += exp(value(cand_key[i]) - m) / z;
            if (cum >= p.top_p) {
                len = i + 1u;
                break;
            }
        }
    }
    if (p.min_p > 0.0) {
        var keep = 1u;
        while (keep < len && exp(value(cand_key[keep]) - m) >= p.min_p) {
            keep++;
        }
        len = keep;
    }
    var total = 0.0;
    for (var i = 0u; i < len; i++) {
        total += exp((value(cand_key[i]) - m) / p.temperature);
    }
    let goal = p.r * total;
    var cum = 0.0;
    var tok = cand_id[len - 1u];
    for (var i = 0u; i < len; i++) {
        cum += exp((value(cand_key[i]) - m) / p.temperature);
        if (goal < cum) {
            tok = cand_id[i];
            break;
        }
    }
    finish(tok, 0u);
}
