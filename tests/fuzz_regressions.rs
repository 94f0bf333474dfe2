//! Replays every fuzz seed (`fuzz/seeds/<target>/`) and every input that once made a target fail
//! (`fuzz/regressions/<target>/`) through the targets' own checks, on stable Rust, in every CI run.
//! This release build has no overflow checks; `scripts/fuzz.sh` (the CI smoke run included) also
//! replays the regressions under the fuzz build, which has them.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let mut n = 0;
    for dir in ["fuzz/seeds", "fuzz/regressions"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            eprintln!("{target}: {}", p.display());
            check(&bytes);
            n += 1;
        }
    }
    assert!(n > 0, "no seeds for {target}");
}

#[test]
fn gguf_parse() {
    replay("gguf_parse", checks::gguf_parse);
}

#[test]
fn gguf_engine() {
    replay("gguf_engine", checks::gguf_engine);
}

#[test]
fn safetensors() {
    replay("safetensors", checks::safetensors);
}

#[test]
fn tokenizer() {
    replay("tokenizer", checks::tokenizer);
}

#[test]
fn chat_template() {
    replay("chat_template", checks::chat_template);
}

#[test]
fn sampler() {
    replay("sampler", checks::sampler);
}

/// The generated seeds are what they claim: every engine seed is a model that loads and runs, so
/// the fuzzer starts from deep inside the loader rather than at its first check.
#[test]
fn engine_seeds_are_working_models() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/gguf_engine");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("seed folder") {
        let p = e.expect("entry").path();
        let bytes = std::fs::read(&p).expect("seed");
        let mut engine =
            wisp::Engine::from_gguf_bytes(&bytes, 32).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let prompt = engine.encode("ab c").expect("encodes");
        let opts = wisp::GenerateOptions { max_tokens: 4, ignore_eog: true, ..Default::default() };
        let g = engine
            .generate(&prompt, &opts, &mut |_, _| true)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(g.ids.len(), 4, "{}", p.display());
        n += 1;
    }
    assert!(n >= 5);
}
