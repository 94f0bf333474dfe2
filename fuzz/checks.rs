//! What each fuzz target checks, as plain functions over bytes: the libFuzzer targets call them,
//! and `tests/fuzz_regressions.rs` replays every seed and every input that once failed through
//! the same code on stable Rust. None may panic on any input.
#![allow(dead_code)]
use wisp::chat::{ChatTemplate, Message};
use wisp::gguf::GgufHeader;
use wisp::gguf::{GgufFile, GgufStream, StreamEvent};
use wisp::model::Model;
use wisp::quant::dequantize;
use wisp::safetensors::SafetensorsSource;
use wisp::sampling::{Sampler, SamplingParams, StreamDecoder};
use wisp::tokenizer::Tokenizer;
use wisp::{Engine, GenerateOptions};

/// The GGUF reader on hostile bytes, whole and streamed: neither may panic, hang or allocate what
/// the input cannot hold, and both must agree (same verdict, same tensor bytes).
pub fn gguf_parse(input: &[u8]) {
    // first byte: the stream's chunk size; the rest is the file
    let Some((&k, bytes)) = input.split_first() else { return };
    let chunk = 1 + (k as usize % 64) * 37;

    let whole = GgufFile::parse(bytes);
    if let Ok(f) = &whole {
        for t in &f.header.tensors {
            let data = f.tensor_data(t);
            // the reference dequantizer must take every block the reader accepted
            if t.n_elements() <= 1 << 16 {
                let mut out = vec![0f32; t.n_elements() as usize];
                dequantize(t.ty, data, &mut out);
            }
        }
    }

    let mut s = GgufStream::new(Some(bytes.len() as u64));
    let mut got = Vec::new();
    let mut streamed = Ok(());
    for c in bytes.chunks(chunk) {
        match s.push(c) {
            Ok(evs) => {
                for ev in evs {
                    if let StreamEvent::Tensor(i, data) = ev {
                        got.push((i, data));
                    }
                }
            }
            Err(e) => {
                streamed = Err(e);
                break;
            }
        }
    }
    if streamed.is_ok() {
        streamed = s.finish();
    }
    match (&whole, &streamed) {
        (Ok(f), Ok(())) => {
            assert_eq!(got.len(), f.header.tensors.len(), "stream emitted every tensor");
            for (i, data) in got {
                assert_eq!(data, f.tensor_data(&f.header.tensors[i]), "tensor {i} bytes");
            }
        }
        (Err(_), Err(_)) => {}
        (w, s) => panic!("whole and streamed parses disagree: {:?} vs {:?}", w.as_ref().err(), s),
    }
}

/// A whole engine from a hostile GGUF: header, tokenizer, model, and a few generated tokens.
pub fn gguf_engine(bytes: &[u8]) {
    let Ok(mut engine) = Engine::from_gguf_bytes(bytes, 32) else { return };
    let Ok(prompt) = engine.encode("Hi <s> there") else { return };
    let opts = GenerateOptions {
        max_tokens: 3,
        sampling: SamplingParams { seed: bytes.len() as u64, ..Default::default() },
        ..Default::default()
    };
    let _ = engine.generate(&prompt, &opts, &mut |_, _| true);
}

/// Two inputs in one: a u16 (LE) length, that many bytes (fewer if the input ends), the rest.
fn split_prefixed(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = input.split_first_chunk::<2>()?;
    Some(rest.split_at((u16::from_le_bytes(*len) as usize).min(rest.len())))
}

/// safetensors bytes and config.json, both hostile, through to a loaded model.
/// Layout: u16 (LE) length of the config, the config, then the safetensors file.
pub fn safetensors(input: &[u8]) {
    let Some((config, st)) = split_prefixed(input) else { return };
    let Ok(mut src) = SafetensorsSource::from_bytes(st, config) else { return };
    let _ = Model::load(&mut src);
}

/// A tokenizer built from hostile GGUF metadata, then hostile text encoded and decoded.
/// Layout: u16 (LE) length of the text, the text (lossy UTF-8), then a GGUF file (its header is
/// what counts; tensor data may be absent).
pub fn tokenizer(input: &[u8]) {
    let Some((text, gguf)) = split_prefixed(input) else { return };
    let text = String::from_utf8_lossy(text);
    let Ok(header) = GgufHeader::parse(gguf, None) else { return };
    let Ok(tok) = Tokenizer::from_gguf(&header) else { return };
    for special in [false, true] {
        if let Ok(ids) = tok.encode(&text, special) {
            let _ = tok.decode(&ids, special);
            for &id in &ids {
                assert!((id as usize) < tok.vocab_size(), "id {id} outside the vocabulary");
                let _ = tok.token_bytes(id, special);
                let _ = tok.is_eog(id);
            }
        }
    }
    // ids from outside the vocabulary are the caller's mistake, never a panic
    let _ = tok.decode(&[0, 1, u32::MAX, tok.vocab_size() as u32], true);
    let _ = tok.token_text(u32::MAX);
}

/// Hostile chat templates and hostile messages. Layout: NUL-separated parts, lossy UTF-8:
/// template, bos, eos, then messages as alternating role and content.
pub fn chat_template(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let mut parts = text.split('\0');
    let template = parts.next().unwrap_or_default();
    let bos = parts.next().unwrap_or("<s>");
    let eos = parts.next().unwrap_or("</s>");
    let rest: Vec<&str> = parts.collect();
    let messages: Vec<Message> =
        rest.chunks(2).map(|p| Message::new(p[0], p.get(1).unwrap_or(&""))).collect();
    let Ok(t) = ChatTemplate::new(Some(template), bos, eos) else { return };
    for gen in [false, true] {
        let _ = t.render(&messages, gen);
    }
}

/// Reads little-endian values off the front of the fuzzer's bytes (zeros once they run out).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    /// A length-prefixed slice (u8 length).
    fn slice(&mut self) -> &[u8] {
        let n = (self.u8() as usize).min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

/// The sampler with any options (NaN, infinities, huge windows) over any logits and history, and
/// the streamed-text decoder with any stop strings over any bytes.
pub fn sampler(data: &[u8]) {
    let mut b = Bytes(data);
    let params = SamplingParams {
        temperature: b.f32(),
        top_k: b.u32() as usize,
        top_p: b.f32(),
        min_p: b.f32(),
        repetition_penalty: b.f32(),
        repeat_last_n: b.u32() as usize,
        frequency_penalty: b.f32(),
        presence_penalty: b.f32(),
        seed: u64::from_le_bytes(b.take()),
    };
    let n_logits = b.u8() as usize;
    let logits: Vec<f32> = (0..n_logits).map(|_| b.f32()).collect();
    let n_history = b.u8() as usize;
    let history: Vec<u32> = (0..n_history).map(|_| b.u32() % 300).collect();
    let n_stops = b.u8() % 4;
    let stops: Vec<String> = (0..n_stops).map(|_| String::from_utf8_lossy(b.slice()).into_owned()).collect();

    if let Ok(mut s) = Sampler::new(params) {
        if !logits.is_empty() {
            let mut l = logits.clone();
            let id = s.sample(&mut l, &history);
            assert!((id as usize) < logits.len(), "sampled {id} of {}", logits.len());
        }
    }
    let mut d = StreamDecoder::new(&stops);
    let mut text = String::new();
    while !b.0.is_empty() {
        text += &d.push(b.slice());
    }
    text += &d.finish();
    for s in stops.iter().filter(|s| !s.is_empty()) {
        assert!(!text.contains(s.as_str()), "stop string {s:?} shown in {text:?}");
    }
}
