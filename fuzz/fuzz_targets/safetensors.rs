//! safetensors bytes and config.json, both hostile, through to a loaded model.
//! Layout: u16 (LE) length of the config, the config, then the safetensors file.
#![no_main]
#[path = "../checks.rs"]
mod checks;
libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::safetensors(data));
