//! `out[t, r] = Σ_c W[r, c] · x[t, c]` for a batch of `n` token rows, straight from the file's
//! blocks. With [`Numerics::LlamaCpp`] the activations first take the form llama.cpp gives them
//! for the weight's type ([`GgmlType::vec_dot_type`]): 32-wide int8 blocks for the 32-wide block
//! types, 256-wide Q8_K blocks for the K-quants, f16-rounded values for F16 weights, each
//! computed once per product; otherwise every weight meets the f32 activations, block by block,
//! with a fixed summation order (the same natively and in wasm, at any thread count).
//!
//! Parallelism: rows of `W` are split into chunks across threads (the CPU path's pool
//! natively and in the threaded wasm build); each chunk computes every token so a weight row is read from memory once per batch.

use super::{par_chunks, threads, Numerics};
use crate::model::Matrix;
use crate::quant::{
    quantize_q8, quantize_q8k, vec_dot_f32, vec_dot_f32_rows, vec_dot_q8, vec_dot_q8_rows, vec_dot_q8k,
    BlockQ8, BlockQ8K, GgmlType, VecDotType, QK, QK_K,
};
use half::f16;

/// Scratch for the activations' llama.cpp forms, one buffer per kind, reused across products.
#[derive(Default)]
pub struct ActBufs {
    q8: Vec<BlockQ8>,
    q8k: Vec<BlockQ8K>,
    f16: Vec<f32>,
}

/// The activations in the form the weights meet.
enum Form<'a> {
    /// f32 as they are (`Numerics::Exact`, f32 weights, a width that is not whole blocks)
    F32,
    Q8(&'a [BlockQ8]),
    Q8K(&'a [BlockQ8K]),
    /// rounded to f16, held as f32
    F16(&'a [f32]),
}

/// An activation batch `[n, cols]`, in the form one weight type's product takes.
pub struct Input<'a> {
    pub x: &'a [f32],
    pub n: usize,
    pub cols: usize,
    form: Form<'a>,
}

impl<'a> Input<'a> {
    /// The batch for a product with weights of type `ty`: under [`Numerics::LlamaCpp`]
    /// converted into `bufs` (resized as needed) as llama.cpp converts it for `ty`, when the
    /// width is whole blocks of that form.
    pub fn new(
        x: &'a [f32],
        n: usize,
        cols: usize,
        numerics: Numerics,
        ty: GgmlType,
        bufs: &'a mut ActBufs,
    ) -> Input<'a> {
        let x_used = &x[..n * cols];
        let form = match (numerics, ty.vec_dot_type()) {
            (Numerics::Exact, _) | (_, VecDotType::F32) => Form::F32,
            (Numerics::LlamaCpp, VecDotType::Q8) if cols.is_multiple_of(QK) => {
                bufs.q8.resize(n * cols / QK, BlockQ8::default());
                quantize_q8(x_used, &mut bufs.q8);
                Form::Q8(&bufs.q8)
            }
            (Numerics::LlamaCpp, VecDotType::Q8K) if cols.is_multiple_of(QK_K) => {
                bufs.q8k.resize(n * cols / QK_K, BlockQ8K::default());
                quantize_q8k(x_used, &mut bufs.q8k);
                Form::Q8K(&bufs.q8k)
            }
            (Numerics::LlamaCpp, VecDotType::F16) => {
                bufs.f16.clear();
                bufs.f16.extend(x_used.iter().map(|&v| f16::from_f32(v).to_f32()));
                Form::F16(&bufs.f16)
            }
            (Numerics::LlamaCpp, _) => Form::F32,
        };
        Input { x, n, cols, form }
    }

    /// The f32 values the f32 dots read: the activations, or their f16 rounding.
    fn floats(&self) -> &[f32] {
        match self.form {
            Form::F16(h) => h,
            _ => &self.x[..self.n * self.cols],
        }
    }

    /// Row `r` of `w` against every token row: `out[t]` for `t < n`.
    fn dot_rows(&self, w: &Matrix, r: usize, out: &mut [f32]) {
        match self.form {
            Form::Q8(q8) => vec_dot_q8_rows(w.ty, w.row(r), q8, self.cols / QK, out),
            Form::Q8K(_) => {
                for (t, v) in out.iter_mut().enumerate() {
                    *v = self.dot(w, r, t);
                }
            }
            // the f32 path expands each weight block once for all the rows
            Form::F32 | Form::F16(_) => vec_dot_f32_rows(w.ty, w.row(r), self.floats(), self.cols, out),
        }
    }

    fn dot(&self, w: &Matrix, r: usize, t: usize) -> f32 {
        let row = w.row(r);
        match self.form {
            Form::Q8(q8) => {
                let bpr = self.cols / QK;
                vec_dot_q8(w.ty, row, &q8[t * bpr..(t + 1) * bpr])
            }
            Form::Q8K(q8k) => {
                let bpr = self.cols / QK_K;
                vec_dot_q8k(w.ty, row, &q8k[t * bpr..(t + 1) * bpr])
            }
            Form::F32 | Form::F16(_) => {
                vec_dot_f32(w.ty, row, &self.floats()[t * self.cols..(t + 1) * self.cols])
            }
        }
    }
}

const CHUNKS_PER_THREAD: usize = 4;

/// `out` (`[n, w.rows]`) = `x · Wᵀ (+ bias)`. `tmp` is scratch of at least `n · w.rows`. `x` must
/// have been made for `w`'s type ([`Input::new`]).
pub fn matmul(w: &Matrix, bias: Option<&[f32]>, x: &Input, out: &mut [f32], tmp: &mut Vec<f32>) {
    let (rows, n) = (w.rows, x.n);
    debug_assert_eq!(w.cols, x.cols);
    debug_assert!(match x.form {
        Form::Q8(_) => w.ty.vec_dot_type() == VecDotType::Q8,
        Form::Q8K(_) => w.ty.vec_dot_type() == VecDotType::Q8K,
        Form::F16(_) => w.ty.vec_dot_type() == VecDotType::F16,
        Form::F32 => true,
    });
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
