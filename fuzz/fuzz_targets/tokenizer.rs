//! A tokenizer built from hostile GGUF metadata, then hostile text encoded and decoded.
//! Layout: u16 (LE) length of the text, the text (lossy UTF-8), then a GGUF file (its header is
//! what counts; tensor data may be absent).
#![no_main]
#[path = "../checks.rs"]
mod checks;
libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::tokenizer(data));
