//! `out[t, r] = Σ_c W[r, c] · x[t, c]` for a batch of `n` token rows, straight from the file's
//! blocks. With [`Numerics::LlamaCpp`] quantized weights meet int8-quantized activations (quantized
//! once per input and shared by the projections that read it); otherwise every weight meets the
//! f32 activations, block by block, with a fixed summation order (the same natively and in wasm,
//! at any thread count).
//!
//! Parallelism: rows of `W` are split into chunks across threads (the CPU path's pool
//! natively, one thread on wasm); each chunk computes every token so a weight row is read from memory once per batch.

use super::{par_chunks, threads, Numerics};
use crate::model::Matrix;
use crate::quant::{quantize_q8, vec_dot_f32, vec_dot_f32_rows, vec_dot_q8, BlockQ8, QK};

/// An activation batch `[n, cols]`, with its int8 form when `cols` is whole blocks.
pub struct Input<'a> {
    pub x: &'a [f32],
    pub n: usize,
    pub cols: usize,
    q8: &'a [BlockQ8],
}

impl<'a> Input<'a> {
    /// Quantizes `x` into `q8_buf` (resized as needed) for [`Numerics::LlamaCpp`] when the
    /// width allows.
    pub fn new(
        x: &'a [f32],
        n: usize,
        cols: usize,
        numerics: Numerics,
        q8_buf: &'a mut Vec<BlockQ8>,
    ) -> Input<'a> {
        if numerics == Numerics::LlamaCpp && cols.is_multiple_of(QK) {
            q8_buf.resize(n * cols / QK, BlockQ8::default());
            quantize_q8(&x[..n * cols], q8_buf);
        } else {
            q8_buf.clear();
        }
        Input { x, n, cols, q8: q8_buf }
    }

    /// Row `r` of `w` against every token row: `out[t]` for `t < n`.
    fn dot_rows(&self, w: &Matrix, r: usize, out: &mut [f32]) {
        if w.ty.is_quantized() && !self.q8.is_empty() {
            for (t, v) in out.iter_mut().enumerate() {
                *v = self.dot(w, r, t);
            }
        } else {
            // the f32 path expands each weight block once for all the rows
            vec_dot_f32_rows(w.ty, w.row(r), &self.x[..self.n * self.cols], self.cols, out);
        }
    }

    fn dot(&self, w: &Matrix, r: usize, t: usize) -> f32 {
        let row = w.row(r);
        if w.ty.is_quantized() && !self.q8.is_empty() {
            let bpr = self.cols / QK;
            vec_dot_q8(w.ty, row, &self.q8[t * bpr..(t + 1) * bpr])
        } else {
            vec_dot_f32(w.ty, row, &self.x[t * self.cols..(t + 1) * self.cols])
        }
    }
}

const CHUNKS_PER_THREAD: usize = 4;

/// `out` (`[n, w.rows]`) = `x · Wᵀ (+ bias)`. `tmp` is scratch of at least `n · w.rows`.
pub fn matmul(w: &Matrix, bias: Option<&[f32]>, x: &Input, out: &mut [f32], tmp: &mut Vec<f32>) {
    let (rows, n) = (w.rows, x.n);
    debug_assert_eq!(w.cols, x.cols);
    // enough chunks to balance the threads, few enough that scheduling stays cheap
    let chunk_rows = rows.div_ceil(threads() * CHUNKS_PER_THREAD).max(1);
    if n == 1 {
        par_chunks(&mut out[..rows], chunk_rows, |ci, o| {
            for (k, v) in o.iter_mut().enumerate() {
                *v = x.dot(w, ci * chunk_rows + k, 0);
            }
        });
    } else {
        tmp.resize(rows * n, 0.0);
        // tmp is [rows, n]: each chunk owns whole weight rows
        par_chunks(&mut tmp[..rows * n], chunk_rows * n, |ci, o| {
            for (k, orow) in o.chunks_exact_mut(n).enumerate() {
                x.dot_rows(w, ci * chunk_rows + k, orow);
            }
        });
        for t in 0..n {
            for r in 0..rows {
                out[t * rows + r] = tmp[r * n + t];
            }
        }
    }
    if let Some(b) = bias {
        for orow in out[..n * rows].chunks_exact_mut(rows) {
            for (v, bb) in orow.iter_mut().zip(b) {
                *v += bb;
            }
        }
    }
}
