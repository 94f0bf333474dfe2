//! The plain-Rust CPU path: the specification every GPU kernel is tested against, and the backend
//! that runs where there is no GPU (multithreaded on a small spinning pool: natively, and in the threaded wasm build).

pub mod forward;
pub mod matmul;
pub mod ops;

pub use forward::{forward, KvCache, Logits, Scratch, UBATCH};

/// How the CPU path rounds what it computes. Both keep the weights as stored and the KV cache in
/// f16 (f32 for float models); they differ in the activations the weights meet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Numerics {
    /// f32 activations against the weights' exact values: the quantized model evaluated as
    /// written, and what the GPU kernels compute. The default.
    #[default]
    Exact,
    /// llama.cpp's CPU rounding: activations in the form llama.cpp's products take for each
    /// weight type (`GgmlType::vec_dot_type`: Q8_0/Q8_1 blocks of 32 for the 32-wide block
    /// types, Q8_K blocks of 256 for the K-quants, f16 for F16 weights), and the query and
    /// softmax weights rounded to f16 in attention. Faster; reproduces llama.cpp's tokens up to
    /// near-ties. F32 and BF16 weights compute as `Exact`.
    LlamaCpp,
}

impl Numerics {
    pub fn parse(s: &str) -> Option<Numerics> {
        match s {
            "exact" => Some(Numerics::Exact),
            "llamacpp" => Some(Numerics::LlamaCpp),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Numerics::Exact => "exact",
            Numerics::LlamaCpp => "llamacpp",
        }
    }
}

mod pool;

/// Runs `f(index, chunk)` over `chunk`-sized pieces of `out`, in parallel where threads exist.
pub fn par_chunks(out: &mut [f32], chunk: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    struct Base(*mut f32);
    // SAFETY: tasks write disjoint ranges of `out`, which outlives the call.
    unsafe impl Sync for Base {}
    impl Base {
        fn at(&self, i: usize) -> *mut f32 {
            self.0.wrapping_add(i)
        }
    }
    let (len, chunk) = (out.len(), chunk.max(1));
    let base = Base(out.as_mut_ptr());
    pool().run(len.div_ceil(chunk), &|i| {
        let start = i * chunk;
        let n = chunk.min(len - start);
        // SAFETY: `start + n <= len`, and task `i` alone owns `start..start + n`.
        let c = unsafe { std::slice::from_raw_parts_mut(base.at(start), n) };
        f(i, c)
    });
}

#[cfg(not(target_arch = "wasm32"))]
static POOL: std::sync::OnceLock<pool::Pool> = std::sync::OnceLock::new();

#[cfg(not(target_arch = "wasm32"))]
fn pool() -> &'static pool::Pool {
    // a pool that cannot start its threads runs everything on the caller's thread
    POOL.get_or_init(|| pool::Pool::new(cores()).unwrap_or_else(pool::Pool::single))
}

/// In wasm: a constant static (the page's main thread must never wait on a lazy initialisation);
/// its workers are the Web Workers the wrapper starts (threaded build only).
#[cfg(target_arch = "wasm32")]
fn pool() -> &'static pool::Pool {
    &pool::POOL
}

#[cfg(target_arch = "wasm32")]
pub use pool::{epoch as worker_epoch, stop_workers, worker_main};

#[cfg(not(target_arch = "wasm32"))]
fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Sets the CPU path's thread count (0 = one per core); effective only before the first forward.
/// Returns false when the pool was already started or its threads could not be created.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_threads(n: usize) -> bool {
    let n = if n == 0 { cores() } else { n };
    if POOL.get().is_some() {
        return false;
    }
    match pool::Pool::new(n) {
        Some(p) => POOL.set(p).is_ok(),
        None => false,
    }
}

/// Threads the CPU path uses (the caller and its workers; in wasm, the workers now running).
pub fn threads() -> usize {
    pool().threads()
}
