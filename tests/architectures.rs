//! Every architecture's op sequence on small seeded random-weight models, built here as GGUF
//! with the shapes that make each one itself: Llama with GQA and Llama 3.x's `rope_freqs`
//! factors, Qwen2's Q/K/V biases, Qwen3's per-head Q/K norms with a head size from
//! `key_length` (n_head · head_dim ≠ n_embd), Phi-3's fused QKV and gate/up, Gemma 3's scaled
//! embedding, post-norms, GeGLU and sliding-window layers (a window of 16 positions, so the
//! prompts run far past it; its sixth layer global), GPT-2.
//!
//! Checked: the CPU's batched prefill equals its token-by-token decode (a cache written in
//! chunks reads as one written token by token), and the GPU (exact numerics) against the CPU:
//! logits within a stated tolerance, greedy ids equal. Fidelity to llama.cpp itself on these
//! architectures is `tests/llamacpp_archs.rs`'s.

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;
use std::sync::Arc;
use wisp::gguf::{write, Value};
use wisp::gpu::forward::GpuForward;
use wisp::quant::GgmlType;
use wisp::sampling::argmax;
use wisp::Engine;

#[path = "common/gpu.rs"]
mod gpu_env;

/// CPU batched prefill vs token-by-token: the same products row by row, so equal to rounding.
const BATCH_ATOL: f32 = 1e-4;
/// GPU vs CPU logits: f32 sums in another order (both caches f16 for these f16 models);
/// measured at most 8e-5.
const GPU_ATOL: f32 = 1e-3;

const N_VOCAB: usize = 96;
const N_EMBD: usize = 64;
const N_FF: usize = 128;

struct Arch {
    name: &'static str,
    n_layer: usize,
    n_head: usize,
    n_head_kv: usize,
    head_dim: usize,
}

/// Gemma 3's sliding window here.
const WINDOW: u32 = 16;

const ARCHS: [Arch; 6] = [
    Arch { name: "llama", n_layer: 2, n_head: 4, n_head_kv: 2, head_dim: 16 },
    Arch { name: "qwen2", n_layer: 2, n_head: 4, n_head_kv: 2, head_dim: 16 },
    // 4 heads of 32: queries are 128 wide on a 64-wide residual stream
    Arch { name: "qwen3", n_layer: 2, n_head: 4, n_head_kv: 2, head_dim: 32 },
    Arch { name: "phi3", n_layer: 2, n_head: 4, n_head_kv: 4, head_dim: 16 },
    // layers 0–4 slide, layer 5 is global; 4 heads of 32
    Arch { name: "gemma3", n_layer: 6, n_head: 4, n_head_kv: 1, head_dim: 32 },
    Arch { name: "gpt2", n_layer: 2, n_head: 4, n_head_kv: 4, head_dim: 16 },
];

type T = (String, Vec<u64>, GgmlType, Vec<u8>);

/// A seeded random-weight model of `a`'s architecture, weights in f16 (norms f32).
fn model(a: &Arch, seed: u64) -> Vec<u8> {
    model_with(a, seed, WINDOW, N_VOCAB, N_EMBD)
}

/// [`model`] with Gemma 3's sliding window set to `window`.
fn model_with_window(a: &Arch, seed: u64, window: u32) -> Vec<u8> {
    model_with(a, seed, window, N_VOCAB, N_EMBD)
}

/// [`model`] with Gemma 3's sliding window, the vocabulary's size and the width chosen.
fn model_with(a: &Arch, seed: u64, window: u32, n_vocab: usize, n_embd: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    let s = |x: &str| Value::String(x.into());
    let k = |key: &str| format!("{}.{key}", a.name);
    let (d, ff, q, kv) =
        (n_embd as u64, N_FF as u64, (a.n_head * a.head_dim) as u64, (a.n_head_kv * a.head_dim) as u64);
    let tokens: Vec<Value> = (0..n_vocab).map(|i| s(&format!("<t{i}>"))).collect();
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), s(a.name)),
        (k("context_length"), Value::U32(256)),
        (k("embedding_length"), Value::U32(d as u32)),
        (k("block_count"), Value::U32(a.n_layer as u32)),
        (k("feed_forward_length"), Value::U32(ff as u32)),
        (k("attention.head_count"), Value::U32(a.n_head as u32)),
        (k("attention.head_count_kv"), Value::U32(a.n_head_kv as u32)),
        (k("rope.freq_base"), Value::F32(if a.name == "gemma3" { 1_000_000.0 } else { 10000.0 })),
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("gpt2")),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
        ("tokenizer.ggml.merges".into(), Value::Array(vec![])),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(n_vocab as u32 - 1)),
    ];
    if a.name == "gemma3" {
        meta.push((k("attention.sliding_window"), Value::U32(window)));
    }
    if a.head_dim * a.n_head != n_embd {
        meta.push((k("attention.key_length"), Value::U32(a.head_dim as u32)));
        meta.push((k("attention.value_length"), Value::U32(a.head_dim as u32)));
    }
    let mut t: Vec<T> = Vec::new();
    let mut f16s = |name: &str, dims: Vec<u64>, scale: f32| {
        let n: u64 = dims.iter().product();
        let b = (0..n).flat_map(|_| half::f16::from_f32(rng.f() * scale).to_le_bytes()).collect();
        t.push((name.into(), dims, GgmlType::F16, b));
    };
    let w = 1.0 / (n_embd as f32).sqrt();
    f16s("token_embd.weight", vec![d, n_vocab as u64], 1.0);
    let gpt2 = a.name == "gpt2";
    if gpt2 {
        f16s("position_embd.weight", vec![d, 256], 0.3);
    }
    for i in 0..a.n_layer {
        let b = |s: &str| format!("blk.{i}.{s}");
        match a.name {
            "phi3" => {
                f16s(&b("attn_qkv.weight"), vec![d, q + 2 * kv], 2.0 * w);
                f16s(&b("ffn_up.weight"), vec![d, 2 * ff], 2.0 * w);
            }
            "gpt2" => {
                f16s(&b("attn_qkv.weight"), vec![d, 3 * d], 2.0 * w);
                f16s(&b("ffn_up.weight"), vec![d, ff], 2.0 * w);
            }
            _ => {
                f16s(&b("attn_q.weight"), vec![d, q], 2.0 * w);
                f16s(&b("attn_k.weight"), vec![d, kv], 2.0 * w);
                f16s(&b("attn_v.weight"), vec![d, kv], 2.0 * w);
                f16s(&b("ffn_gate.weight"), vec![d, ff], 2.0 * w);
                f16s(&b("ffn_up.weight"), vec![d, ff], 2.0 * w);
            }
        }
        f16s(&b("attn_output.weight"), vec![q, d], w);
        f16s(&b("ffn_down.weight"), vec![ff, d], w);
    }
    if !matches!(a.name, "qwen2" | "gemma3" | "gpt2") {
        f16s("output.weight", vec![d, n_vocab as u64], 2.0 * w);
    }
    // f32 vectors: norms near 1, biases, RoPE factors
    let mut vecs: Vec<(String, u64, f32, f32)> = vec![("output_norm.weight".into(), d, 1.0, 0.2)];
    for i in 0..a.n_layer {
        let b = |s: &str| format!("blk.{i}.{s}");
        vecs.push((b("attn_norm.weight"), d, 1.0, 0.2));
        vecs.push((b("ffn_norm.weight"), d, 1.0, 0.2));
        match a.name {
            "qwen2" => {
                vecs.push((b("attn_q.bias"), q, 0.0, 0.5));
                vecs.push((b("attn_k.bias"), kv, 0.0, 0.5));
                vecs.push((b("attn_v.bias"), kv, 0.0, 0.5));
            }
            "qwen3" | "gemma3" => {
                vecs.push((b("attn_q_norm.weight"), a.head_dim as u64, 1.0, 0.2));
                vecs.push((b("attn_k_norm.weight"), a.head_dim as u64, 1.0, 0.2));
                if a.name == "gemma3" {
                    vecs.push((b("post_attention_norm.weight"), d, 1.0, 0.2));
                    vecs.push((b("post_ffw_norm.weight"), d, 1.0, 0.2));
                }
            }
            "gpt2" => {
                for (n, len) in [("attn_qkv", 3 * d), ("attn_output", d), ("ffn_up", ff), ("ffn_down", d)] {
                    vecs.push((b(&format!("{n}.bias")), len, 0.0, 0.1));
                }
                vecs.push((b("attn_norm.bias"), d, 0.0, 0.1));
                vecs.push((b("ffn_norm.bias"), d, 0.0, 0.1));
            }
            _ => {}
        }
    }
    if gpt2 {
        vecs.push(("output_norm.bias".into(), d, 0.0, 0.1));
    }
    if a.name == "llama" {
        // Llama 3.x-like: high frequencies untouched, low ones divided by up to 8
        vecs.push(("rope_freqs.weight".into(), a.head_dim as u64 / 2, 4.5, 3.5));
    }
    for (name, n, mid, spread) in vecs {
        let b = (0..n).flat_map(|_| (mid + spread * rng.f()).to_le_bytes()).collect();
        t.push((name, vec![n], GgmlType::F32, b));
    }
    let meta: Vec<(&str, Value)> = meta.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let ts: Vec<(&str, Vec<u64>, GgmlType, Vec<u8>)> =
        t.iter().map(|(n, d, ty, b)| (n.as_str(), d.clone(), *ty, b.clone())).collect();
    write::gguf(&meta, &ts)
}

fn prompt(seed: u64, n: usize) -> Vec<u32> {
    let mut rng = Rng(seed);
    (0..n).map(|_| (rng.next() % (N_VOCAB as u64 - 1)) as u32).collect()
}

fn worst(a: &[f32], b: &[f32]) -> (usize, f32) {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .fold((0, 0.0), |m, (i, d)| if d > m.1 { (i, d) } else { m })
}

#[test]
fn every_architecture_loads_and_prefill_equals_decode_on_the_cpu() {
    for a in &ARCHS {
        let bytes = model(a, 0xA5C0 + a.n_head as u64 * 7 + a.head_dim as u64);
        let mut e = Engine::from_gguf_bytes(&bytes, 128).unwrap_or_else(|err| panic!("{}: {err}", a.name));
        assert_eq!(e.info().architecture, a.name);
        // a prompt longer than one batch
        let ids = prompt(a.head_dim as u64 + 1, 70);
        let batched = e.prefill(&ids).unwrap().to_vec();
        e.reset();
        let mut one = e.prefill(&ids[..1]).unwrap().to_vec();
        for &t in &ids[1..] {
            one = e.step(t).unwrap().to_vec();
        }
        let (i, d) = worst(&batched, &one);
        assert!(
            d <= BATCH_ATOL,
            "{}: batched prefill vs decode, worst logit {i}: {} vs {} ({d})",
            a.name,
            batched[i],
            one[i]
        );
        assert!(batched.iter().all(|x| x.is_finite()), "{}", a.name);
        let spread =
            batched.iter().fold(f32::MIN, |m, &x| m.max(x)) - batched.iter().fold(f32::MAX, |m, &x| m.min(x));
        eprintln!("{}: batched vs token by token {d:.2e}, logit spread {spread:.2}", a.name);
    }
}

#[test]
fn every_architecture_on_the_gpu_matches_the_cpu() {
    let Some(g) = gpu_env::open().map(Arc::new) else { return };
    for a in &ARCHS {
        let bytes = model(a, 0xA5C0 + a.n_head as u64 * 7 + a.head_dim as u64);
        let mut cpu = Engine::from_gguf_bytes(&bytes, 128).unwrap();
        let mut gpu = Engine::from_gguf_bytes(&bytes, 128).unwrap();
        let gf = pollster::block_on(GpuForward::new(g.clone(), &gpu.model, 128))
            .unwrap_or_else(|err| panic!("{}: {err}", a.name));
        gpu.use_gpu(gf).unwrap();
        let ids = prompt(a.head_dim as u64 + 3, 70);
        let (mut lc, mut lg) = (cpu.prefill(&ids).unwrap().to_vec(), gpu.prefill(&ids).unwrap().to_vec());
        let (mut decisive, mut max_d) = (0, 0.0f32);
        for step in 0..16 {
            let (i, d) = worst(&lc, &lg);
            max_d = max_d.max(d);
            assert!(
                d <= GPU_ATOL,
                "{} step {step}: GPU vs CPU, worst logit {i}: {} vs {} ({d})",
                a.name,
                lg[i],
                lc[i]
            );
            let next = argmax(&lc);
            let mut sorted = lc.clone();
            sorted.sort_by(|x, y| y.total_cmp(x));
            if sorted[0] - sorted[1] > 2.0 * GPU_ATOL {
                decisive += 1;
                assert_eq!(argmax(&lg), next, "{} step {step}: greedy ids differ", a.name);
            }
            lc = cpu.step(next).unwrap().to_vec();
            lg = gpu.step(next).unwrap().to_vec();
        }
        assert!(
            decisive >= 12,
            "{}: only {decisive} of 16 steps decisive; the test checks too little",
            a.name
        );
        eprintln!(
            "{}: GPU vs CPU worst logit difference {max_d:.2e} over 16 steps, {decisive} decisive",
            a.name
        );
    }
}

/// Gemma 3's sliding window is applied: within the window the model equals one whose window
/// covers the whole context, and past it (from position 16 on) it differs; the GPU agrees with
/// the CPU on both sides (the test above).
#[test]
fn the_sliding_window_is_applied_from_its_end() {
    let a = ARCHS.iter().find(|a| a.name == "gemma3").unwrap();
    let seed = 0xA5C0 + a.n_head as u64 * 7 + a.head_dim as u64;
    let mut windowed = Engine::from_gguf_bytes(&model_with_window(a, seed, WINDOW), 128).unwrap();
    let mut whole = Engine::from_gguf_bytes(&model_with_window(a, seed, 256), 128).unwrap();
    let ids = prompt(5, 40);
    for n in [1, 8, WINDOW as usize] {
        assert_eq!(windowed.prefill(&ids[..n]).unwrap(), whole.prefill(&ids[..n]).unwrap(), "{n} positions");
    }
    for n in [WINDOW as usize + 1, 40] {
        let (w, h) =
            (windowed.prefill(&ids[..n]).unwrap().to_vec(), whole.prefill(&ids[..n]).unwrap().to_vec());
        let (i, d) = worst(&w, &h);
        assert!(d > 1e-3, "{n} positions: the window changed nothing (worst logit {i}, {d})");
    }
}

/// An embedding table or head over the adapter's storage-binding limit (Gemma 3's 262,144-row
/// head, GPT-2-medium's f32 table) is cut by rows into parts that each fit: here the limit is
/// lowered to 1 MiB (what the logits of a 64-row batch take) so tables of 4,096 × 256 f16 (2 MiB)
/// become 2 parts; the GPU still matches the CPU, on a tied head (Qwen2, Gemma 3) and an untied
/// one (Llama), for prefill, decode and perplexity.
#[test]
fn tables_and_heads_over_one_binding_are_cut_into_parts() {
    let Some(mut g) = gpu_env::open() else { return };
    g.limits.max_storage_buffer_binding_size = 1 << 20;
    let g = Arc::new(g);
    for name in ["llama", "qwen2", "gemma3"] {
        let a = ARCHS.iter().find(|a| a.name == name).unwrap();
        let bytes = model_with(a, 0xB16 + a.head_dim as u64, WINDOW, 4096, 256);
        let mut cpu = Engine::from_gguf_bytes(&bytes, 64).unwrap();
        let mut gpu = Engine::from_gguf_bytes(&bytes, 64).unwrap();
        let gf = pollster::block_on(GpuForward::new(g.clone(), &gpu.model, 64))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        gpu.use_gpu(gf).unwrap();
        // ids from the whole vocabulary, so every part's rows are looked up
        let mut rng = Rng(7);
        let ids: Vec<u32> = (0..40).map(|_| (rng.next() % 4095) as u32).collect();
        let (lc, lg) = (cpu.prefill(&ids).unwrap().to_vec(), gpu.prefill(&ids).unwrap().to_vec());
        let (i, d) = worst(&lc, &lg);
        assert!(d <= GPU_ATOL, "{name}: worst logit {i}: GPU {} CPU {} ({d})", lg[i], lc[i]);
        let next = argmax(&lc);
        let (lc, lg) = (cpu.step(next).unwrap().to_vec(), gpu.step(next).unwrap().to_vec());
        let (i, d) = worst(&lc, &lg);
        assert!(d <= GPU_ATOL, "{name} decode: worst logit {i}: GPU {} CPU {} ({d})", lg[i], lc[i]);
        // perplexity reads every row's logits through the parts too
        let (pc, _) = cpu.perplexity(&ids, 40, false).unwrap();
        let (pg, _) = gpu.perplexity(&ids, 40, false).unwrap();
        assert!((pc - pg).abs() <= 1e-3 * pc, "{name}: perplexity GPU {pg} CPU {pc}");
    }
}
