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
