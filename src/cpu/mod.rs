//! The plain-Rust CPU path: the specification every GPU kernel is tested against, and the backend
//! that runs where there is no GPU (natively multithreaded with rayon, single-threaded in wasm).

pub mod forward;
pub mod matmul;
pub mod ops;

pub use forward::{forward, KvCache, Logits, Scratch, UBATCH};

/// Runs `f(index, chunk)` over `chunk`-sized pieces of `out`, in parallel where threads exist.
#[cfg(not(target_arch = "wasm32"))]
pub fn par_chunks(out: &mut [f32], chunk: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    use rayon::prelude::*;
    out.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
}

#[cfg(target_arch = "wasm32")]
pub fn par_chunks(out: &mut [f32], chunk: usize, f: impl Fn(usize, &mut [f32])) {
    out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
}

/// `None` when no pool could be started: everything then runs on the caller's thread.
#[cfg(not(target_arch = "wasm32"))]
static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();

/// Sets the CPU path's thread count (0 = one per core); effective only before the first forward.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_threads(n: usize) -> bool {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build();
    match pool {
        Ok(p) => POOL.set(Some(p)).is_ok(),
        Err(_) => false,
    }
}

/// Runs `f` on the CPU path's thread pool with the caller as one of its workers, so each of the
/// hundreds of parallel regions per token is a cheap fork-join instead of a cross-thread wake-up.
#[cfg(not(target_arch = "wasm32"))]
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().build().ok()) {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

#[cfg(target_arch = "wasm32")]
pub fn install<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Worker threads the CPU path uses.
pub fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        rayon::current_num_threads()
    }
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
}
