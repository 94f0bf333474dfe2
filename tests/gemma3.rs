//! Gemma 3 270M (base) Q4_K_M, the real file (`wisp fetch gemma3-270m`), against llama.cpp
//! (fixture from scripts/make_gemma3_fixture.py), in what needs no forward pass: the tokenizer
//! (SentencePiece with Gemma's user-defined newline and tab runs, BOS added), its decoding and
//! end-of-generation tokens, `--model NAME` resolving to the cached file, and `--chat` refused
//! for a model that has no chat template. The model must be cached: these tests fail, naming the
//! command that fetches it, rather than skip.

mod common;
use common::{ids, read_json};
use std::path::PathBuf;
use std::process::Command;
use wisp::tokenizer::Tokenizer;
use wisp::weights::GgufSource;

const FIXTURE: &str = "llamacpp_gemma3.json";

fn gemma() -> &'static wisp::fetch::KnownModel {
    wisp::fetch::known("gemma3-270m").expect("gemma3-270m is a known model")
}

/// The cached file; a test that needs it fails (not skips) when it is missing.
fn model_path() -> PathBuf {
    let p = wisp::fetch::cached_path(gemma());
    assert!(
        p.exists(),
        "Gemma 3 270M is not cached at {}: run `wisp fetch gemma3-270m` (or `scripts/setup.sh --test`, \
         which fetches it)",
        p.display()
    );
    p
}

/// The tokenizer from the file's metadata (the architecture is not needed for it).
fn tokenizer() -> Tokenizer {
    let src = GgufSource::open(&model_path()).expect("the GGUF parses");
    Tokenizer::from_gguf(&src.header).expect("the tokenizer builds")
}

fn wisp(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wisp")).args(args).output().expect("wisp runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn fixture_is_of_the_known_file() {
    let f = read_json(FIXTURE);
    assert_eq!(f["model_sha256"], gemma().sha256, "the fixture was made from the file wisp fetches");
    let meta = &f["meta"];
    assert_eq!(meta["architecture"], "gemma3");
    assert_eq!(meta["tokenizer_model"], "llama", "SentencePiece");
    assert!(meta["chat_template"].is_null(), "a base model: no chat template");
}

#[test]
fn special_tokens_and_bos_as_llamacpp_reads_them() {
    let f = read_json(FIXTURE);
    let meta = &f["meta"];
    let tok = tokenizer();
    assert_eq!(tok.vocab_size() as u64, meta["n_vocab"].as_u64().unwrap());
    assert_eq!(tok.bos.map(u64::from), meta["bos_id"].as_u64());
    assert_eq!(tok.eos.map(u64::from), meta["eos_id"].as_u64());
    assert_eq!(tok.add_bos, meta["add_bos"].as_bool().unwrap());
    assert_eq!(tok.add_eos, meta["add_eos"].as_bool().unwrap());
    assert!(tok.chat_template.is_none());
    // llama.cpp ends generation at <eos> and at <end_of_turn> (found by its text)
    assert_eq!(tok.eog_tokens(), ids(&meta["eog_ids"]), "end-of-generation ids");
}

#[test]
fn tokenizer_ids_and_decoding_equal_llamacpp() {
    let f = read_json(FIXTURE);
    let tok = tokenizer();
    let bos = tok.bos.expect("a BOS token");
    let mut failures = Vec::new();
    for case in f["tokenizer"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want = ids(&case["ids"]);
        let got = tok.encode(text, true).unwrap();
        if got != want {
            failures.push(format!("{text:?}\n  want {want:?}\n  got  {got:?}"));
            continue;
        }
        assert_eq!(got.first(), Some(&bos), "BOS first, as the GGUF asks: {text:?}");
        for (special, key) in [(false, "decoded"), (true, "decoded_special")] {
            let back = tok.decode(&got, special);
            if back != case[key].as_str().unwrap() {
                failures.push(format!(
                    "{text:?}: decode(special={special}) gives {back:?}, llama.cpp {}",
                    case[key]
                ));
            }
        }
        let back = tok.decode(&got[1..], true);
        if back != text {
            failures.push(format!("{text:?}: decodes back (after BOS) to {back:?}"));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn greedy_prompts_and_perplexity_text_tokenize_as_llamacpp() {
    let f = read_json(FIXTURE);
    let tok = tokenizer();
    for g in f["greedy"].as_array().unwrap() {
        let prompt = g["prompt"].as_str().unwrap();
        assert_eq!(tok.encode(prompt, true).unwrap(), ids(&g["prompt_ids"]), "{}: {prompt:?}", g["name"]);
    }
    let p = &f["perplexity"];
    let text = std::fs::read_to_string(common::fixture("declaration.txt")).unwrap();
    let got = tok.encode(&text, false).unwrap();
    assert_eq!(got.len() as u64, p["n_tokens"].as_u64().unwrap());
    assert_eq!(got, ids(&p["ids"]), "declaration.txt");
}

/// `--model gemma3-270m` is the cached file (no fetch), read through the CLI.
#[test]
fn cli_model_name_resolves_to_the_cached_file() {
    model_path();
    let f = read_json(FIXTURE);
    let case = &f["tokenizer"][12];
    let text = case["text"].as_str().unwrap();
    assert!(text.starts_with("<start_of_turn>"), "the turn-marker case: {text:?}");
    let (ok, out, err) = wisp(&["tokenize", "--model", "gemma3-270m", "--text", text]);
    assert!(ok, "{err}");
    assert!(!err.contains("fetching"), "the cached file is used: {err}");
    let got: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(ids(&got), ids(&case["ids"]));
    let (ok, out, err) = wisp(&["fetch", "gemma3-270m"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), model_path().to_str().unwrap());
}

/// A base model has no chat template: `--chat` (and `wisp chat`) say so before loading the weights,
/// instead of rendering ChatML markers that would reach the model as plain text.
#[test]
fn chat_is_refused_naming_the_missing_template() {
    let path = model_path();
    let path = path.to_str().unwrap();
    for model in ["gemma3-270m", path] {
        let (ok, out, err) =
            wisp(&["generate", "--model", model, "--chat", "--prompt", "hi", "--max-tokens", "4"]);
        assert!(!ok, "refused: {out}");
        assert!(err.starts_with("wisp: error: chat template: the model has no chat template"), "{err}");
        assert!(err.contains("run it without --chat"), "{err}");
        assert!(!err.contains("panicked") && !err.contains("architecture"), "{err}");
        assert!(out.is_empty(), "{out}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["chat", "--model", "gemma3-270m"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("the model has no chat template"), "{err}");
}
