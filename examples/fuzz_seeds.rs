//! Writes the committed seed corpora of the fuzz targets (`fuzz/seeds/<target>/`): small generated
//! models, tokenizers, templates and sampler inputs, plus pieces of the real default model when
//! its file is given. Run: `cargo run --example fuzz_seeds -- [path/to/default.gguf]`.

use std::path::Path;
use wisp::gguf::{write, GgufFile, Value};
use wisp::quant::GgmlType;

type T = (String, Vec<u64>, GgmlType, Vec<u8>);

fn s(x: &str) -> Value {
    Value::String(x.into())
}

/// Deterministic filler bytes that are valid blocks of every type (f16 scales stay small).
fn bytes_for(ty: GgmlType, n: u64) -> Vec<u8> {
    let len = (n as usize / ty.block_size()) * ty.type_size();
    let mut out: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
    match ty {
        GgmlType::F32 => {
            out = (0..n).flat_map(|i| ((i % 7) as f32 * 0.01).to_le_bytes()).collect();
        }
        GgmlType::F16 => {
            out = (0..n).flat_map(|i| half::f16::from_f32((i % 5) as f32 * 0.01).to_le_bytes()).collect();
        }
        _ => {
            // the leading f16 scale(s) of each block: 0.01
            let d = half::f16::from_f32(0.01).to_le_bytes();
            for b in out.chunks_mut(ty.type_size()) {
                if matches!(ty, GgmlType::Q6K) {
                    let k = b.len();
                    b[k - 2..].copy_from_slice(&d);
                } else {
                    b[..2].copy_from_slice(&d);
                    // the second f16 (min) of Q4_1 and Q4_K
                    if matches!(ty, GgmlType::Q4_1 | GgmlType::Q4K) {
                        b[2..4].copy_from_slice(&d);
                    }
                }
            }
        }
    }
    out
}

/// GPT-2's byte-to-symbol map: printable bytes stand for themselves, the rest for U+0100 onward.
fn byte_symbols() -> Vec<String> {
    let printable =
        |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    let mut next = 0x100;
    (0..256u32)
        .map(|b| {
            let c = if printable(b) {
                b
            } else {
                next += 1;
                next - 1
            };
            char::from_u32(c).map(String::from).unwrap_or_default()
        })
        .collect()
}

/// A byte-level BPE vocabulary: the 256 byte symbols, a few merges, and control tokens.
fn tokenizer_meta(pre: &str) -> Vec<(&'static str, Value)> {
    let mut toks = byte_symbols();
    let merges = ["a b", "Ġ a", "ab c", "Ġ t", "h e", "Ġt he", "i n", "e r"];
    for m in merges {
        toks.push(m.replace(' ', ""));
    }
    let first_special = toks.len();
    for t in ["<s>", "</s>", "<|im_start|>", "<|im_end|>"] {
        toks.push(t.into());
    }
    let types: Vec<Value> =
        (0..toks.len()).map(|i| Value::I32(if i >= first_special { 3 } else { 1 })).collect();
    vec![
        ("tokenizer.ggml.model", s("gpt2")),
        ("tokenizer.ggml.pre", s(pre)),
        ("tokenizer.ggml.tokens", Value::Array(toks.iter().map(|t| s(t)).collect())),
        ("tokenizer.ggml.token_type", Value::Array(types)),
        ("tokenizer.ggml.merges", Value::Array(merges.iter().map(|m| s(m)).collect())),
        ("tokenizer.ggml.bos_token_id", Value::U32(first_special as u32)),
        ("tokenizer.ggml.eos_token_id", Value::U32(first_special as u32 + 3)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
    ]
}

/// A SentencePiece (`llama`) or Gemma 4 (`gemma4`) vocabulary: `<0xNN>` byte tokens, a few
/// scored pieces (merges for gemma4), control and user-defined tokens.
fn spm_meta(model: &str) -> Vec<(&'static str, Value)> {
    let mut toks: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    toks.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    types.extend([6; 256]);
    let merges = ["▁ a", "a b", "▁ t", "h e", "▁t he", "\n \n"];
    for m in merges {
        toks.push(m.replace(' ', ""));
        types.push(1);
    }
    for (t, ty) in [("▁", 1), ("a", 1), ("b", 1), ("<start_of_turn>", 3), ("[U]", 4), ("", 1)] {
        toks.push(t.into());
        types.push(ty);
    }
    let n = toks.len();
    let mut meta = vec![
        ("tokenizer.ggml.model", s(model)),
        ("tokenizer.ggml.tokens", Value::Array(toks.iter().map(|t| s(t)).collect())),
        ("tokenizer.ggml.scores", Value::Array((0..n).map(|i| Value::F32(-(i as f32) / 7.0)).collect())),
        ("tokenizer.ggml.token_type", Value::Array(types.into_iter().map(Value::I32).collect())),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
    ];
    if model == "gemma4" {
        meta.push(("tokenizer.ggml.merges", Value::Array(merges.iter().map(|m| s(m)).collect())));
    }
    meta
}

/// Vocabulary size of [`tokenizer_meta`].
const VOCAB: u64 = 256 + 8 + 4;

/// A one-layer llama (n_embd 32, n_ff `ff`) with its matrices in `ty` (ffn_down in `down_ty`).
fn llama(ty: GgmlType, down_ty: GgmlType, ff: u64) -> Vec<u8> {
    let d = 32;
    let vocab = VOCAB;
    let mut meta = vec![
        ("general.architecture", s("llama")),
        ("llama.context_length", Value::U32(256)),
        ("llama.embedding_length", Value::U32(d as u32)),
        ("llama.block_count", Value::U32(1)),
        ("llama.feed_forward_length", Value::U32(ff as u32)),
        ("llama.attention.head_count", Value::U32(2)),
        ("llama.attention.head_count_kv", Value::U32(1)),
        ("llama.rope.freq_base", Value::F32(10000.0)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("tokenizer.chat_template", s(wisp::chat::CHATML)),
    ];
    meta.extend(tokenizer_meta("smollm"));
    let t = |name: &str, dims: Vec<u64>, ty: GgmlType| -> T {
        let n = dims.iter().product();
        (name.to_string(), dims, ty, bytes_for(ty, n))
    };
    let f = GgmlType::F32;
    let tensors = vec![
        t("token_embd.weight", vec![d, vocab], ty),
        t("blk.0.attn_norm.weight", vec![d], f),
        t("blk.0.attn_q.weight", vec![d, d], ty),
        t("blk.0.attn_k.weight", vec![d, d / 2], ty),
        t("blk.0.attn_v.weight", vec![d, d / 2], ty),
        t("blk.0.attn_output.weight", vec![d, d], ty),
        t("blk.0.ffn_norm.weight", vec![d], f),
        t("blk.0.ffn_gate.weight", vec![d, ff], ty),
        t("blk.0.ffn_up.weight", vec![d, ff], ty),
        t("blk.0.ffn_down.weight", vec![ff, d], down_ty),
        t("output_norm.weight", vec![d], f),
    ];
    gguf(&meta, &tensors)
}

/// A one-layer GPT-2 (n_embd 32) in f16 with biases and learned positions.
fn gpt2() -> Vec<u8> {
    let d = 32;
    let mut meta = vec![
        ("general.architecture", s("gpt2")),
        ("gpt2.context_length", Value::U32(64)),
        ("gpt2.embedding_length", Value::U32(d as u32)),
        ("gpt2.block_count", Value::U32(1)),
        ("gpt2.feed_forward_length", Value::U32(4 * d as u32)),
        ("gpt2.attention.head_count", Value::U32(2)),
        ("gpt2.attention.layer_norm_epsilon", Value::F32(1e-5)),
    ];
    meta.extend(tokenizer_meta("gpt2"));
    let t = |name: &str, dims: Vec<u64>, ty: GgmlType| -> T {
        let n = dims.iter().product();
        (name.to_string(), dims, ty, bytes_for(ty, n))
    };
    let (h, f) = (GgmlType::F16, GgmlType::F32);
    let mut tensors =
        vec![t("token_embd.weight", vec![d, VOCAB], h), t("position_embd.weight", vec![d, 64], f)];
    for (name, dims) in [
        ("attn_qkv", vec![d, 3 * d]),
        ("attn_output", vec![d, d]),
        ("ffn_up", vec![d, 4 * d]),
        ("ffn_down", vec![4 * d, d]),
    ] {
        let rows = dims[1];
        tensors.push(t(&format!("blk.0.{name}.weight"), dims, h));
        tensors.push(t(&format!("blk.0.{name}.bias"), vec![rows], f));
    }
    for n in ["blk.0.attn_norm", "blk.0.ffn_norm", "output_norm"] {
        tensors.push(t(&format!("{n}.weight"), vec![d], f));
        tensors.push(t(&format!("{n}.bias"), vec![d], f));
    }
    gguf(&meta, &tensors)
}

/// Every metadata value type, nested arrays included, and one tensor of each weight type.
fn all_types() -> Vec<u8> {
    let meta = vec![
        ("u8", Value::U8(1)),
        ("i8", Value::I8(-1)),
        ("u16", Value::U16(2)),
        ("i16", Value::I16(-2)),
        ("u32", Value::U32(3)),
        ("i32", Value::I32(-3)),
        ("u64", Value::U64(4)),
        ("i64", Value::I64(-4)),
        ("f32", Value::F32(0.5)),
        ("f64", Value::F64(0.25)),
        ("bool", Value::Bool(true)),
        ("string", s("héllo")),
        ("nested", Value::Array(vec![Value::Array(vec![Value::U8(1), Value::U8(2)]), Value::Array(vec![])])),
        ("general.alignment", Value::U32(64)),
    ];
    let tensors: Vec<T> = GgmlType::ALL
        .iter()
        .map(|&ty| (format!("t.{}", ty.name()), vec![256, 2], ty, bytes_for(ty, 512)))
        .collect();
    gguf(&meta, &tensors)
}

fn gguf(meta: &[(&str, Value)], tensors: &[T]) -> Vec<u8> {
    let ts: Vec<(&str, Vec<u64>, GgmlType, Vec<u8>)> =
        tensors.iter().map(|(n, d, t, b)| (n.as_str(), d.clone(), *t, b.clone())).collect();
    write::gguf(meta, &ts)
}

/// A tiny Hugging Face checkpoint: (config.json, model.safetensors).
fn safetensors(gpt2: bool) -> (String, Vec<u8>) {
    use safetensors::tensor::{serialize, Dtype, TensorView};
    let (d, v, ff) = (8usize, 16usize, 16usize);
    let shapes: Vec<(String, Vec<usize>)> = if gpt2 {
        let mut s = vec![("wte.weight".into(), vec![v, d]), ("wpe.weight".into(), vec![8, d])];
        for (n, shape) in [
            ("attn.c_attn", vec![d, 3 * d]),
            ("attn.c_proj", vec![d, d]),
            ("mlp.c_fc", vec![d, 4 * d]),
            ("mlp.c_proj", vec![4 * d, d]),
        ] {
            s.push((format!("h.0.{n}.bias"), vec![shape[1]]));
            s.push((format!("h.0.{n}.weight"), shape));
        }
        for n in ["h.0.ln_1", "h.0.ln_2", "ln_f"] {
            s.push((format!("{n}.weight"), vec![d]));
            s.push((format!("{n}.bias"), vec![d]));
        }
        s
    } else {
        let mut s =
            vec![("model.embed_tokens.weight".into(), vec![v, d]), ("model.norm.weight".into(), vec![d])];
        for (n, shape) in [
            ("self_attn.q_proj", vec![d, d]),
            ("self_attn.k_proj", vec![d / 2, d]),
            ("self_attn.v_proj", vec![d / 2, d]),
            ("self_attn.o_proj", vec![d, d]),
            ("mlp.gate_proj", vec![ff, d]),
            ("mlp.up_proj", vec![ff, d]),
            ("mlp.down_proj", vec![d, ff]),
        ] {
            s.push((format!("model.layers.0.{n}.weight"), shape));
        }
        for n in ["input_layernorm", "post_attention_layernorm"] {
            s.push((format!("model.layers.0.{n}.weight"), vec![d]));
        }
        s.push(("lm_head.weight".into(), vec![v, d]));
        s
    };
    let data: Vec<Vec<u8>> = shapes
        .iter()
        .map(|(_, sh)| {
            (0..sh.iter().product::<usize>()).flat_map(|i| ((i % 5) as f32 * 0.1).to_le_bytes()).collect()
        })
        .collect();
    let views: Vec<(String, TensorView)> = shapes
        .iter()
        .zip(&data)
        .map(|((n, sh), b)| (n.clone(), TensorView::new(Dtype::F32, sh.clone(), b).expect("consistent view")))
        .collect();
    let st = serialize(views, None).expect("serializable");
    let config = if gpt2 {
        r#"{"model_type":"gpt2","n_embd":8,"n_layer":1,"n_head":2,"n_positions":8,"vocab_size":16,"layer_norm_epsilon":1e-5}"#
    } else {
        r#"{"model_type":"llama","hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"vocab_size":16,"max_position_embeddings":16,"rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":false}"#
    };
    (config.to_string(), st)
}

fn with_len_prefix(first: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut out = (first.len() as u16).to_le_bytes().to_vec();
    out.extend_from_slice(first);
    out.extend_from_slice(rest);
    out
}

fn put(target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = Path::new("fuzz/seeds").join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let q = [
        ("f32", GgmlType::F32, GgmlType::F32, 64),
        ("q8_0", GgmlType::Q8_0, GgmlType::Q8_0, 64),
        ("q4_0", GgmlType::Q4_0, GgmlType::Q4_0, 64),
        ("q4_1", GgmlType::Q4_1, GgmlType::Q4_1, 64),
        ("k", GgmlType::Q8_0, GgmlType::Q4K, 256),
        ("q6_k", GgmlType::F16, GgmlType::Q6K, 256),
    ];
    for (name, ty, down, ff) in q {
        let m = llama(ty, down, ff);
        put("gguf_engine", &format!("llama_{name}.gguf"), &m)?;
        if name == "f32" || name == "q4_1" {
            put("gguf_parse", &format!("llama_{name}"), &[[7].as_slice(), &m].concat())?;
        }
    }
    put("gguf_engine", "gpt2_f16.gguf", &gpt2())?;
    put("gguf_parse", "all_types", &[[0].as_slice(), &all_types()].concat())?;
    put("gguf_parse", "gpt2_f16", &[[3].as_slice(), &gpt2()].concat())?;

    let texts =
        ["Hello, wörld!  \n\n\t 12345 ab abc 🦀 <s>x</s><|im_start|>user\nhi<|im_end|>", "", "   ", "a"];
    for pre in ["gpt2", "smollm", "llama-bpe", "qwen2", "unknown-pre", "deepseek-llm", "falcon"] {
        let header = gguf(&tokenizer_meta(pre), &[]);
        for (i, t) in texts.iter().enumerate() {
            put("tokenizer", &format!("{pre}_{i}"), &with_len_prefix(t.as_bytes(), &header))?;
        }
    }
    for model in ["llama", "gemma4"] {
        let header = gguf(&spm_meta(model), &[]);
        for (i, t) in texts.iter().enumerate() {
            put("tokenizer", &format!("{model}-model_{i}"), &with_len_prefix(t.as_bytes(), &header))?;
        }
    }

    for gpt2 in [true, false] {
        let (config, st) = safetensors(gpt2);
        put("safetensors", if gpt2 { "gpt2" } else { "llama" }, &with_len_prefix(config.as_bytes(), &st))?;
    }

    let messages = "system\0Be brief.\0user\0Hi <|im_end|> {{ 7*7 }}\0assistant\0Hello!\0user\0<img src=x onerror=alert(1)>";
    let mut templates = vec![
        ("chatml", wisp::chat::CHATML.to_string()),
        ("llama3", "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}".to_string()),
        ("alternate", "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'].strip() + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}".to_string()),
        ("loops", "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}".to_string()),
        ("macro", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}".to_string()),
    ];
    let args: Vec<String> = std::env::args().collect();
    if let Some(path) = args.get(1) {
        let bytes = std::fs::read(path)?;
        let f = GgufFile::parse(&bytes)?;
        if let Some(t) = f.header.get("tokenizer.chat_template").and_then(|v| v.as_str()) {
            templates.push(("smollm2", t.to_string()));
        }
        // the real file's first 16 KiB: real metadata, cut short
        put("gguf_parse", "smollm2_head", &[[1].as_slice(), &bytes[..16 << 10]].concat())?;
    }
    for (name, t) in templates {
        put("chat_template", name, format!("{t}\0<s>\0</s>\0{messages}").as_bytes())?;
    }

    for (i, seed) in [[0u8; 64], [0x3f; 64], [0xff; 64], [7; 64]].iter().enumerate() {
        let mut b = seed.to_vec();
        b.extend((0..256u32).map(|x| (x * 131 % 256) as u8));
        put("sampler", &format!("s{i}"), &b)?;
    }
    Ok(())
}
