//! Random-weight models with the shapes and weight types of real ones, written as GGUF.
//!
//! Why: GPU speed is measured on machines the model files cannot travel to (the benchmark
//! machine takes at most 64 MiB per call; the default model is 98 MB), and speed does not depend
//! on the weights' values. `wisp synth --preset NAME` writes a file that goes through the same
//! loader, upload and kernels as the real model: the same tensor names, shapes and types, the
//! same metadata keys, seeded random weights (norm weights 1, biases 0) and a byte-level
//! vocabulary of the real size (every byte is a token, so any prompt encodes).

use crate::error::{Error, Result};
use crate::gguf::write::{header, padded};
use crate::gguf::Value;
use crate::quant::GgmlType;
use std::io::Write;

/// A model shape to imitate.
#[derive(Clone, Debug)]
pub struct Preset {
    pub name: &'static str,
    /// `llama` or `gpt2`
    pub arch: &'static str,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub n_ff: usize,
    pub n_vocab: usize,
    pub n_ctx: usize,
    /// the layers' matrices
    pub weight_type: GgmlType,
    /// the token embedding (also the tied output head)
    pub embd_type: GgmlType,
    pub what: &'static str,
}

/// The shapes benchmarks are asked for (issue 3): the default model and GPT-2 small/medium in f16.
pub const PRESETS: [Preset; 3] = [
    Preset {
        name: "smollm2-135m",
        arch: "llama",
        n_embd: 576,
        n_layer: 30,
        n_head: 9,
        n_head_kv: 3,
        n_ff: 1536,
        n_vocab: 49152,
        n_ctx: 8192,
        weight_type: GgmlType::Q4_1,
        embd_type: GgmlType::Q8_0,
        what: "SmolLM2-135M-Instruct's shapes and types (Q4_1 layers, Q8_0 tied embedding)",
    },
    Preset {
        name: "gpt2-f16",
        arch: "gpt2",
        n_embd: 768,
        n_layer: 12,
        n_head: 12,
        n_head_kv: 12,
        n_ff: 3072,
        n_vocab: 50257,
        n_ctx: 1024,
        weight_type: GgmlType::F16,
        embd_type: GgmlType::F16,
        what: "GPT-2 small (124M) in f16",
    },
    Preset {
        name: "gpt2-medium-f16",
        arch: "gpt2",
        n_embd: 1024,
        n_layer: 24,
        n_head: 16,
        n_head_kv: 16,
        n_ff: 4096,
        n_vocab: 50257,
        n_ctx: 1024,
        weight_type: GgmlType::F16,
        embd_type: GgmlType::F16,
        what: "GPT-2 medium (355M) in f16",
    },
];

/// The preset called `name`, or an error listing them.
pub fn preset(name: &str) -> Result<Preset> {
    PRESETS.iter().find(|p| p.name == name).cloned().ok_or_else(|| {
        let names: Vec<_> = PRESETS.iter().map(|p| p.name).collect();
        Error::arg("--preset", format!("unknown preset '{name}' (known: {})", names.join(", ")))
    })
}

/// How a tensor's values are made.
#[derive(Clone, Copy)]
enum Fill {
    Random,
    Ones,
    Zeros,
}

struct Spec {
    name: String,
    /// ggml order
    dims: Vec<u64>,
    ty: GgmlType,
    fill: Fill,
}

impl Spec {
    fn n_bytes(&self) -> Result<u64> {
        let rows: u64 = self.dims[1..].iter().product();
        Ok(self.ty.row_bytes(self.dims[0])? * rows)
    }
}

fn tensors(p: &Preset) -> Vec<Spec> {
    let (d, kv, ff) = (p.n_embd as u64, (p.n_embd / p.n_head * p.n_head_kv) as u64, p.n_ff as u64);
    let gpt2 = p.arch == "gpt2";
    let mut out = Vec::new();
    let spec = |name: String, dims: Vec<u64>, ty, fill| Spec { name, dims, ty, fill };
    let norm = |out: &mut Vec<Spec>, name: &str| {
        out.push(spec(format!("{name}.weight"), vec![d], GgmlType::F32, Fill::Ones));
        if gpt2 {
            out.push(spec(format!("{name}.bias"), vec![d], GgmlType::F32, Fill::Zeros));
        }
    };
    // (name, columns in, rows out)
    let linear = |out: &mut Vec<Spec>, name: &str, n_in: u64, n_out: u64| {
        out.push(spec(format!("{name}.weight"), vec![n_in, n_out], p.weight_type, Fill::Random));
        if gpt2 {
            out.push(spec(format!("{name}.bias"), vec![n_out], GgmlType::F32, Fill::Random));
        }
    };
    out.push(spec("token_embd.weight".into(), vec![d, p.n_vocab as u64], p.embd_type, Fill::Random));
    if gpt2 {
        out.push(spec("position_embd.weight".into(), vec![d, p.n_ctx as u64], p.embd_type, Fill::Random));
    }
    for i in 0..p.n_layer {
        let blk = |s: &str| format!("blk.{i}.{s}");
        norm(&mut out, &blk("attn_norm"));
        if gpt2 {
            linear(&mut out, &blk("attn_qkv"), d, 3 * d);
        } else {
            linear(&mut out, &blk("attn_q"), d, d);
            linear(&mut out, &blk("attn_k"), d, kv);
            linear(&mut out, &blk("attn_v"), d, kv);
        }
        linear(&mut out, &blk("attn_output"), d, d);
        norm(&mut out, &blk("ffn_norm"));
        if !gpt2 {
            linear(&mut out, &blk("ffn_gate"), d, ff);
        }
        linear(&mut out, &blk("ffn_up"), d, ff);
        linear(&mut out, &blk("ffn_down"), ff, d);
    }
    norm(&mut out, "output_norm");
    out
}

fn metadata(p: &Preset) -> Vec<(String, Value)> {
    let a = p.arch;
    let u = |v: usize| Value::U32(v as u32);
    let mut m = vec![
        ("general.architecture".to_string(), Value::String(a.into())),
        ("general.name".into(), Value::String(format!("wisp synth {} (random weights)", p.name))),
        (format!("{a}.block_count"), u(p.n_layer)),
        (format!("{a}.context_length"), u(p.n_ctx)),
        (format!("{a}.embedding_length"), u(p.n_embd)),
        (format!("{a}.feed_forward_length"), u(p.n_ff)),
        (format!("{a}.attention.head_count"), u(p.n_head)),
    ];
    if a == "llama" {
        m.push((format!("{a}.attention.head_count_kv"), u(p.n_head_kv)));
        m.push((format!("{a}.rope.freq_base"), Value::F32(100000.0)));
        m.push((format!("{a}.rope.dimension_count"), u(p.n_embd / p.n_head)));
        m.push((format!("{a}.attention.layer_norm_rms_epsilon"), Value::F32(1e-5)));
    } else {
        m.push((format!("{a}.attention.layer_norm_epsilon"), Value::F32(1e-5)));
    }
    // a byte-level vocabulary: the 256 byte symbols, an end-of-text token, then filler
    let bytes = crate::tokenizer::byte_to_char();
    let mut tokens: Vec<Value> = bytes.iter().map(|c| Value::String(c.to_string())).collect();
    let eos = tokens.len();
    tokens.push(Value::String("<|endoftext|>".into()));
    while tokens.len() < p.n_vocab {
        tokens.push(Value::String(format!("<|synth_{}|>", tokens.len())));
    }
    let types = (0..tokens.len()).map(|i| Value::I32(if i >= eos { 3 } else { 1 })).collect();
    m.extend([
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.merges".into(), Value::Array(vec![])),
        ("tokenizer.ggml.eos_token_id".into(), u(eos)),
        ("tokenizer.ggml.bos_token_id".into(), u(eos)),
    ]);
    m
}

/// xorshift64*: reproducible random bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// uniform in [-1, 1)
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Appends `n` elements of type `ty`, uniform in ±`scale` (block scales chosen so quantized
/// values fall in that range too: random quants under fixed sub-block scales). Every type the
/// engine reads can be written, so a preset of any type can be made.
fn random(ty: GgmlType, n: u64, scale: f32, rng: &mut Rng, out: &mut Vec<u8>) {
    let f16 = |x: f32| half::f16::from_f32(x).to_bits().to_le_bytes();
    let bytes = |k: usize, rng: &mut Rng, out: &mut Vec<u8>| out.extend((0..k).map(|_| rng.next() as u8));
    let blocks = n / ty.block_size() as u64;
    for _ in 0..blocks {
        match ty {
            GgmlType::F32 => out.extend((rng.unit() * scale).to_le_bytes()),
            GgmlType::F16 => out.extend(f16(rng.unit() * scale)),
            GgmlType::BF16 => out.extend(half::bf16::from_f32(rng.unit() * scale).to_bits().to_le_bytes()),
            GgmlType::Q8_0 => {
                out.extend(f16(scale / 127.0));
                bytes(32, rng, out);
            }
            GgmlType::Q4_0 => {
                out.extend(f16(scale / 8.0));
                bytes(16, rng, out);
            }
            GgmlType::Q4_1 => {
                out.extend(f16(scale / 7.5));
                out.extend(f16(-scale));
                bytes(16, rng, out);
            }
            // x = d·(q − 16), q < 32
            GgmlType::Q5_0 => {
                out.extend(f16(scale / 16.0));
                bytes(20, rng, out);
            }
            GgmlType::Q5_1 => {
                out.extend(f16(scale / 15.5));
                out.extend(f16(-scale));
                bytes(20, rng, out);
            }
            // levels −127 … 113
            GgmlType::IQ4NL => {
                out.extend(f16(scale / 127.0));
                bytes(16, rng, out);
            }
            // every scale and min 15: x = (2q/3 − 1)·scale, q < 4
            GgmlType::Q2K => {
                out.extend([0xFF; 16]);
                bytes(64, rng, out);
                out.extend(f16(scale * 2.0 / 45.0));
                out.extend(f16(scale / 15.0));
            }
            // every scale 31: x = q/4·scale, q in −4..4
            GgmlType::Q3K => {
                bytes(96, rng, out);
                out.extend([0xFF; 12]);
                out.extend(f16(scale / 124.0));
            }
            // every scale and min 63: x = (2q/15 − 1)·scale, q < 16
            GgmlType::Q4K => {
                out.extend(f16(scale * 2.0 / (63.0 * 15.0)));
                out.extend(f16(scale / 63.0));
                out.extend([0xFF; 12]);
                bytes(128, rng, out);
            }
            // as Q4_K with q < 32
            GgmlType::Q5K => {
                out.extend(f16(scale * 2.0 / (63.0 * 31.0)));
                out.extend(f16(scale / 63.0));
                out.extend([0xFF; 12]);
                bytes(160, rng, out);
            }
            // every scale 8: x = (q − 32)/32·scale, q < 64
            GgmlType::Q6K => {
                bytes(192, rng, out);
                out.extend([8; 16]);
                out.extend(f16(scale / 256.0));
            }
        }
    }
}

/// Writes the preset (with `layers` overriding its depth, for quick runs) as GGUF to `out`,
/// tensor by tensor; returns the bytes written.
pub fn write(p: &Preset, layers: Option<usize>, seed: u64, out: &mut dyn Write) -> Result<u64> {
    let mut p = p.clone();
    p.n_layer = layers.unwrap_or(p.n_layer);
    let specs = tensors(&p);
    let infos = specs
        .iter()
        .map(|s| Ok((s.name.as_str(), s.dims.clone(), s.ty, s.n_bytes()?)))
        .collect::<Result<Vec<_>>>()?;
    let meta = metadata(&p);
    let meta: Vec<(&str, Value)> = meta.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let head = header(&meta, &infos);
    let io = |e| Error::io("synthetic model output", e);
    out.write_all(&head).map_err(io)?;
    let mut written = head.len() as u64;
    let mut rng = Rng(seed | 1);
    // weights like a trained model's: ~1/sqrt(fan-in), so activations stay of order one
    let mut data = Vec::new();
    for s in &specs {
        data.clear();
        let n: u64 = s.dims.iter().product();
        match s.fill {
            Fill::Random => random(s.ty, n, 1.0 / (s.dims[0] as f32).sqrt(), &mut rng, &mut data),
            Fill::Ones => (0..n).for_each(|_| data.extend(1f32.to_le_bytes())),
            Fill::Zeros => data.resize(4 * n as usize, 0),
        }
        data.resize(padded(data.len() as u64) as usize, 0);
        out.write_all(&data).map_err(io)?;
        written += data.len() as u64;
    }
    out.flush().map_err(io)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_weights_of_every_type_are_whole_blocks_within_the_scale() {
        let mut rng = Rng(7);
        for ty in GgmlType::ALL {
            let (n, scale) = (512u64, 0.04f32);
            let mut data = Vec::new();
            random(ty, n, scale, &mut rng, &mut data);
            assert_eq!(data.len() as u64, ty.row_bytes(n).unwrap(), "{}", ty.name());
            let mut x = vec![0.0f32; n as usize];
            crate::quant::dequantize(ty, &data, &mut x);
            // within the scale up to the f16 rounding of the block scales
            let max = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(max <= scale * 1.01 && max >= scale * 0.5, "{}: max |x| {max}", ty.name());
            let mean = x.iter().sum::<f32>() / n as f32;
            assert!(mean.abs() < 0.2 * scale, "{}: mean {mean}", ty.name());
        }
    }
}
