//! Gemma 3 270M (base) Q4_K_M, the real file (`wisp fetch gemma3-270m`), against llama.cpp
//! (fixture from scripts/make_gemma3_fixture.py): the forward pass on the CPU in both numerics
//! and on the GPU (its 262,144-row head cut into parts on adapters with 128 MiB bindings), the
//! perplexity at context 512, and what needs no forward pass: the tokenizer
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
    for (key, file) in [("perplexity", "declaration.txt"), ("perplexity_long", "essay.txt")] {
        let p = &f[key];
        let text = std::fs::read_to_string(common::fixture(file)).unwrap();
        let got = tok.encode(&text, false).unwrap();
        assert_eq!(got.len() as u64, p["n_tokens"].as_u64().unwrap(), "{file}");
        assert_eq!(got, ids(&p["ids"]), "{file}");
    }
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

// ---- the forward pass (the gemma3 architecture) on the real file ----

/// |ours − llama.cpp| at llama.cpp's top 32 logits, teacher-forced over 3 prompts × 64 steps:
/// measured 1.67 (llamacpp numerics: Q8_K activations for the K-quants, f16-table GeGLU, the
/// queries scaled before their f16 rounding as llama.cpp's Gemma 3 graph does) and 1.93
/// (exact). Gemma amplifies rounding: on the random Gemma 3 fixture of tests/llamacpp_archs.rs
/// our exact numerics are within 0.008 of a float64 evaluation while llama.cpp itself is 5.6
/// from it, so what is left here is rounding, not the architecture.
const LOGIT_ATOL_LLAMACPP: f32 = 2.0;
const LOGIT_ATOL_EXACT: f32 = 2.4;
/// Perplexity at context 512 vs llama.cpp (llamacpp numerics), over the nine windows of
/// essay.txt: measured 0.185 % (all tokens, 29.971 vs 30.026) and 0.055 % (second halves).
/// Issue 16's bound. (2.0 % before the K-quants met Q8_K activations and the queries their
/// scaling before rounding.)
const PPL_REL_TOL: f64 = 0.005;
/// The same over declaration.txt's two windows: measured 0.61 % and 0.51 %. Two windows are
/// too few for a 0.5 % measurement: llama.cpp's own generic x86 build is 0.35 % and 0.23 % from
/// its AVX2 build there (0.02 % and 0.09 % over essay.txt's nine), because the 18 layers turn
/// last-bit differences into other int8 roundings downstream (scripts/make_gemma3_fixture.py).
const PPL_REL_TOL_TWO_WINDOWS: f64 = 0.0075;

fn engine(ctx: usize, numerics: wisp::cpu::Numerics) -> wisp::Engine {
    let src = GgufSource::open(&model_path()).expect("the GGUF parses");
    let mut e = wisp::Engine::from_gguf(src, ctx).expect("Gemma 3 loads");
    e.set_numerics(numerics);
    e
}

/// Teacher-forced over llama.cpp's own tokens: our logits at its top 32 ids within `atol`, and
/// our greedy id equal to its wherever its top-two margin is over `2·atol` (a narrower margin
/// is a near-tie our rounding may break). Returns the worst difference and the ids checked.
fn check_greedy(e: &mut wisp::Engine, atol: f32, what: &str, steps: usize) -> (f32, usize) {
    let f = read_json(FIXTURE);
    let (mut worst, mut checked) = (0.0f32, 0);
    for g in f["greedy"].as_array().unwrap() {
        let name = g["name"].as_str().unwrap();
        let prompt = ids(&g["prompt_ids"]);
        e.reset();
        let mut logits = e.prefill(&prompt).unwrap().to_vec();
        for (step, s) in g["steps"].as_array().unwrap().iter().take(steps).enumerate() {
            let token = s["token"].as_u64().unwrap() as u32;
            for (id, want) in s["top_ids"].as_array().unwrap().iter().zip(s["top_logits"].as_array().unwrap())
            {
                let (id, want) = (id.as_u64().unwrap() as usize, want.as_f64().unwrap() as f32);
                let d = (logits[id] - want).abs();
                worst = worst.max(d);
                assert!(d <= atol, "{what} {name} step {step}: id {id} ours {} llama.cpp {want}", logits[id]);
            }
            if s["margin"].as_f64().unwrap() as f32 > 2.0 * atol {
                assert_eq!(wisp::sampling::argmax(&logits), token, "{what} {name} step {step}: greedy id");
                checked += 1;
            }
            logits = e.step(token).unwrap().to_vec();
        }
    }
    eprintln!("{what}: worst |Δlogit| from llama.cpp {worst:.3}; {checked} greedy ids equal");
    (worst, checked)
}

#[test]
fn cpu_greedy_and_logits_equal_llamacpp() {
    use wisp::cpu::Numerics;
    let mut e = engine(512, Numerics::LlamaCpp);
    assert_eq!(e.info().architecture, "gemma3");
    let (_, checked) = check_greedy(&mut e, LOGIT_ATOL_LLAMACPP, "CPU llamacpp numerics", 64);
    assert!(checked >= 16, "only {checked} of 192 steps were decisive enough to check");
    let mut e = engine(512, Numerics::Exact);
    let (_, checked) = check_greedy(&mut e, LOGIT_ATOL_EXACT, "CPU exact numerics", 64);
    assert!(checked >= 16, "only {checked} of 192 steps were decisive enough to check");
}

/// Our perplexity of the fixture's `key` entry (all tokens and second halves) within `tol` of
/// llama.cpp's, relative.
fn check_perplexity(key: &str, tol: f64) {
    let f = read_json(FIXTURE);
    let p = &f[key];
    let ids = ids(&p["ids"]);
    let mut e = engine(512, wisp::cpu::Numerics::LlamaCpp);
    for (half, part) in [(false, "all"), (true, "half")] {
        let (ppl, n) = e.perplexity(&ids, 512, half).unwrap();
        let want = p[part]["ppl"].as_f64().unwrap();
        assert_eq!(n as u64, p[part]["tokens_scored"].as_u64().unwrap(), "{key} {part}: tokens scored");
        let rel = (ppl - want).abs() / want;
        eprintln!("{key} ({part}): ours {ppl:.4}, llama.cpp {want:.4} ({:.3} %)", rel * 100.0);
        assert!(rel <= tol, "{key} ({part}): ours {ppl}, llama.cpp {want}");
    }
}

#[test]
fn cpu_perplexity_at_context_512_within_half_a_percent_of_llamacpp() {
    check_perplexity("perplexity_long", PPL_REL_TOL);
}

#[test]
fn cpu_perplexity_over_two_windows_tracks_llamacpp() {
    check_perplexity("perplexity", PPL_REL_TOL_TWO_WINDOWS);
}

/// On the GPU (lavapipe): the 262,144-row tied head and embedding (Q8_0, 178 MB) exceed the
/// default 128 MiB storage binding and are cut into parts; a few teacher-forced steps of each
/// prompt against llama.cpp, and the GPU's own greedy ids equal the CPU's (exact numerics).
#[test]
fn gpu_runs_gemma3_with_its_head_in_parts() {
    #[path = "common/gpu.rs"]
    mod gpu_env;
    let Some(g) = gpu_env::open() else { return };
    let g = std::sync::Arc::new(g);
    let steps: usize = std::env::var("WISP_GPU_TEST_TOKENS").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    let mut e = engine(512, wisp::cpu::Numerics::Exact);
    let gf = pollster::block_on(wisp::gpu::forward::GpuForward::new(g, &e.model, 512)).expect("GPU forward");
    e.use_gpu(gf).unwrap();
    check_greedy(&mut e, LOGIT_ATOL_EXACT, "GPU", steps);
    // the GPU against the CPU on the same numerics: logits close, greedy ids equal, free-running
    let mut cpu = engine(512, wisp::cpu::Numerics::Exact);
    let f = read_json(FIXTURE);
    let mut max = 0.0f32;
    for g in f["greedy"].as_array().unwrap() {
        let prompt = ids(&g["prompt_ids"]);
        let (mut lc, mut lg) = (cpu.prefill(&prompt).unwrap().to_vec(), e.prefill(&prompt).unwrap().to_vec());
        for step in 0..steps {
            let worst = lc.iter().zip(&lg).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            max = max.max(worst);
            assert!(worst <= GPU_CPU_ATOL, "{} step {step}: GPU vs CPU logits differ by {worst}", g["name"]);
            let (next_c, next_g) = (wisp::sampling::argmax(&lc), wisp::sampling::argmax(&lg));
            assert_eq!(next_g, next_c, "{} step {step}: the GPU's greedy id", g["name"]);
            lc = cpu.step(next_c).unwrap().to_vec();
            lg = e.step(next_g).unwrap().to_vec();
        }
    }
    eprintln!("GPU vs CPU (exact numerics): worst |Δlogit| {max:.2e} over the whole vocabulary");
}

/// GPU vs CPU logits on the real Gemma 3 (exact numerics both): f32 sums in another order
/// through 18 layers whose post-norms amplify; measured 4.7e-3 over the whole vocabulary.
const GPU_CPU_ATOL: f32 = 0.02;
