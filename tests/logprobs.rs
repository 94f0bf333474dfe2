//! Token log-probabilities (`GenerateOptions::logprobs`, `--logprobs N`): the log-softmax of each
//! step's raw logits, against llama.cpp's (tests/fixtures/llamacpp_logprobs.json from
//! scripts/make_logprobs_fixture.py) on the CPU, the GPU against the CPU, and the edge cases of
//! `token_logprob` against a direct computation.

mod common;
use common::*;
use wisp::cpu::Numerics;
use wisp::sampling::{token_logprob, SamplingParams, TokenLogprob, MAX_TOP_LOGPROBS};
use wisp::GenerateOptions;

/// Ours (llamacpp numerics) against llama.cpp's, as probabilities: the logits themselves differ
/// by up to ~1.1 (mean 0.13–0.19: tests/golden_llamacpp.rs), which moves an unlikely token's
/// log-probability a lot and its probability little. Measured (2026-11-30, 72 steps, top 5 each):
/// worst 0.070 in probability, the chosen tokens' log-probabilities within 0.28.
const PROB_ATOL: f64 = 0.1;
/// Steps whose top-two margin is under this may pick either token (a near-tie).
const NEAR_TIE: f64 = 0.1;

fn greedy(n: usize, top: usize) -> GenerateOptions {
    GenerateOptions {
        max_tokens: n,
        sampling: SamplingParams::greedy(),
        ignore_eog: true,
        logprobs: Some(top),
        ..Default::default()
    }
}

#[test]
fn greedy_logprobs_equal_llamacpps() {
    let f = read_json("llamacpp_logprobs.json");
    let mut e = engine(512);
    e.set_numerics(Numerics::LlamaCpp);
    let (mut worst_p, mut worst_lp) = (0.0f64, 0.0f64);
    for case in f["prompts"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let steps = case["steps"].as_array().unwrap();
        e.reset();
        let g = e.generate(&ids(&case["prompt_ids"]), &greedy(steps.len(), 5), &mut |_, _| true).unwrap();
        assert_eq!(g.logprobs.len(), g.ids.len(), "{name}: one entry per generated token");
        let mut compared = 0;
        for (i, (s, lp)) in steps.iter().zip(&g.logprobs).enumerate() {
            let want_tok = s["token"].as_u64().unwrap() as u32;
            if lp.token != want_tok {
                let margin = s["margin"].as_f64().unwrap();
                assert!(
                    margin < NEAR_TIE,
                    "{name} step {i}: token {} where llama.cpp has {want_tok}",
                    lp.token
                );
                break; // after a near-tie the texts part ways
            }
            assert_eq!(lp.token, g.ids[i]);
            let want = s["logprob"].as_f64().unwrap();
            let dp = (lp.logprob.exp() - want.exp()).abs();
            worst_p = worst_p.max(dp);
            worst_lp = worst_lp.max((lp.logprob - want).abs());
            assert!(
                dp <= PROB_ATOL,
                "{name} step {i}: probability {} vs llama.cpp {}",
                lp.logprob.exp(),
                want.exp()
            );
            // each of llama.cpp's top 5 is among ours with its probability, unless it is too
            // unlikely to be sure of a place there
            let floor = lp.top.last().unwrap().logprob.exp() + 2.0 * PROB_ATOL;
            for t in s["top"].as_array().unwrap() {
                let (id, want) = (t[0].as_u64().unwrap() as u32, t[1].as_f64().unwrap().exp());
                match lp.top.iter().find(|a| a.token == id) {
                    Some(a) => {
                        let dp = (a.logprob.exp() - want).abs();
                        worst_p = worst_p.max(dp);
                        assert!(
                            dp <= PROB_ATOL,
                            "{name} step {i}: alternative {id}: {} vs {want}",
                            a.logprob.exp()
                        );
                    }
                    None => assert!(
                        want < floor,
                        "{name} step {i}: llama.cpp's alternative {id} ({want}) missing"
                    ),
                }
            }
            compared += 1;
        }
        println!("{name}: {compared} steps compared");
        assert!(compared >= 8, "{name}: only {compared} steps before a near-tie");
    }
    println!("worst |Δ probability| against llama.cpp: {worst_p:.5}; worst |Δ logprob| of the chosen token: {worst_lp:.4}");
}

/// The reported distribution is the model's own: before the sampler's penalties and truncation
/// (here a repetition penalty and top-k sampling), equal to the log-softmax of the raw logits.
#[test]
fn logprobs_are_of_the_raw_logits_whatever_the_sampler_does() {
    let mut e = engine(256);
    let prompt = e.encode("The quick brown fox jumps over the lazy dog. The quick").unwrap();
    let opts = GenerateOptions {
        max_tokens: 6,
        sampling: SamplingParams {
            temperature: 0.9,
            top_k: 8,
            repetition_penalty: 1.5,
            seed: 3,
            ..Default::default()
        },
        logprobs: Some(3),
        ..Default::default()
    };
    let g = e.generate(&prompt, &opts, &mut |_, _| true).unwrap();
    // replay: the raw logits of each step, teacher-forced on the sampled ids
    let mut r = engine(256);
    let mut logits = r.prefill(&prompt).unwrap().to_vec();
    for (lp, &tok) in g.logprobs.iter().zip(&g.ids) {
        assert_eq!(lp, &token_logprob(&logits, tok, 3));
        // the top alternative is the largest logit: exp(l − lse) over the vocabulary sums to 1
        let lse = logits_max(&logits) - lp.top[0].logprob;
        let sum: f64 = logits.iter().map(|&l| (l as f64 - lse).exp()).sum();
        assert!((sum - 1.0).abs() < 1e-9, "probabilities sum to {sum}");
        logits = r.step(tok).unwrap().to_vec();
    }
}

fn logits_max(l: &[f32]) -> f64 {
    l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64
}

#[test]
fn token_logprob_edge_cases() {
    // ties go to the lower id; NaN is impossible; `top` past the vocabulary stops there
    let l = [1.0f32, 3.0, f32::NAN, 3.0, -2.0];
    let lp = token_logprob(&l, 3, 10);
    let lse = (1f64.exp() + 2.0 * 3f64.exp() + (-2f64).exp()).ln();
    assert!((lp.logprob - (3.0 - lse)).abs() < 1e-12);
    let ids: Vec<u32> = lp.top.iter().map(|a| a.token).collect();
    assert_eq!(ids, [1, 3, 0, 4]);
    assert_eq!(token_logprob(&l, 2, 0), TokenLogprob { token: 2, logprob: f64::NEG_INFINITY, top: vec![] });
    // at most MAX_TOP_LOGPROBS alternatives, in order, against a full sort
    let mut rng = 0x1234_5678u64;
    let big: Vec<f32> = (0..5000)
        .map(|_| {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((rng >> 40) % 200) as f32 / 10.0 // many equal values
        })
        .collect();
    let lp = token_logprob(&big, 17, 50);
    assert_eq!(lp.top.len(), MAX_TOP_LOGPROBS);
    let mut order: Vec<u32> = (0..big.len() as u32).collect();
    order.sort_by(|&a, &b| big[b as usize].total_cmp(&big[a as usize]).then(a.cmp(&b)));
    assert_eq!(lp.top.iter().map(|a| a.token).collect::<Vec<_>>(), order[..MAX_TOP_LOGPROBS]);
}

#[test]
fn more_alternatives_than_the_limit_are_refused() {
    let mut e = engine(64);
    let err =
        e.generate(&[1, 2], &greedy(2, MAX_TOP_LOGPROBS + 1), &mut |_, _| true).unwrap_err().to_string();
    assert!(err.contains("logprobs") && err.contains("at most 20"), "{err}");
}

/// On the GPU the logits come back each step when log-probabilities are asked for (instead of
/// the argmax alone): the same ids as the CPU's, log-probabilities within the logits' distance.
#[test]
fn gpu_logprobs_equal_the_cpus() {
    #[path = "common/gpu.rs"]
    mod gpu_env;
    let Some(g) = gpu_env::open() else { return };
    let mut cpu = engine(256);
    let mut gpu = engine(256);
    let gf = pollster::block_on(wisp::gpu::forward::GpuForward::new(std::sync::Arc::new(g), &gpu.model, 256))
        .unwrap();
    gpu.use_gpu(gf).unwrap();
    let prompt = cpu.encode("The capital of France is").unwrap();
    let (a, b) = (
        cpu.generate(&prompt, &greedy(8, 4), &mut |_, _| true).unwrap(),
        gpu.generate(&prompt, &greedy(8, 4), &mut |_, _| true).unwrap(),
    );
    assert_eq!(a.ids, b.ids);
    for (x, y) in a.logprobs.iter().zip(&b.logprobs) {
        assert!((x.logprob - y.logprob).abs() < 0.01, "{x:?} {y:?}");
        assert_eq!(x.top.len(), y.top.len());
    }
    assert_eq!(b.logprobs.len(), 8);
}
