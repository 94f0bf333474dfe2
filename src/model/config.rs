//! Hyper-parameters, read from the file (GGUF metadata, or a Hugging Face `config.json` mapped onto
//! the same GGUF keys), never from constants.

use crate::error::{Error, Result};
use crate::gguf::Value;
use crate::weights::Metadata;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// RMSNorm, RoPE, grouped-query attention, SwiGLU.
    Llama,
    /// Llama's block with Q/K/V biases and NEOX RoPE.
    Qwen2,
    /// Llama's block with per-head Q/K RMSNorm, NEOX RoPE, head size from `key_length`.
    Qwen3,
    /// Llama's block with fused QKV and gate/up matrices, NEOX RoPE.
    Phi3,
    /// Post-norms, GeGLU, per-head Q/K RMSNorm, sliding-window attention on 5 of 6 layers.
    Gemma3,
    /// LayerNorm, learned positions, fused QKV, tanh-GELU, tied head.
    Gpt2,
}

impl Arch {
    pub const ALL: [Arch; 6] = [Arch::Llama, Arch::Qwen2, Arch::Qwen3, Arch::Phi3, Arch::Gemma3, Arch::Gpt2];

    /// GGUF's `general.architecture`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Phi3 => "phi3",
            Arch::Gemma3 => "gemma3",
            Arch::Gpt2 => "gpt2",
        }
    }

    pub fn parse(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// How RoPE pairs dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs (2i, 2i+1): GGUF llama, whose converter permuted Q/K rows for it.
    Interleaved,
    /// Halves (i, i+d/2): Hugging Face checkpoints (`rotate_half`).
    Neox,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub arch: Arch,
    pub n_ctx_train: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub norm_eps: f32,
    pub rope_base: f32,
    pub rope_dims: usize,
    pub rope_style: RopeStyle,
    /// `1 / {arch}.rope.scaling.factor` for linear scaling, else 1.
    pub rope_freq_scale: f32,
    /// `{arch}.rope.scaling.attn_factor`: cos and sin are scaled by it (Phi-3.5's LongRoPE).
    pub rope_attn_factor: f32,
    /// `{arch}.rope.scaling.original_context_length`, else the trained context.
    pub n_ctx_orig: usize,
    /// `{arch}.attention.sliding_window`, when the file gives one.
    pub sliding_window: Option<usize>,
    /// Attention's score scale: `1 / √head_dim` unless the architecture says otherwise.
    pub attn_scale: f32,
    /// Whether llama.cpp's graph for this architecture scales the queries before attention
    /// (Phi-3, Gemma 3) rather than the scores: the same mathematics, but its f16 rounding of
    /// the query then sees the scaled value, which the `llamacpp` numerics reproduce.
    pub attn_q_scaled: bool,
}

/// Caps against absurd headers (they also bound every activation buffer we allocate).
const MAX_DIM: u64 = 1 << 16;
const MAX_LAYERS: u64 = 1 << 10;
const MAX_CTX: u64 = 1 << 20;

fn get_u(m: &dyn Metadata, key: &str, max: u64) -> Result<usize> {
    let v = m.get(key).ok_or_else(|| Error::MissingKey { key: key.into() })?;
    let n = v.as_u64().ok_or_else(|| Error::WrongType { key: key.into(), expected: "unsigned integer" })?;
    if n == 0 || n > max {
        return Err(Error::malformed(format!("metadata '{key}'"), format!("{n} is outside 1..={max}")));
    }
    Ok(n as usize)
}

fn get_f(m: &dyn Metadata, key: &str) -> Result<Option<f32>> {
    match m.get(key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(f) if f.is_finite() => Ok(Some(f as f32)),
            _ => Err(Error::WrongType { key: key.into(), expected: "finite number" }),
        },
    }
}

fn shown(v: &Value) -> String {
    match (v.as_str(), v.as_u64(), v.as_f64()) {
        (Some(s), _, _) => format!("'{s}'"),
        (None, Some(n), _) => n.to_string(),
        (None, None, Some(f)) => f.to_string(),
        _ => format!("{v:?}"),
    }
}

fn refuse<T>(key: String, v: &Value, why: &str) -> Result<T> {
    Err(Error::UnsupportedKey { key, value: shown(v), why: why.into() })
}

/// RoPE scaling as the file states it: the frequency scale of linear scaling (1 without), and
/// the attention factor. Other kinds (YaRN, dynamic NTK, …) change the angles in ways not
/// implemented here: refused naming the key, so such a model never runs silently wrong.
fn rope_scaling(m: &dyn Metadata, key: &dyn Fn(&str) -> String) -> Result<(f32, f32)> {
    let ty = m.get(&key("rope.scaling.type"));
    let factor = match get_f(m, &key("rope.scaling.factor"))? {
        Some(f) => Some(f),
        None => get_f(m, &key("rope.scale_linear"))?,
    };
    let freq_scale = match (ty.map(|v| (v, v.as_str())), factor) {
        (Some((_, Some("none"))), _) | (None, None) => 1.0,
        (Some((_, Some("linear"))) | None, Some(f)) if f > 0.0 => 1.0 / f,
        (Some((_, Some("linear"))), None) => 1.0,
        (Some((v, _)), _) => return refuse(key("rope.scaling.type"), v, "RoPE scaling other than linear"),
        (None, Some(f)) => {
            return refuse(key("rope.scaling.factor"), &Value::F64(f as f64), "a RoPE scaling factor ≤ 0")
        }
    };
    let attn_factor = get_f(m, &key("rope.scaling.attn_factor"))?.unwrap_or(1.0);
    Ok((freq_scale, attn_factor))
}

impl Config {
    pub fn from_metadata(m: &dyn Metadata) -> Result<Config> {
        let arch_name = m
            .get("general.architecture")
            .ok_or_else(|| Error::MissingKey { key: "general.architecture".into() })?
            .as_str()
            .ok_or_else(|| Error::WrongType { key: "general.architecture".into(), expected: "string" })?;
        let arch = Arch::parse(arch_name).ok_or_else(|| Error::UnsupportedArchitecture(arch_name.into()))?;
        let k = |s: &str| format!("{arch_name}.{s}");
        let n_embd = get_u(m, &k("embedding_length"), MAX_DIM)?;
        let n_head = get_u(m, &k("attention.head_count"), MAX_DIM)?;
        let n_head_kv = match m.get(&k("attention.head_count_kv")) {
            Some(_) => get_u(m, &k("attention.head_count_kv"), MAX_DIM)?,
            None => n_head,
        };
        // the head size: key_length when the file gives it (Qwen3, Gemma), else n_embd / n_head
        let head_dim = match m.get(&k("attention.key_length")) {
            Some(_) => get_u(m, &k("attention.key_length"), MAX_DIM)?,
            None if n_embd % n_head == 0 => n_embd / n_head,
            None => {
                return Err(Error::malformed(
                    "attention heads",
                    format!("embedding {n_embd} is not a multiple of {n_head} heads"),
                ))
            }
        };
        if n_head % n_head_kv != 0 {
            return Err(Error::malformed(
                "attention heads",
                format!("{n_head} heads are not a multiple of {n_head_kv} KV heads"),
            ));
        }
        if let Some(v) = m.get(&k("attention.value_length")) {
            if v.as_u64() != Some(head_dim as u64) {
                return refuse(
                    k("attention.value_length"),
                    v,
                    &format!("values of another size than keys ({head_dim})"),
                );
            }
        }
        let (eps_key, default_eps) = match arch {
            Arch::Gpt2 => ("attention.layer_norm_epsilon", 1e-5),
            _ => ("attention.layer_norm_rms_epsilon", 1e-5),
        };
        let rope_dims = match m.get(&k("rope.dimension_count")) {
            Some(_) => get_u(m, &k("rope.dimension_count"), MAX_DIM)?,
            None => head_dim,
        };
        if rope_dims > head_dim || rope_dims % 2 != 0 {
            return Err(Error::malformed(
                "rope.dimension_count",
                format!("{rope_dims} for head size {head_dim}"),
            ));
        }
        let (rope_freq_scale, rope_attn_factor) = rope_scaling(m, &k)?;
        let n_ctx_train = get_u(m, &k("context_length"), MAX_CTX)?;
        let n_ctx_orig = match m.get(&k("rope.scaling.original_context_length")) {
            Some(_) => get_u(m, &k("rope.scaling.original_context_length"), MAX_CTX)?,
            None => n_ctx_train,
        };
        let sliding_window = match m.get(&k("attention.sliding_window")) {
            Some(v) if v.as_u64() == Some(0) => None,
            Some(_) => Some(get_u(m, &k("attention.sliding_window"), MAX_CTX)?),
            None => None,
        };
        Ok(Config {
            arch,
            n_ctx_train,
            n_embd,
            n_layer: get_u(m, &k("block_count"), MAX_LAYERS)?,
            n_head,
            n_head_kv,
            head_dim,
            n_ff: get_u(m, &k("feed_forward_length"), MAX_DIM * 4)?,
            norm_eps: get_f(m, &k(eps_key))?.unwrap_or(default_eps),
            rope_base: get_f(m, &k("rope.freq_base"))?.unwrap_or(10000.0),
            rope_dims,
            // llama.cpp's default; an architecture's loader sets its own
            rope_style: RopeStyle::Interleaved,
            rope_freq_scale,
            rope_attn_factor,
            n_ctx_orig,
            sliding_window,
            attn_scale: 1.0 / (head_dim as f32).sqrt(),
            attn_q_scaled: false,
        })
    }

    /// Width of the keys (and values) of one position: `n_head_kv · head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    /// Width of the queries (and of attention's output): `n_head · head_dim`.
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }
}

/// Maps a Hugging Face `config.json` onto GGUF metadata keys so one reader serves both.
pub fn hf_config_to_metadata(json: &serde_json::Value) -> Result<HashMap<String, Value>> {
    let obj = json.as_object().ok_or_else(|| Error::malformed("config.json", "not a JSON object"))?;
    let model_type = obj
        .get("model_type")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::MissingKey { key: "config.json model_type".into() })?;
    let mut m = HashMap::new();
    let arch = match model_type {
        "gpt2" => "gpt2",
        "llama" | "mistral" => "llama",
        "qwen2" => "qwen2",
        "qwen3" => "qwen3",
        "phi3" => "phi3",
        other => return Err(Error::UnsupportedArchitecture(other.to_string())),
    };
    m.insert("general.architecture".to_string(), Value::String(arch.into()));
    let map: &[(&str, &str)] = if arch == "gpt2" {
        &[
            ("n_embd", "embedding_length"),
            ("n_layer", "block_count"),
            ("n_head", "attention.head_count"),
            ("n_positions", "context_length"),
            ("layer_norm_epsilon", "attention.layer_norm_epsilon"),
            ("n_inner", "feed_forward_length"),
        ]
    } else {
        &[
            ("hidden_size", "embedding_length"),
            ("num_hidden_layers", "block_count"),
            ("num_attention_heads", "attention.head_count"),
            ("num_key_value_heads", "attention.head_count_kv"),
            ("max_position_embeddings", "context_length"),
            ("rms_norm_eps", "attention.layer_norm_rms_epsilon"),
            ("intermediate_size", "feed_forward_length"),
            ("rope_theta", "rope.freq_base"),
            ("head_dim", "attention.key_length"),
        ]
    };
    for (hf, gg) in map {
        match obj.get(*hf) {
            Some(v) if v.is_u64() => {
                m.insert(format!("{arch}.{gg}"), Value::U64(v.as_u64().unwrap_or(0)));
            }
            Some(v) if v.is_f64() => {
                m.insert(format!("{arch}.{gg}"), Value::F64(v.as_f64().unwrap_or(f64::NAN)));
            }
            _ => {}
        }
    }
    if arch == "gpt2" && !m.contains_key("gpt2.feed_forward_length") {
        if let Some(n) = m.get("gpt2.embedding_length").and_then(|v| v.as_u64()) {
            // saturating: a hostile n_embd then fails the range check below, not the multiply
            m.insert("gpt2.feed_forward_length".into(), Value::U64(n.saturating_mul(4)));
        }
    }
    if let Some(rs) = obj.get("rope_scaling").filter(|v| !v.is_null()) {
        let ty = rs.get("rope_type").or_else(|| rs.get("type")).and_then(|v| v.as_str()).unwrap_or("unknown");
        let ty = if ty == "default" { "none" } else { ty };
        m.insert(format!("{arch}.rope.scaling.type"), Value::String(ty.into()));
    }
    let tie = obj.get("tie_word_embeddings").and_then(|v| v.as_bool()).unwrap_or(arch == "gpt2");
    m.insert("wisp.tie_word_embeddings".into(), Value::Bool(tie));
    if let Some(v) = obj.get("vocab_size").and_then(|v| v.as_u64()) {
        m.insert(format!("{arch}.vocab_size"), Value::U64(v));
    }
    Ok(m)
}
