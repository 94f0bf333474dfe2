//! Every bad input gets a clear error naming the problem, never a panic.

mod common;
use wisp::gguf::{write, GgufHeader, GgufStream, Value};
use wisp::model::Model;
use wisp::quant::GgmlType;
use wisp::weights::GgufSource;
use wisp::{Engine, Error};

const D: u64 = 32; // n_embd
const FF: u64 = 64;
const VOCAB: u64 = 8;

fn f32s(n: u64) -> Vec<u8> {
    (0..n).flat_map(|i| ((i % 7) as f32 * 0.01).to_le_bytes()).collect()
}

type T = (String, Vec<u64>, GgmlType, Vec<u8>);

/// Metadata and tensors of a tiny valid llama model with a byte-level tokenizer.
fn tiny() -> (Vec<(&'static str, Value)>, Vec<T>) {
    let s = |x: &str| Value::String(x.into());
    let tokens: Vec<Value> = ["a", "b", "c", "d", "e", "f", "<s>", "</s>"].iter().map(|t| s(t)).collect();
    let meta = vec![
        ("general.architecture", s("llama")),
        ("llama.context_length", Value::U32(64)),
        ("llama.embedding_length", Value::U32(D as u32)),
        ("llama.block_count", Value::U32(1)),
        ("llama.feed_forward_length", Value::U32(FF as u32)),
        ("llama.attention.head_count", Value::U32(2)),
        ("llama.attention.head_count_kv", Value::U32(1)),
        ("tokenizer.ggml.model", s("gpt2")),
        ("tokenizer.ggml.pre", s("gpt2")),
        ("tokenizer.ggml.tokens", Value::Array(tokens)),
        ("tokenizer.ggml.merges", Value::Array(vec![])),
        ("tokenizer.ggml.eos_token_id", Value::U32(7)),
    ];
    let t = |name: &str, dims: Vec<u64>| {
        let n = dims.iter().product();
        (name.to_string(), dims, GgmlType::F32, f32s(n))
    };
    let tensors = vec![
        t("token_embd.weight", vec![D, VOCAB]),
        t("blk.0.attn_norm.weight", vec![D]),
        t("blk.0.attn_q.weight", vec![D, D]),
        t("blk.0.attn_k.weight", vec![D, D / 2]),
        t("blk.0.attn_v.weight", vec![D, D / 2]),
        t("blk.0.attn_output.weight", vec![D, D]),
        t("blk.0.ffn_norm.weight", vec![D]),
        t("blk.0.ffn_gate.weight", vec![D, FF]),
        t("blk.0.ffn_up.weight", vec![D, FF]),
        t("blk.0.ffn_down.weight", vec![FF, D]),
        t("output_norm.weight", vec![D]),
    ];
    (meta, tensors)
}

fn build(meta: &[(&str, Value)], tensors: &[T]) -> Vec<u8> {
    let ts: Vec<(&str, Vec<u64>, GgmlType, Vec<u8>)> =
        tensors.iter().map(|(n, d, t, b)| (n.as_str(), d.clone(), *t, b.clone())).collect();
    write::gguf(meta, &ts)
}

fn load(bytes: &[u8]) -> Result<Engine, Error> {
    Engine::from_gguf_bytes(bytes, 0)
}

fn err_text(r: Result<Engine, Error>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => {
            // the README's table of bad inputs quotes these (`--nocapture` shows them)
            eprintln!("error: {e}");
            e.to_string()
        }
    }
}

#[test]
fn the_tiny_model_itself_loads_and_generates() {
    let (m, t) = tiny();
    let mut e = load(&build(&m, &t)).unwrap();
    let opts = wisp::GenerateOptions { max_tokens: 4, ignore_eog: true, ..Default::default() };
    let g = e.generate(&[0, 1, 2], &opts, &mut |_, _| true).unwrap();
    assert_eq!(g.ids.len(), 4);
}

#[test]
fn empty_file() {
    let e = err_text(load(&[]));
    assert!(e.contains("truncated") && e.contains("magic"), "{e}");
}

#[test]
fn not_a_gguf_file() {
    let e = err_text(load(b"<!doctype html><html>not a model</html>"));
    assert!(e.contains("not a GGUF file"), "{e}");
}

#[test]
fn wrong_version() {
    let (m, t) = tiny();
    let mut b = build(&m, &t);
    b[4..8].copy_from_slice(&7u32.to_le_bytes());
    let e = err_text(load(&b));
    assert!(e.contains("unsupported GGUF version 7"), "{e}");
}

#[test]
fn truncated_everywhere() {
    let (m, t) = tiny();
    let b = build(&m, &t);
    // every cut inside the header, and a sample through the data section
    let header_len = GgufHeader::parse(&b, Some(b.len() as u64)).unwrap().data_offset as usize;
    let cuts = (0..header_len).chain((header_len..b.len()).step_by(97));
    for cut in cuts {
        let e = err_text(load(&b[..cut]));
        assert!(e.contains("truncated"), "cut at {cut}: {e}");
    }
}

#[test]
fn streaming_parse_matches_whole_parse_at_any_chunk_size() {
    let (m, t) = tiny();
    let b = build(&m, &t);
    for chunk in [1, 7, 64, 4096] {
        let mut s = GgufStream::new(Some(b.len() as u64));
        let mut n_tensors = 0;
        for c in b.chunks(chunk) {
            for ev in s.push(c).unwrap() {
                if let wisp::gguf::StreamEvent::Tensor(i, data) = ev {
                    let h = s.header().unwrap();
                    let t = &h.tensors[i];
                    let start = (h.data_offset + t.offset) as usize;
                    assert_eq!(
                        data,
                        &b[start..start + t.n_bytes as usize],
                        "tensor {} at chunk {chunk}",
                        t.name
                    );
                    n_tensors += 1;
                }
            }
        }
        s.finish().unwrap();
        assert_eq!(n_tensors, t.len(), "chunk {chunk}");
    }
    // a stream that ends early names the missing tensor
    let mut s = GgufStream::new(None);
    s.push(&b[..b.len() - 40]).unwrap();
    let e = s.finish().unwrap_err().to_string();
    assert!(e.contains("output_norm.weight"), "{e}");
}

#[test]
fn unknown_tensor_type_names_the_tensor() {
    let (m, mut t) = tiny();
    let b0 = build(&m, &t);
    t[2].2 = GgmlType::F32;
    let mut b = build(&m, &t);
    // patch blk.0.attn_q.weight's type id to 23 (IQ4_XS, not supported)
    let name = b"blk.0.attn_q.weight";
    let at = b.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    let ty_at = at + 4 + 2 * 8;
    b[ty_at..ty_at + 4].copy_from_slice(&23u32.to_le_bytes());
    assert_ne!(b, b0);
    let e = err_text(load(&b));
    assert!(e.contains("blk.0.attn_q.weight") && e.contains("IQ4_XS"), "{e}");
}

#[test]
fn missing_tensor() {
    let (m, mut t) = tiny();
    t.retain(|x| x.0 != "blk.0.ffn_up.weight");
    let e = err_text(load(&build(&m, &t)));
    assert!(e.contains("missing tensor 'blk.0.ffn_up.weight'"), "{e}");
}

#[test]
fn mis_shaped_tensor() {
    let (m, mut t) = tiny();
    let i = t.iter().position(|x| x.0 == "blk.0.attn_k.weight").unwrap();
    t[i].1 = vec![D, D];
    t[i].3 = f32s(D * D);
    let e = err_text(load(&build(&m, &t)));
    assert!(e.contains("blk.0.attn_k.weight") && e.contains("shape"), "{e}");
}

#[test]
fn absurd_counts_are_refused_before_allocating() {
    let (m, t) = tiny();
    let mut b = build(&m, &t);
    b[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let e = err_text(load(&b));
    assert!(e.contains("tensor count") && e.contains("1152921504606846976"), "{e}");

    let mut b = build(&m, &t);
    b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(err_text(load(&b)).contains("metadata count"));

    // an array claiming 2^40 elements
    let meta = vec![
        ("general.architecture", Value::String("llama".into())),
        ("x", Value::Array(vec![Value::U32(1)])),
    ];
    let mut b = write::gguf(&meta, &[]);
    let key = b"\x01\x00\x00\x00\x00\x00\x00\x00x\x09\x00\x00\x00";
    let at = b.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4;
    b[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let e = err_text(load(&b));
    assert!(e.contains("array length"), "{e}");

    // a string claiming 2^62 bytes
    let mut b = write::gguf(&[("general.architecture", Value::String("llama".into()))], &[]);
    b[24..32].copy_from_slice(&(1u64 << 62).to_le_bytes());
    let e = err_text(load(&b));
    assert!(e.contains("string length") && e.contains("limit"), "{e}");
}

#[test]
fn tensor_data_out_of_bounds() {
    let (m, t) = tiny();
    let mut b = build(&m, &t);
    // move output_norm.weight's offset far past the end
    let name = b"output_norm.weight";
    let at = b.windows(name.len()).position(|w| w == name).unwrap() + name.len() + 4 + 8 + 4;
    b[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let e = err_text(load(&b));
    assert!(e.contains("output_norm.weight") && e.contains("truncated"), "{e}");
}

#[test]
fn unknown_architecture() {
    let (mut m, t) = tiny();
    m[0].1 = Value::String("mamba".into());
    let e = err_text(load(&build(&m, &t)));
    assert!(e.contains("unsupported architecture 'mamba'"), "{e}");
}

#[test]
fn missing_tokenizer_data() {
    let (mut m, t) = tiny();
    m.retain(|(k, _)| !k.starts_with("tokenizer."));
    let e = err_text(load(&build(&m, &t)));
    assert!(e.contains("no tokenizer"), "{e}");
    let src = GgufSource::from_bytes(&build(&m, &t)).unwrap();
    let mut src = src;
    assert!(Model::load(&mut src).is_ok(), "the weights alone are fine");
}

#[test]
fn unsupported_tokenizer_model_is_refused_naming_it() {
    let (mut m, t) = tiny();
    let at = m.iter().position(|(k, _)| *k == "tokenizer.ggml.model").unwrap();
    // WordPiece (BERT's), which no chat model uses, is still refused
    m[at].1 = Value::String("bert".into());
    let e = err_text(load(&build(&m, &t)));
    assert!(
        e.contains(
            "unsupported tokenizer model 'bert' (supported: gpt2 byte-level BPE, llama SentencePiece, gemma4 BPE)"
        ),
        "{e}"
    );
    let at = m.iter().position(|(k, _)| *k == "tokenizer.ggml.model").unwrap();
    m[at].1 = Value::String("gpt2".into());
    let at = m.iter().position(|(k, _)| *k == "tokenizer.ggml.pre").unwrap();
    m[at].1 = Value::String("no-such-pre".into());
    let e = err_text(load(&build(&m, &t)));
    assert!(e.contains("no-such-pre"), "an unknown pre-tokenizer is named: {e}");
}

/// A tensor the architecture does not use (a bias on a Llama projection, Qwen3's head norms)
/// would be silently ignored: refused, naming it.
#[test]
fn unused_tensors_are_refused_naming_them() {
    for (extra, len) in
        [("blk.0.attn_q.bias", D), ("blk.0.attn_q_norm.weight", D / 2), ("rope_factors_long.weight", 8)]
    {
        let (m, mut t) = tiny();
        t.push((extra.to_string(), vec![len], GgmlType::F32, f32s(len)));
        let e = err_text(load(&build(&m, &t)));
        assert!(
            e.contains(&format!("tensor '{extra}' is not supported for architecture 'llama'")),
            "{extra}: {e}"
        );
    }
}

/// Llama 3.x's `rope_freqs.weight` is read and used: factors of 1 change nothing, other factors
/// change the logits; one of the wrong length is refused naming it.
#[test]
fn rope_frequency_factors_are_used() {
    let logits = |factors: Option<Vec<f32>>| {
        let (m, mut t) = tiny();
        if let Some(f) = factors {
            let bytes = f.iter().flat_map(|x| x.to_le_bytes()).collect();
            t.push(("rope_freqs.weight".to_string(), vec![f.len() as u64], GgmlType::F32, bytes));
        }
        let mut e = load(&build(&m, &t)).unwrap();
        e.prefill(&[1, 2, 3, 4, 5]).unwrap().to_vec()
    };
    // head size 16: 8 pairs
    let plain = logits(None);
    assert_eq!(plain, logits(Some(vec![1.0; 8])));
    assert_ne!(plain, logits(Some((0..8).map(|i| 1.0 + i as f32).collect())));
    let (m, mut t) = tiny();
    t.push(("rope_freqs.weight".to_string(), vec![D], GgmlType::F32, f32s(D)));
    let e = err_text(load(&build(&m, &t)));
    assert!(e.contains("rope_freqs.weight"), "{e}");
}

/// Hyper-parameters not implemented (RoPE scaling other than linear, values of another size
/// than keys) are refused naming the key; what is implemented loads.
#[test]
fn unsupported_hyper_parameters_are_refused_naming_the_key() {
    let s = |x: &str| Value::String(x.into());
    let cases: [(&str, Value, bool); 9] = [
        ("llama.rope.scaling.type", s("yarn"), false),
        ("llama.rope.scaling.type", s("longrope"), false),
        ("llama.rope.scaling.type", s("linear"), true),
        ("llama.rope.scaling.type", s("none"), true),
        ("llama.rope.scaling.factor", Value::F32(8.0), true),
        ("llama.rope.scaling.factor", Value::F32(-1.0), false),
        ("llama.attention.value_length", Value::U32(D as u32), false),
        ("llama.attention.value_length", Value::U32(D as u32 / 2), true),
        ("llama.attention.key_length", Value::U32(D as u32 / 2), true),
    ];
    for (key, value, loads) in cases {
        let (mut m, t) = tiny();
        m.push((key, value.clone()));
        let r = load(&build(&m, &t));
        if loads {
            assert!(r.is_ok(), "{key} = {value:?}: {:?}", r.err());
        } else {
            let e = err_text(r);
            assert!(e.contains(&format!("metadata key '{key}'")) && e.contains("is not supported"), "{e}");
        }
    }
}

#[test]
fn template_that_cannot_render() {
    let (mut m, t) = tiny();
    m.push((
        "tokenizer.chat_template",
        Value::String("{{ raise_exception('roles must alternate') }}".into()),
    ));
    let mut e = load(&build(&m, &t)).unwrap();
    let err =
        e.chat(&[wisp::chat::Message::new("user", "hi")], &Default::default(), &mut |_, _| true).unwrap_err();
    assert!(err.to_string().contains("roles must alternate"), "{err}");
    m.pop();
    m.push(("tokenizer.chat_template", Value::String("{% for %}".into())));
    let e = err_text(load(&build(&m, &t)));
    assert!(e.contains("chat template"), "{e}");
}

#[test]
fn prompt_longer_than_the_context() {
    let (m, t) = tiny();
    let mut e = Engine::from_gguf_bytes(&build(&m, &t), 16).unwrap();
    let prompt: Vec<u32> = (0..40).map(|i| i % 6).collect();
    let err = e.generate(&prompt, &Default::default(), &mut |_, _| true).unwrap_err();
    assert!(matches!(err, Error::PromptTooLong { prompt: 40, ctx: 16 }), "{err}");
    // the engine is still usable afterwards
    assert!(e
        .generate(&[1, 2], &wisp::GenerateOptions { max_tokens: 2, ..Default::default() }, &mut |_, _| true)
        .is_ok());
}

#[test]
fn bad_generation_arguments() {
    let (m, t) = tiny();
    let mut e = load(&build(&m, &t)).unwrap();
    let run =
        |e: &mut Engine, o: wisp::GenerateOptions, p: &[u32]| e.generate(p, &o, &mut |_, _| true).map(|_| ());
    assert!(run(&mut e, wisp::GenerateOptions { max_tokens: 0, ..Default::default() }, &[1]).is_err());
    assert!(run(&mut e, Default::default(), &[]).is_err());
    assert!(run(&mut e, Default::default(), &[999])
        .unwrap_err()
        .to_string()
        .contains("outside the vocabulary"));
    let mut o = wisp::GenerateOptions::default();
    o.sampling.temperature = f32::NAN;
    assert!(run(&mut e, o, &[1]).unwrap_err().to_string().contains("temperature"));
    assert!(e.step(1).is_ok() || e.cached_tokens().is_empty());
}

#[test]
fn safetensors_garbage_and_bad_config() {
    use wisp::safetensors::SafetensorsSource;
    assert!(SafetensorsSource::from_bytes(b"garbage", b"{\"model_type\":\"gpt2\"}").is_err());
    let st = std::fs::read(common::fixture("gpt2-tiny/model.safetensors")).unwrap();
    let e = SafetensorsSource::from_bytes(&st, b"{not json").err().unwrap().to_string();
    assert!(e.contains("config.json"), "{e}");
    let e = SafetensorsSource::from_bytes(&st, b"{\"model_type\":\"bert\"}").err().unwrap().to_string();
    assert!(e.contains("unsupported architecture 'bert'"), "{e}");
    let e = SafetensorsSource::from_bytes(&st[..st.len() / 2], b"{\"model_type\":\"gpt2\"}")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("safetensors"), "{e}");
}
