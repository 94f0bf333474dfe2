//! A whole engine from a hostile GGUF: header, tokenizer, model, and a few generated tokens.
#![no_main]
#[path = "../checks.rs"]
mod checks;
libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::gguf_engine(data));
