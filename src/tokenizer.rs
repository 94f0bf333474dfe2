//! Tokenizer: byte-level BPE built with the `tokenizers` crate from GGUF metadata
//! (`tokenizer.ggml.*`), from a `tokenizer.json`, or from GPT-2's `vocab.json` + `merges.txt`.
//!
//! Encoding goes through `tokenizers` (the same code runs on wasm with `unstable_wasm`), with the
//! pre-tokenizer chosen by `tokenizer.ggml.pre` as llama.cpp chooses its regexes. Control and
//! user-defined tokens are added tokens, so writing `<|im_start|>` in a prompt yields that token,
//! as llama.cpp's `parse_special` does. Decoding uses our own id → bytes table (the inverse of
//! GPT-2's byte ↔ unicode map) so streamed text can be cut only at UTF-8 character boundaries.

use crate::error::{Error, Result};
use crate::weights::Metadata;
use serde_json::{json, Value as Json};
use std::collections::HashSet;

/// GGUF `tokenizer.ggml.token_type` values.
const TOKEN_NORMAL: i64 = 1;
const TOKEN_UNKNOWN: i64 = 2;
const TOKEN_CONTROL: i64 = 3;
const TOKEN_USER_DEFINED: i64 = 4;

const LLAMA3_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Texts llama.cpp also treats as end-of-generation when they are control tokens.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<EOT>",
    "<|eom_id|>",
    "<|end_of_text|>",
];

pub struct Tokenizer {
    hf: tokenizers::Tokenizer,
    /// Bytes each id decodes to (empty for control tokens when decoding without specials).
    pieces: Vec<Vec<u8>>,
    /// Control tokens: hidden in decoded text.
    control: Vec<bool>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    eog: HashSet<u32>,
    pub chat_template: Option<String>,
}

/// GPT-2's reversible map from bytes to printable unicode characters.
pub(crate) fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable = (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        table[b as usize] = if printable {
            char::from_u32(b).unwrap_or('\0')
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\0')
        };
    }
    table
}

fn piece_bytes(token: &str, inverse: &std::collections::HashMap<char, u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(token.len());
    for ch in token.chars() {
        match inverse.get(&ch) {
            Some(&b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

fn pre_tokenizer(pre: &str) -> Result<(Json, bool)> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |re: &str| json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
    Ok(match pre {
        "gpt2" | "default" | "gpt-2" => (byte_level(true), false),
        "smollm" | "starcoder" | "refact" | "codeshell" => (
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
            false,
        ),
        "llama-bpe" | "llama3" | "llama-v3" => {
            (json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_REGEX), byte_level(false)]}), true)
        }
        "qwen2" | "deepseek-r1-qwen" => {
            (json!({"type": "Sequence", "pretokenizers": [split(QWEN2_REGEX), byte_level(false)]}), false)
        }
        other => {
            return Err(Error::Tokenizer(format!(
                "unsupported pre-tokenizer '{other}' (supported: gpt2, smollm, llama-bpe, qwen2)"
            )))
        }
    })
}

fn meta_u32(m: &dyn Metadata, key: &str) -> Option<u32> {
    m.get(key).and_then(|v| v.as_u64()).and_then(|v| u32::try_from(v).ok())
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes.
    pub fn from_gguf(m: &dyn Metadata) -> Result<Tokenizer> {
        let model = m.get("tokenizer.ggml.model").and_then(|v| v.as_str()).ok_or_else(|| {
            Error::Tokenizer("the file has no tokenizer (missing 'tokenizer.ggml.model')".into())
        })?;
        if model != "gpt2" {
            return Err(Error::Tokenizer(format!(
                "unsupported tokenizer model '{model}' (supported: gpt2 byte-level BPE)"
            )));
        }
        let strings = |key: &str| -> Result<Vec<String>> {
            let arr = m
                .get(key)
                .and_then(|v| v.as_array())
                .ok_or_else(|| Error::Tokenizer(format!("missing or non-array '{key}'")))?;
            arr.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| Error::Tokenizer(format!("'{key}' holds a non-string")))
                })
                .collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        if tokens.is_empty() || tokens.len() > 1 << 22 {
            return Err(Error::Tokenizer(format!("vocabulary of {} tokens", tokens.len())));
        }
        let merges = strings("tokenizer.ggml.merges")?;
        let types: Vec<i64> = match m.get("tokenizer.ggml.token_type").and_then(|v| v.as_array()) {
            Some(a) if a.len() == tokens.len() => {
                a.iter().map(|v| v.as_i64().unwrap_or(TOKEN_NORMAL)).collect()
            }
            Some(a) => {
                return Err(Error::Tokenizer(format!("{} token types for {} tokens", a.len(), tokens.len())));
            }
            None => vec![TOKEN_NORMAL; tokens.len()],
        };
        let pre = m.get("tokenizer.ggml.pre").and_then(|v| v.as_str()).unwrap_or("gpt2");
        let (pre_tok, ignore_merges) = pre_tokenizer(pre)?;

        // the BPE model is built directly (no JSON round trip: that doubled the peak memory of
        // a load for a 49k vocabulary)
        let mut vocab = tokenizers::models::bpe::Vocab::default();
        for (i, t) in tokens.iter().enumerate() {
            vocab.entry(t.clone()).or_insert(i as u32);
        }
        let pairs: Vec<(String, String)> = merges
            .iter()
            .map(|m| {
                m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).ok_or_else(|| {
                    Error::Tokenizer(format!("merge '{m}' is not two tokens separated by a space"))
                })
            })
            .collect::<Result<_>>()?;
        drop(merges);
        let bpe = tokenizers::models::bpe::BPE::builder()
            .vocab_and_merges(vocab, pairs)
            .ignore_merges(ignore_merges)
            .build()
            .map_err(|e| Error::Tokenizer(format!("building BPE from GGUF metadata: {e}")))?;
        let mut hf = tokenizers::Tokenizer::new(bpe);
        let pre: tokenizers::pre_tokenizers::PreTokenizerWrapper = serde_json::from_value(pre_tok)
            .map_err(|e| Error::Tokenizer(format!("pre-tokenizer '{pre}': {e}")))?;
        hf.with_pre_tokenizer(Some(pre));
        let added = |special: bool| -> Vec<tokenizers::AddedToken> {
            tokens
                .iter()
                .zip(&types)
                .filter(|(_, &ty)| {
                    if special {
                        matches!(ty, TOKEN_CONTROL | TOKEN_UNKNOWN)
                    } else {
                        ty == TOKEN_USER_DEFINED
                    }
                })
                .map(|(t, _)| {
                    tokenizers::AddedToken::from(t.clone(), special)
                        .single_word(false)
                        .lstrip(false)
                        .rstrip(false)
                        .normalized(false)
                })
                .collect()
        };
        hf.add_special_tokens(&added(true));
        hf.add_tokens(&added(false));
        let control: Vec<bool> = types.iter().map(|&t| t == TOKEN_CONTROL).collect();
        let n = tokens.len() as u32;
        let id = |key: &str| meta_u32(m, key).filter(|&i| i < n);
        let mut tok = Tokenizer::assemble(
            hf,
            &tokens,
            control,
            id("tokenizer.ggml.bos_token_id"),
            id("tokenizer.ggml.eos_token_id"),
        );
        tok.add_bos = m.get("tokenizer.ggml.add_bos_token").and_then(|v| v.as_bool()).unwrap_or(false);
        tok.add_eos = m.get("tokenizer.ggml.add_eos_token").and_then(|v| v.as_bool()).unwrap_or(false);
        for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let Some(i) = id(key) {
                tok.eog.insert(i);
            }
        }
        tok.chat_template = m.get("tokenizer.chat_template").and_then(|v| v.as_str()).map(str::to_string);
        Ok(tok)
    }

    /// Builds from a Hugging Face `tokenizer.json` (byte-level BPE models).
    pub fn from_tokenizer_json(bytes: &[u8]) -> Result<Tokenizer> {
        let hf = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Tokenizer(format!("tokenizer.json: {e}")))?;
        let n = hf.get_vocab_size(true);
        let mut tokens = vec![String::new(); n];
        for (t, i) in hf.get_vocab(true) {
            if let Some(slot) = tokens.get_mut(i as usize) {
                *slot = t;
            }
        }
        let mut control = vec![false; n];
        for (i, t) in hf.get_added_tokens_decoder() {
            if t.special {
                if let Some(c) = control.get_mut(i as usize) {
                    *c = true;
                }
            }
        }
        let find = |s: &str| hf.token_to_id(s);
        let eos = find("<|endoftext|>").or_else(|| find("</s>"));
        let bos = find("<s>").or(eos);
        Ok(Tokenizer::assemble(hf, &tokens, control, bos, eos))
    }

    /// Builds GPT-2's tokenizer from `vocab.json` (or `encoder.json`) and `merges.txt` (`vocab.bpe`).
    pub fn from_gpt2_files(vocab_json: &[u8], merges_txt: &str) -> Result<Tokenizer> {
        let vocab: serde_json::Map<String, Json> =
            serde_json::from_slice(vocab_json).map_err(|e| Error::Tokenizer(format!("vocab.json: {e}")))?;
        let merges: Vec<&str> =
            merges_txt.lines().filter(|l| !l.starts_with("#version") && !l.trim().is_empty()).collect();
        let eot = vocab.get("<|endoftext|>").and_then(|v| v.as_u64());
        let added: Vec<Json> = eot
            .map(|i| {
                vec![json!({"id": i, "content": "<|endoftext|>", "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})]
            })
            .unwrap_or_default();
        let (pre, _) = pre_tokenizer("gpt2")?;
        let spec = json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
            "normalizer": null, "pre_tokenizer": pre, "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": merges}
        });
        Tokenizer::from_tokenizer_json(spec.to_string().as_bytes())
    }

    fn assemble(
        hf: tokenizers::Tokenizer,
        tokens: &[String],
        control: Vec<bool>,
        bos: Option<u32>,
        eos: Option<u32>,
    ) -> Tokenizer {
        let fwd = byte_to_char();
        let inverse: std::collections::HashMap<char, u8> =
            fwd.iter().enumerate().map(|(b, &c)| (c, b as u8)).collect();
        let pieces = tokens
            .iter()
            .zip(&control)
            .map(|(t, &c)| if c { t.as_bytes().to_vec() } else { piece_bytes(t, &inverse) })
            .collect();
        let mut eog: HashSet<u32> = eos.into_iter().collect();
        for (i, (t, &c)) in tokens.iter().zip(&control).enumerate() {
            if c && EOG_TEXTS.contains(&t.as_str()) {
                eog.insert(i as u32);
            }
        }
        Tokenizer { hf, pieces, control, bos, eos, add_bos: false, add_eos: false, eog, chat_template: None }
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// Token ids of `text`; special-token texts in it become those tokens. With `add_special`,
    /// BOS/EOS are added where the model asks for them.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let enc = self.hf.encode(text, false).map_err(|e| Error::Tokenizer(format!("encoding: {e}")))?;
        let mut ids = Vec::with_capacity(enc.get_ids().len() + 2);
        if add_special && self.add_bos {
            ids.extend(self.bos);
        }
        ids.extend_from_slice(enc.get_ids());
        if add_special && self.add_eos {
            ids.extend(self.eos);
        }
        Ok(ids)
    }

    /// The bytes token `id` stands for; control tokens give nothing unless `special`.
    pub fn token_bytes(&self, id: u32, special: bool) -> &[u8] {
        let i = id as usize;
        match self.pieces.get(i) {
            Some(p) if special || !self.control[i] => p,
            _ => &[],
        }
    }

    /// Text of `ids` (invalid UTF-8 replaced), control tokens shown only when `special`.
    pub fn decode(&self, ids: &[u32], special: bool) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|&i| self.token_bytes(i, special).iter().copied()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    pub fn eog_tokens(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.eog.iter().copied().collect();
        v.sort();
        v
    }

    pub fn token_text(&self, id: u32) -> Option<String> {
        self.pieces.get(id as usize).map(|p| String::from_utf8_lossy(p).into_owned())
    }
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({} tokens)", self.pieces.len())
    }
}
