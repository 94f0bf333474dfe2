//! Weights that go straight to the GPU as the loader streams them, so a browser never holds the
//! whole model in wasm memory: each large 2-D tensor is repacked and written to its own buffer the
//! moment its bytes are complete, and the host copy is dropped (the tensor keeps its name, type
//! and shape, with no data). The forward pass then takes these buffers by name instead of
//! uploading from the model's matrices.
//!
//! The policy is about size, not about any model: 2-D tensors of at least [`MIN_BYTES`] go to the
//! GPU; vectors (norms, biases) and small matrices stay on the host, where the model reads them.

use super::{Gpu, GpuMatrix};
use crate::error::Result;
use crate::weights::Tensor;
use std::collections::HashMap;
use std::sync::Arc;

/// Smallest tensor uploaded while streaming.
pub const MIN_BYTES: usize = 64 * 1024;

pub struct GpuWeights {
    pub gpu: Arc<Gpu>,
    /// Each matrix as (first row, part) pieces that fit one binding ([`GpuMatrix::upload_parts`]).
    matrices: HashMap<String, Vec<(usize, GpuMatrix)>>,
    bytes: u64,
}

impl GpuWeights {
    pub fn new(gpu: Arc<Gpu>) -> GpuWeights {
        GpuWeights { gpu, matrices: HashMap::new(), bytes: 0 }
    }

    /// Uploads `t` if it is a large 2-D tensor and empties its host data; leaves it otherwise.
    pub fn offer(&mut self, t: &mut Tensor) -> Result<()> {
        let rows = match t.dims[..] {
            [_, rows] | [_, rows, 1] => rows,
            _ => return Ok(()),
        };
        if rows < 2 || t.data.len() < MIN_BYTES {
            return Ok(());
        }
        let m = GpuMatrix::upload_parts(&self.gpu, &t.name, t.ty, rows, t.dims[0], &t.data)?;
        self.gpu.check()?;
        self.bytes += m.iter().map(|(_, p)| p.buf.size()).sum::<u64>();
        self.matrices.insert(t.name.clone(), m);
        t.data = Vec::new();
        Ok(())
    }

    /// The uploaded matrix named `name` (the file's name) in its parts, removed from the store.
    pub fn take(&mut self, name: &str) -> Option<Vec<(usize, GpuMatrix)>> {
        self.matrices.remove(name)
    }

    /// Bytes uploaded so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}
