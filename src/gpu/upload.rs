//! Weights that go straight to the GPU as the loader streams them, so a browser never holds the
//! model, nor even one whole tensor, in wasm memory. The stream passes each large 2-D tensor
//! piecewise ([`GgufStream::piecewise`] with [`GpuWeights::takes`]): on its first bytes its GPU
//! buffers are allocated at full size (cut by rows into parts as [`GpuMatrix::alloc_parts`] cuts
//! a table over one storage binding), and as soon as whole rows have arrived they are repacked
//! and written at their offset into the part that holds them; only the bytes of a partial last
//! row wait on the host for the next piece. The tensor keeps its name, type and shape with no
//! data, and the forward pass takes these buffers by name instead of uploading from the model's
//! matrices. A complete tensor offered whole ([`TensorSink::offer`]) is uploaded the same way at
//! once and its host bytes dropped.
//!
//! Measured in Chromium after a WebGPU load: 52.5 MB of wasm memory for Gemma 3 270M's 253 MB
//! file (208 MB while a tensor went up only once complete: its 178 MB Q8_0 table was held whole),
//! now nearly all its 262,144-token vocabulary; 18.7 MB for the 98.4 MB default model (39.7 MB).
//!
//! The policy is about size, not about any model: 2-D tensors of at least [`MIN_BYTES`] go to the
//! GPU; vectors (norms, biases) and small matrices stay on the host, where the model reads them.
//!
//! [`GgufStream::piecewise`]: crate::gguf::GgufStream::piecewise

use super::{Gpu, GpuMatrix};
use crate::error::{Error, Result};
use crate::gguf::TensorInfo;
use crate::weights::{Tensor, TensorSink};
use std::collections::HashMap;
use std::sync::Arc;

/// Smallest tensor uploaded while streaming.
pub const MIN_BYTES: usize = 64 * 1024;

/// Bytes written to the GPU between two submissions while a tensor streams in (natively the
/// writes wait in wgpu's staging memory until a submission).
const FLUSH_BYTES: usize = 16 << 20;

pub struct GpuWeights {
    pub gpu: Arc<Gpu>,
    /// Each matrix as (first row, part) pieces that fit one binding ([`GpuMatrix::upload_parts`]).
    matrices: HashMap<String, Vec<(usize, GpuMatrix)>>,
    bytes: u64,
    /// The matrix whose pieces are arriving, until its last one.
    incoming: Option<Incoming>,
}

/// A matrix written to the GPU row range by row range as its bytes arrive.
struct Incoming {
    name: String,
    parts: Vec<(usize, GpuMatrix)>,
    /// Its size and its rows' size in the file's encoding.
    n_bytes: u64,
    row_bytes: usize,
    /// Bytes received so far, and the rows written to the GPU.
    received: u64,
    written: usize,
    /// The bytes of the partial row after the written ones.
    tail: Vec<u8>,
    /// Bytes written since the last submission.
    unflushed: usize,
}

/// The rows of a tensor of `dims` (ggml order) and `n_bytes` that goes to the GPU: 2-D (or 3-D
/// with a last dimension of 1), at least 2 rows and [`MIN_BYTES`].
fn gpu_rows(dims: &[u64], n_bytes: u64) -> Option<u64> {
    let rows = match dims {
        [_, rows] | [_, rows, 1] => *rows,
        _ => return None,
    };
    (rows >= 2 && n_bytes >= MIN_BYTES as u64).then_some(rows)
}

impl GpuWeights {
    pub fn new(gpu: Arc<Gpu>) -> GpuWeights {
        GpuWeights { gpu, matrices: HashMap::new(), bytes: 0, incoming: None }
    }

    /// Whether `t` goes to the GPU (a large 2-D tensor): for [`GgufStream::piecewise`], so that
    /// its bytes come as pieces ([`TensorSink::piece`]) instead of being held whole.
    ///
    /// [`GgufStream::piecewise`]: crate::gguf::GgufStream::piecewise
    pub fn takes(t: &TensorInfo) -> bool {
        gpu_rows(&t.dims, t.n_bytes).is_some()
    }

    /// The uploaded matrix named `name` (the file's name) in its parts, removed from the store.
    pub fn take(&mut self, name: &str) -> Option<Vec<(usize, GpuMatrix)>> {
        self.matrices.remove(name)
    }

    /// Bytes uploaded so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Allocates the GPU parts of `t`, which is starting to arrive.
    fn start(&self, t: &TensorInfo) -> Result<Incoming> {
        let what = || format!("tensor '{}'", t.name);
        let rows = gpu_rows(&t.dims, t.n_bytes)
            .ok_or_else(|| Error::malformed(what(), "came piecewise but is not a matrix for the GPU"))?;
        let fit = |x: u64| {
            usize::try_from(x).map_err(|_| Error::limit(format!("{} size", what()), x, usize::MAX as u64))
        };
        let (rows, cols, n) = (fit(rows)?, fit(t.dims[0])?, fit(t.n_bytes)?);
        let parts = GpuMatrix::alloc_parts(&self.gpu, &t.name, t.ty, rows, cols)?;
        // the header sized the tensor as `rows` rows of its type's row size
        let row_bytes = n / rows;
        Ok(Incoming {
            name: t.name.clone(),
            parts,
            n_bytes: t.n_bytes,
            row_bytes,
            received: 0,
            written: 0,
            tail: Vec::with_capacity(row_bytes),
            unflushed: 0,
        })
    }

    /// Writes `n` whole rows (`data`) after the rows written so far.
    fn write(&self, inc: &mut Incoming, n: usize, data: &[u8]) {
        GpuMatrix::write_parts(&self.gpu, &inc.parts, inc.written, n, data);
        inc.written += n;
        inc.unflushed += data.len();
        if inc.unflushed >= FLUSH_BYTES {
            self.gpu.queue.submit([]);
            inc.unflushed = 0;
        }
    }
}

impl TensorSink for GpuWeights {
    /// Writes each whole row of `t` to the GPU as soon as its bytes are here; keeps only a partial
    /// last row's bytes. The first piece allocates the matrix; the last puts it in the store.
    fn piece(&mut self, t: &TensorInfo, at: u64, mut bytes: &[u8]) -> Result<()> {
        let mut inc = match self.incoming.take() {
            None if at == 0 => self.start(t)?,
            Some(inc) if inc.name == t.name && inc.received == at => inc,
            other => {
                let expected = other.map_or(format!("byte 0 of '{}'", t.name), |inc| {
                    format!("byte {} of '{}'", inc.received, inc.name)
                });
                return Err(Error::malformed(
                    format!("tensor '{}'", t.name),
                    format!("a piece at byte {at} where {expected} was due"),
                ));
            }
        };
        let end = at + bytes.len() as u64;
        if end > inc.n_bytes {
            return Err(Error::malformed(
                format!("tensor '{}'", t.name),
                format!("a piece up to byte {end} of {}", inc.n_bytes),
            ));
        }
        inc.received = end;
        if !inc.tail.is_empty() {
            let k = (inc.row_bytes - inc.tail.len()).min(bytes.len());
            inc.tail.extend_from_slice(&bytes[..k]);
            bytes = &bytes[k..];
            if inc.tail.len() == inc.row_bytes {
                let row = std::mem::take(&mut inc.tail);
                self.write(&mut inc, 1, &row);
                inc.tail = row;
                inc.tail.clear();
            }
        }
        let n = bytes.len() / inc.row_bytes;
        let (rows, rest) = bytes.split_at(n * inc.row_bytes);
        if n > 0 {
            self.write(&mut inc, n, rows);
        }
        inc.tail.extend_from_slice(rest);
        if inc.received < inc.n_bytes {
            self.incoming = Some(inc);
            return Ok(());
        }
        // every byte arrived, so every row is written (the size is a whole number of rows)
        self.gpu.queue.submit([]);
        self.gpu.check()?;
        self.bytes += inc.parts.iter().map(|(_, p)| p.buf.size()).sum::<u64>();
        self.matrices.insert(inc.name, inc.parts);
        Ok(())
    }

    /// Uploads `t` if it is a large 2-D tensor and empties its host data; leaves it otherwise
    /// (a tensor that came piecewise arrives here empty, and is left).
    fn offer(&mut self, t: &mut Tensor) -> Result<()> {
        let dims: Vec<u64> = t.dims.iter().map(|&d| d as u64).collect();
        let Some(rows) = gpu_rows(&dims, t.data.len() as u64) else { return Ok(()) };
        let m = GpuMatrix::upload_parts(&self.gpu, &t.name, t.ty, rows as usize, t.dims[0], &t.data)?;
        self.gpu.check()?;
        self.bytes += m.iter().map(|(_, p)| p.buf.size()).sum::<u64>();
        self.matrices.insert(t.name.clone(), m);
        t.data = Vec::new();
        Ok(())
    }
}
