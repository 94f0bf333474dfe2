//! A Hugging Face checkpoint's `tokenizer.json` (`Tokenizer::from_tokenizer_json`): ids and
//! decoded text equal PyPI `tokenizers`' on awkward texts, the special token is one id and ends
//! generation, and the CLI runs the whole directory (weights, config, tokenizer). Fixtures from
//! scripts/make_tokenizer_json_fixture.py.

mod common;
use common::*;
use std::process::Command;
use wisp::safetensors::SafetensorsSource;
use wisp::sampling::SamplingParams;
use wisp::tokenizer::Tokenizer;
use wisp::GenerateOptions;

fn tokenizer() -> Tokenizer {
    let bytes = std::fs::read(fixture("gpt2-tiny/tokenizer.json")).unwrap();
    Tokenizer::from_tokenizer_json(&bytes).expect("tokenizer.json loads")
}

#[test]
fn ids_and_decoding_equal_the_tokenizers_library() {
    let f = read_json("tiny_tokenizer.json");
    let tok = tokenizer();
    assert_eq!(tok.vocab_size() as u64, f["vocab_size"].as_u64().unwrap());
    let eos = f["eos_id"].as_u64().unwrap() as u32;
    assert_eq!(tok.eos, Some(eos), "<|endoftext|> is the end-of-sequence token");
    assert!(tok.is_eog(eos));
    for case in f["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want = ids(&case["ids"]);
        assert_eq!(tok.encode(text, true).unwrap(), want, "ids of {text:?}");
        assert_eq!(tok.decode(&want, true), case["decoded"].as_str().unwrap(), "decoding of {text:?}");
        // byte by byte, as the stream decoder sees it, the pieces add up to the same text
        let bytes: Vec<u8> = want.iter().flat_map(|&i| tok.token_bytes(i, true).to_vec()).collect();
        assert_eq!(String::from_utf8(bytes).unwrap(), text, "pieces of {text:?}");
    }
    // a control token: one id when written in the text, no text when decoded without specials
    assert_eq!(tok.encode("<|endoftext|>", false).unwrap(), [eos]);
    assert_eq!(tok.decode(&[eos], false), "");
}

#[test]
fn a_checkpoint_directory_with_tokenizer_json_generates_through_the_cli() {
    let dir = fixture("gpt2-tiny");
    let prompt = "When in the Course of human events";
    let out = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["generate", "--model", dir.to_str().unwrap(), "--prompt", prompt])
        .args(["--temperature", "0", "--max-tokens", "12", "--backend", "cpu", "--json"])
        .output()
        .expect("wisp runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // the same directory through the library, greedy, stopping at <|endoftext|> like the CLI
    let mut src = SafetensorsSource::open_dir(&dir).unwrap();
    let mut e = wisp::Engine::new(&mut src, tokenizer(), 0).unwrap();
    let prompt_ids = e.encode(prompt).unwrap();
    assert_eq!(ids(&j["prompt_ids"]), prompt_ids);
    let opts = GenerateOptions { max_tokens: 12, sampling: SamplingParams::greedy(), ..Default::default() };
    let g = e.generate(&prompt_ids, &opts, &mut |_, _| true).unwrap();
    assert!(!g.ids.is_empty());
    assert_eq!(ids(&j["ids"]), g.ids);
    assert_eq!(j["text"].as_str().unwrap(), g.text);
}
