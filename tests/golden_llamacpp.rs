//! The default model against llama.cpp (fixture from scripts/make_llamacpp_fixture.py).

mod common;
use common::*;
use wisp::chat::Message;
use wisp::cpu::Numerics;
use wisp::sampling::{argmax, SamplingParams};
use wisp::GenerateOptions;

/// The default model with llama.cpp's rounding (int8 activations, f16 attention operands).
fn engine(ctx: usize) -> wisp::Engine {
    let mut e = common::engine(ctx);
    e.set_numerics(Numerics::LlamaCpp);
    e
}

/// Our logits vs llama.cpp's at its top-32 ids, with llama.cpp's tokens fed in. Both quantize
/// activations to int8 per 32-block and round Q and the softmax weights to f16 in attention; what
/// remains is summation order and rounding-boundary cases, which this 135M Q4_1 model amplifies
/// (llama.cpp itself moves top logits by ~0.1 between batched and one-by-one evaluation).
/// Measured (this fixture, 2026-11-30): worst 1.11 (chat step 55, and a rank-29 logit of plain1),
/// mean 0.13–0.19 per prompt (see LOGIT_MEAN_TOL).
const LOGIT_ATOL: f32 = 1.5;
const LOGIT_MEAN_TOL: f32 = 0.25;
/// Perplexity agreement, the acceptance target of 0.5 %: measured 0.26 % over every predicted
/// token and 0.05 % over the second halves at context 512 (declaration.txt, 1,022 and 510 scored),
/// 0.21 % and 0.04 % at context 2,048 (essay.txt, 4,094 and 2,046 scored). exp/sin/cos/pow come
/// from the `libm` crate (with the platform's libm it was 0.56 %: RoPE and softmax move that much).
const PPL_REL_TOL: f64 = 0.005;
const PPL_HALF_REL_TOL: f64 = 0.005;
/// Greedy ids must agree until llama.cpp's top-two margin first drops below this.
const NEAR_TIE: f64 = 0.1;
/// Each prompt's greedy run must have at least this many decisive steps before llama.cpp's first
/// near-tie (the fixture has 22, 20 and 41), so the comparison can never pass on an empty prefix.
const MIN_DECISIVE_STEPS: usize = 16;

#[test]
fn tokenizer_ids_equal_llamacpp() {
    let f = read_json("llamacpp_smollm2.json");
    let e = engine(512);
    for case in f["tokenizer"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let got = e.tokenizer.encode(text, true).unwrap();
        assert_eq!(got, ids(&case["ids"]), "text {text:?}");
    }
}

#[test]
fn chat_template_renders_llamacpp_prompt() {
    let f = read_json("llamacpp_smollm2.json");
    let chat = &f["greedy"][0];
    let e = engine(512);
    let text = e.template.render(&[Message::new("user", "What is the capital of France?")], true).unwrap();
    assert_eq!(text, chat["prompt"].as_str().unwrap());
    assert_eq!(e.tokenizer.encode(&text, true).unwrap(), ids(&chat["prompt_ids"]));
}

#[test]
fn logits_track_llamacpp_with_its_tokens_fed_in() {
    let f = read_json("llamacpp_smollm2.json");
    let mut e = engine(512);
    for case in f["greedy"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let prompt = ids(&case["prompt_ids"]);
        e.reset();
        let mut logits = e.prefill(&prompt).unwrap().to_vec();
        let (mut worst, mut worst_at, mut sum, mut count) = (0.0f32, (0, 0), 0.0f32, 0);
        let mut tie_seen = false;
        for (step, s) in case["steps"].as_array().unwrap().iter().enumerate() {
            let top = ids(&s["top_ids"]);
            for (k, (&id, want)) in top.iter().zip(s["top_logits"].as_array().unwrap()).enumerate() {
                let d = (logits[id as usize] - want.as_f64().unwrap() as f32).abs();
                sum += d;
                count += 1;
                if d > worst {
                    worst = d;
                    worst_at = (step, k);
                }
            }
            let tok = s["token"].as_u64().unwrap() as u32;
            tie_seen |= s["margin"].as_f64().unwrap() < NEAR_TIE;
            if !tie_seen {
                assert_eq!(argmax(&logits), tok, "{name}: greedy id differs at step {step}");
            }
            logits = e.step(tok).unwrap().to_vec();
        }
        let mean = sum / count as f32;
        println!("{name}: max |logit - llama.cpp| = {worst:.4} at (step, rank) {worst_at:?}, mean {mean:.4}");
        assert!(
            worst <= LOGIT_ATOL,
            "{name}: max logit error {worst} at (step, rank) {worst_at:?} > {LOGIT_ATOL}"
        );
        assert!(mean <= LOGIT_MEAN_TOL, "{name}: mean logit error {mean} > {LOGIT_MEAN_TOL}");
    }
}

#[test]
fn free_running_greedy_equals_llamacpp_until_a_near_tie() {
    let f = read_json("llamacpp_smollm2.json");
    let mut e = engine(512);
    let opts = GenerateOptions {
        max_tokens: 64,
        sampling: SamplingParams::greedy(),
        ignore_eog: true,
        ..Default::default()
    };
    for case in f["greedy"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let steps = case["steps"].as_array().unwrap();
        let want: Vec<u32> = steps.iter().map(|s| s["token"].as_u64().unwrap() as u32).collect();
        let agree_until =
            steps.iter().position(|s| s["margin"].as_f64().unwrap() < NEAR_TIE).unwrap_or(steps.len());
        assert!(
            agree_until >= MIN_DECISIVE_STEPS,
            "{name}: the fixture's first near-tie is at step {agree_until}; too few steps to compare"
        );
        e.reset();
        let g = e.generate(&ids(&case["prompt_ids"]), &opts, &mut |_, _| true).unwrap();
        assert_eq!(g.ids.len(), 64, "{name}");
        // the near-tie step itself may resolve either way
        let identical = g.ids.iter().zip(&want).take_while(|(a, b)| a == b).count();
        println!("{name}: identical for {identical} steps (first near-tie at {agree_until})");
        assert!(
            identical >= agree_until,
            "{name}: greedy ids differ from llama.cpp's at step {identical}, before its first near-tie \
             at step {agree_until}: ours {:?}, llama.cpp {:?}",
            &g.ids[..agree_until],
            &want[..agree_until]
        );
    }
}

#[test]
fn perplexity_tracks_llamacpp() {
    perplexity_against(&read_json("llamacpp_smollm2.json")["perplexity"]);
}

/// Positions far beyond 512: context 2,048 over a 5,000-token text (two whole windows).
#[test]
fn perplexity_at_context_2048_tracks_llamacpp() {
    perplexity_against(&read_json("llamacpp_smollm2.json")["perplexity_long"]);
}

fn perplexity_against(p: &serde_json::Value) {
    let ctx = p["ctx"].as_u64().unwrap() as usize;
    let text =
        std::fs::read_to_string(fixture(p["file"].as_str().unwrap().trim_start_matches("tests/fixtures/")))
            .unwrap();
    let mut e = engine(ctx);
    let ids = e.tokenizer.encode(&text, false).unwrap();
    assert_eq!(ids.len() as u64, p["n_tokens"].as_u64().unwrap());
    for (key, half, tol) in [("all", false, PPL_REL_TOL), ("half", true, PPL_HALF_REL_TOL)] {
        let (ppl, n) = e.perplexity(&ids, ctx, half).unwrap();
        let want = p[key]["ppl"].as_f64().unwrap();
        assert_eq!(n as u64, p[key]["tokens_scored"].as_u64().unwrap(), "{key}");
        let rel = (ppl - want).abs() / want;
        println!("ctx {ctx} {key}: ppl {ppl:.4} vs llama.cpp {want:.4} ({:.3}%)", rel * 100.0);
        assert!(rel < tol, "{key}: ppl {ppl} vs llama.cpp {want} ({:.3}% off)", rel * 100.0);
    }
}
