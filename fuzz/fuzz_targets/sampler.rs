//! The sampler with any options over any logits and history, and the streamed-text decoder with
//! any stop strings over any bytes.
#![no_main]
#[path = "../checks.rs"]
mod checks;
libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sampler(data));
