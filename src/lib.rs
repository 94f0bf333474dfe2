//! # wisp
//!
//! An LLM inference engine meant to be embedded in web pages: it loads GGUF (and Hugging Face
//! safetensors) chat models, tokenizes, applies the model's chat template, and generates, with
//! nothing leaving the user's machine. This crate is the engine core; the `wisp` binary is a native
//! CLI over it for tests and benchmarks.
//!
//! What it does: GPT-2 and Llama-family architectures; F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/
//! IQ4_NL/Q2_K/Q3_K/Q4_K/Q5_K/Q6_K weights used in place (never expanded to f32); a plain CPU
//! forward pass that is also the reference every GPU kernel is checked against; sampling, stop
//! strings, perplexity.
//! What it does not: training, model downloads from a hub, tokenizers other than byte-level BPE,
//! SentencePiece (GGUF's `llama` tokenizer model) and Gemma 4's BPE (`gemma4`).
//!
//! Modules, loaders first: [`gguf`] and [`safetensors`] read files and meet the models only through
//! [`weights::WeightSource`]; [`model`] names tensors and shapes; [`cpu`] computes (and specifies what [`gpu`]'s WGSL kernels must compute); [`session`] is
//! what callers drive.
// The threaded wasm build (nightly: it rebuilds std with atomics) parks idle CPU workers with
// `memory.atomic.wait32`/`notify`, still unstable in `core::arch::wasm32` (cpu/pool.rs).
#![cfg_attr(all(target_arch = "wasm32", target_feature = "atomics"), feature(stdarch_wasm_atomic_wait))]

mod backend;
pub mod chat;
pub mod cpu;
pub mod error;
pub mod eval;
#[cfg(not(target_arch = "wasm32"))]
pub mod fetch;
pub mod gguf;
pub mod gpu;
pub mod grammar;
pub mod model;
pub mod quant;
pub mod safetensors;
pub mod sampling;
pub mod session;
pub mod synth;
pub mod tokenizer;
#[cfg(target_arch = "wasm32")]
pub mod wasm;
pub mod weights;

pub use error::{Error, Result};
pub use session::{Engine, Event, FinishReason, GenerateOptions, Generation, Stream};
