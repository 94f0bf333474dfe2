//! `wisp`, the native CLI over the engine (`cli.rs`). The CLI needs threads, files and a blocking
//! GPU poll, so it is native only; a wasm32 build (the wasm-only tests) gets an empty binary.

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    cli::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}
