//! Hostile chat templates and hostile messages. Layout: NUL-separated parts, lossy UTF-8:
//! template, bos, eos, then messages as alternating role and content.
#![no_main]
#[path = "../checks.rs"]
mod checks;
libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::chat_template(data));
