//! Hugging Face checkpoints: `model.safetensors` + `config.json` (+ `tokenizer.json`, or GPT-2's
//! `vocab.json` + `merges.txt`). Tensors keep their file dtype (F32, F16, BF16); shapes are turned
//! into ggml order (innermost first) so models see one convention. Which names mean what, and
//! which tensors are stored transposed, is the model definition's business, not this loader's.

use crate::error::{Error, Result};
use crate::gguf::Value;
use crate::model::config::hf_config_to_metadata;
use crate::quant::GgmlType;
use crate::weights::{Metadata, Naming, Tensor, WeightSource};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;

pub struct SafetensorsSource {
    metadata: HashMap<String, Value>,
    tensors: HashMap<String, Tensor>,
    size: u64,
}

impl SafetensorsSource {
    /// Parses a safetensors buffer and its `config.json`.
    pub fn from_bytes(st_bytes: &[u8], config_json: &[u8]) -> Result<SafetensorsSource> {
        let config: serde_json::Value = serde_json::from_slice(config_json)
            .map_err(|e| Error::malformed("config.json", e.to_string()))?;
        let metadata = hf_config_to_metadata(&config)?;
        let st = SafeTensors::deserialize(st_bytes)
            .map_err(|e| Error::BadMagic { format: "safetensors", why: e.to_string() })?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let ty = match view.dtype() {
                Dtype::F32 => GgmlType::F32,
                Dtype::F16 => GgmlType::F16,
                Dtype::BF16 => GgmlType::BF16,
                // buffers some checkpoints carry (e.g. GPT-2's causal mask) are not weights
                Dtype::BOOL | Dtype::U8 | Dtype::I64
                    if name.ends_with(".attn.bias") || name.ends_with("masked_bias") =>
                {
                    continue
                }
                other => return Err(Error::UnsupportedType { name, ty: format!("{other:?}") }),
            };
            let dims: Vec<usize> = view.shape().iter().rev().copied().collect();
            if dims.iter().product::<usize>() * ty.type_size() != view.data().len() {
                return Err(Error::malformed(
                    format!("tensor '{name}'"),
                    "byte length does not match its shape",
                ));
            }
            tensors.insert(name.clone(), Tensor { name, ty, dims, data: view.data().to_vec() });
        }
        Ok(SafetensorsSource { metadata, tensors, size: st_bytes.len() as u64 })
    }

    /// Reads `dir/model.safetensors` and `dir/config.json`.
    pub fn open_dir(dir: &std::path::Path) -> Result<SafetensorsSource> {
        let read = |f: &str| {
            let p = dir.join(f);
            std::fs::read(&p).map_err(|e| Error::io(&p, e))
        };
        SafetensorsSource::from_bytes(&read("model.safetensors")?, &read("config.json")?)
    }
}

impl WeightSource for SafetensorsSource {
    fn metadata(&self) -> &dyn Metadata {
        &self.metadata
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
        Naming::HuggingFace
    }
    fn file_size(&self) -> u64 {
        self.size
    }
}
