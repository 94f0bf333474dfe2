//! The seam between loaders and models.
//!
//! Loaders (GGUF, safetensors) produce [`Tensor`]s by the name the file uses and a metadata view;
//! model definitions ask for tensors by name and shape through [`WeightSource`] and never see
//! file offsets. A model that reads Hugging Face names supplies its own name mapping.

use crate::error::{Error, Result};
use crate::gguf::{GgufHeader, GgufStream, StreamEvent, TensorInfo, Value};
use crate::quant::{dequantize, GgmlType};
use std::collections::HashMap;
use std::io::Read;

/// One tensor with its bytes in the file's own encoding.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub ty: GgmlType,
    /// ggml order: `dims[0]` is contiguous.
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

impl Tensor {
    pub fn n_elements(&self) -> usize {
        self.dims.iter().product()
    }

    /// All elements as f32 (for small tensors: norms, biases, positions).
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.n_elements()];
        dequantize(self.ty, &self.data, &mut out);
        out
    }

    /// Swaps the two dimensions of a 2-D float tensor (Hugging Face Conv1D stores `[in, out]`).
    pub fn transposed(self) -> Result<Tensor> {
        if self.dims.len() != 2 || self.ty.is_quantized() {
            return Err(Error::malformed(
                format!("tensor '{}'", self.name),
                "only 2-D float tensors can be transposed",
            ));
        }
        let (c, r) = (self.dims[0], self.dims[1]);
        let es = self.ty.type_size();
        let mut data = vec![0u8; self.data.len()];
        for i in 0..r {
            for j in 0..c {
                let src = (i * c + j) * es;
                let dst = (j * r + i) * es;
                data[dst..dst + es].copy_from_slice(&self.data[src..src + es]);
            }
        }
        Ok(Tensor { name: self.name, ty: self.ty, dims: vec![r, c], data })
    }
}

/// Read-only metadata by GGUF-style key, however the loader stored it.
pub trait Metadata {
    fn get(&self, key: &str) -> Option<&Value>;
}

/// What a model definition loads from.
pub trait WeightSource {
    fn metadata(&self) -> &dyn Metadata;
    /// Removes and returns the tensor named `name` (in the file's naming).
    fn take(&mut self, name: &str) -> Result<Tensor>;
    /// ggml-order dims of `name`, if present and not yet taken.
    fn dims(&self, name: &str) -> Option<Vec<usize>>;
    fn has(&self, name: &str) -> bool {
        self.dims(name).is_some()
    }
    /// The names of the tensors not taken yet, sorted.
    fn remaining(&self) -> Vec<String>;
    /// Which names `take` understands.
    fn naming(&self) -> Naming;
    /// Total bytes of tensor data, for reports.
    fn file_size(&self) -> u64;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// `blk.N.attn_q.weight`, ...
    Gguf,
    /// `model.layers.N.self_attn.q_proj.weight` / `h.N.attn.c_attn.weight`, ...
    HuggingFace,
}

impl Metadata for GgufHeader {
    fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }
}

impl Metadata for HashMap<String, Value> {
    fn get(&self, key: &str) -> Option<&Value> {
        HashMap::get(self, key)
    }
}

/// Tensors of a GGUF file, read incrementally (never the whole file at once).
pub struct GgufSource {
    pub header: GgufHeader,
    tensors: HashMap<String, Tensor>,
    size: u64,
}

impl GgufSource {
    /// Streams `reader` (of `len` bytes when known) through the incremental parser.
    /// `on_progress(bytes_read)` is called per chunk; returning `false` aborts.
    pub fn read(
        mut reader: impl Read,
        len: Option<u64>,
        mut on_progress: impl FnMut(u64) -> bool,
    ) -> Result<Self> {
        let mut stream = GgufStream::new(len);
        let mut src = GgufSourceBuilder::default();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io { path: "model stream".into(), source: e }),
            };
            total += n as u64;
            for ev in stream.push(&buf[..n])? {
                src.event(ev)?;
            }
            if !on_progress(total) {
                return Err(Error::Aborted);
            }
        }
        stream.finish()?;
        src.finish(total)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::read(bytes, Some(bytes.len() as u64), |_| true)
    }

    pub fn open(path: &std::path::Path) -> Result<Self> {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
        Self::read(std::io::BufReader::new(f), Some(len), |_| true)
    }
}

/// Where tensor bytes go that are not to stay on the host (the GPU, in the browser's WebGPU
/// load): [`GgufSourceBuilder::event_with`] hands it each piece of a tensor the stream passes
/// piecewise ([`GgufStream::piecewise`]) and then each complete tensor.
pub trait TensorSink {
    /// `bytes` at byte `at` of the data of `t`, a tensor passed piecewise; pieces come in order.
    fn piece(&mut self, t: &TensorInfo, at: u64, bytes: &[u8]) -> Result<()>;
    /// A complete tensor (without bytes when it came piecewise); the sink may take its bytes and
    /// leave it empty (the source keeps its name, type and shape).
    fn offer(&mut self, t: &mut Tensor) -> Result<()>;
}

/// No sink: complete tensors stay on the host, and a piece has nowhere to go (an error).
impl TensorSink for () {
    fn piece(&mut self, t: &TensorInfo, _: u64, _: &[u8]) -> Result<()> {
        Err(Error::malformed(format!("tensor '{}'", t.name), "came piecewise with nothing to take it"))
    }
    fn offer(&mut self, _: &mut Tensor) -> Result<()> {
        Ok(())
    }
}

/// Collects stream events into a [`GgufSource`].
#[derive(Default)]
pub struct GgufSourceBuilder {
    header: Option<GgufHeader>,
    tensors: HashMap<String, Tensor>,
}

impl GgufSourceBuilder {
    /// Takes one event, keeping every tensor on the host.
    pub fn event(&mut self, ev: StreamEvent) -> Result<()> {
        self.event_with(ev, &mut ())
    }

    /// [`GgufSourceBuilder::event`], handing pieces and each complete tensor to `sink` first,
    /// which may take the bytes elsewhere (the GPU) and leave the tensor empty.
    pub fn event_with(&mut self, ev: StreamEvent, sink: &mut impl TensorSink) -> Result<()> {
        match ev {
            StreamEvent::Header(h) => self.header = Some(*h),
            StreamEvent::Piece(i, at, bytes) => {
                if let Some(t) = self.header.as_ref().and_then(|h| h.tensors.get(i)) {
                    sink.piece(t, at, &bytes)?;
                }
            }
            StreamEvent::Tensor(i, data) => {
                if let Some(t) = self.header.as_ref().and_then(|h| h.tensors.get(i)) {
                    let dims = t.dims.iter().map(|&d| d as usize).collect();
                    let mut t = Tensor { name: t.name.clone(), ty: t.ty, dims, data };
                    sink.offer(&mut t)?;
                    self.tensors.insert(t.name.clone(), t);
                }
            }
        }
        Ok(())
    }

    pub fn finish(self, size: u64) -> Result<GgufSource> {
        let header = self.header.ok_or_else(|| Error::malformed("GGUF stream", "no header"))?;
        Ok(GgufSource { header, tensors: self.tensors, size })
    }
}

impl WeightSource for GgufSource {
    fn metadata(&self) -> &dyn Metadata {
        &self.header
    }
    fn take(&mut self, name: &str) -> Result<Tensor> {
        self.tensors.remove(name).ok_or_else(|| Error::MissingTensor { name: name.to_string() })
    }
    fn dims(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.get(name).map(|t| t.dims.clone())
    }
    fn remaining(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tensors.keys().cloned().collect();
        names.sort();
        names
    }
    fn naming(&self) -> Naming {
        Naming::Gguf
    }
    fn file_size(&self) -> u64 {
        self.size
    }
}
