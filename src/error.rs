//! The crate's one error type.
//!
//! Every input path (model bytes, config JSON, prompts, sampling options, calls in the wrong order)
//! returns one of these instead of panicking. Variants name the offending tensor, key or limit so a
//! user reading the message knows what to fix; `wasm.rs` turns them into `JsError` at the boundary.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The bytes are not a model file of the expected format at all.
    #[error("not a {format} file: {why}")]
    BadMagic { format: &'static str, why: String },

    /// The file ended before a structure it declares.
    #[error("file is truncated: {what} needs bytes {start}..{end} but the file has {len}")]
    Truncated { what: String, start: u64, end: u64, len: u64 },

    #[error("unsupported {format} version {version} (supported: {supported})")]
    UnsupportedVersion { format: &'static str, version: u32, supported: &'static str },

    /// A structurally invalid value (bad UTF-8, unknown enum tag, misaligned offset, ...).
    #[error("malformed {what}: {why}")]
    Malformed { what: String, why: String },

    /// A count or size that exceeds what the file can hold or what we allow.
    #[error("limit exceeded: {what} is {need}, the maximum is {max}")]
    LimitExceeded { what: String, need: u64, max: u64 },

    #[error("tensor '{name}' has unsupported type {ty}")]
    UnsupportedType { name: String, ty: String },

    #[error("missing tensor '{name}'")]
    MissingTensor { name: String },

    #[error("tensor '{name}' has shape {got:?}, expected {expected:?}")]
    BadShape { name: String, got: Vec<u64>, expected: Vec<u64> },

    #[error("missing metadata key '{key}'")]
    MissingKey { key: String },

    #[error("metadata key '{key}' has the wrong type: expected {expected}")]
    WrongType { key: String, expected: &'static str },

    #[error("unsupported architecture '{0}' (supported: llama, gpt2)")]
    UnsupportedArchitecture(String),

    /// A tensor the file has that this architecture's definition does not use: running without it
    /// would be silently wrong (Llama 3.x's `rope_freqs.weight`, Q/K/V biases, …).
    #[error(
        "tensor '{name}' is not supported for architecture '{arch}': the model cannot run exactly without it"
    )]
    UnsupportedTensor { name: String, arch: String },

    /// A hyper-parameter whose value this engine does not implement (RoPE scaling, a head size
    /// other than n_embd / n_head, …).
    #[error("metadata key '{key}' = {value} is not supported: {why}")]
    UnsupportedKey { key: String, value: String, why: String },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("chat template: {0}")]
    Template(String),

    /// A GBNF grammar that does not parse (its line and column named), or a JSON Schema feature
    /// this engine does not convert, or a token the grammar does not allow.
    #[error("grammar: {0}")]
    Grammar(String),

    #[error("prompt has {prompt} tokens but the context holds {ctx}")]
    PromptTooLong { prompt: usize, ctx: usize },

    #[error("context is full: {used} of {ctx} positions used")]
    ContextFull { used: usize, ctx: usize },

    /// The GPU could not be set up or used (no adapter, device lost, a failed mapping, ...).
    #[error("GPU: {0}")]
    Gpu(String),

    /// A model needs more of a device limit than the adapter grants.
    #[error("GPU limit {limit}: {what} needs {need} but this adapter allows {max}")]
    GpuLimit { limit: &'static str, what: String, need: u64, max: u64 },

    #[error("invalid argument {name}: {why}")]
    InvalidArgument { name: &'static str, why: String },

    #[error("{0}")]
    State(String),

    #[error("operation aborted")]
    Aborted,

    #[error("I/O error on {path}: {source}")]
    Io { path: String, source: std::io::Error },

    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn malformed(what: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Malformed { what: what.into(), why: why.into() }
    }

    pub fn limit(what: impl Into<String>, need: u64, max: u64) -> Self {
        Error::LimitExceeded { what: what.into(), need, max }
    }

    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().display().to_string(), source }
    }

    pub fn arg(name: &'static str, why: impl Into<String>) -> Self {
        Error::InvalidArgument { name, why: why.into() }
    }
}
