//! The GGUF reader on hostile bytes, whole and streamed: neither may panic, hang or allocate what
//! the input cannot hold, and both must agree (same verdict, same tensor bytes).
#![no_main]
#[path = "../checks.rs"]
mod checks;
libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::gguf_parse(data));
