//! Tokenizer: byte-level BPE built with the `tokenizers` crate from GGUF metadata
//! (`tokenizer.ggml.*`), from a `tokenizer.json`, or from GPT-2's `vocab.json` + `merges.txt`;
//! and SentencePiece (GGUF tokenizer model `llama`, [`spm`]), which is not a `tokenizers` model
//! llama.cpp's way (scores, not merges, drive it), so it is our own code behind the same type, as
//! is Gemma 4's `gemma4` model (the same loop with merge ranks, on raw UTF-8).
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

mod spm;

// GGUF `tokenizer.ggml.token_type` values
use spm::{
    TYPE_CONTROL as TOKEN_CONTROL, TYPE_NORMAL as TOKEN_NORMAL, TYPE_UNKNOWN as TOKEN_UNKNOWN,
    TYPE_USER_DEFINED as TOKEN_USER_DEFINED,
};

/// Largest vocabulary a file may declare (Gemma's is 262,144).
const MAX_VOCAB: usize = 1 << 22;

const LLAMA3_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT2_REGEX: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// llama.cpp's regexes for these pre-tokenizers are applied one after another, each splitting
/// the pieces the previous one left (a `Sequence` of isolating `Split`s does the same).
const FALCON_REGEXES: &[&str] = &["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2_REGEX, "[0-9][0-9][0-9]"];
/// Non-ASCII characters as escapes: some of them (the Kelvin sign, Greek with oxia) have
/// canonical equivalents an editor may silently substitute, which would change the ranges.
const DEEPSEEK_CODER_REGEXES: &[&str] = &[
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+",
    "\\p{N}",
];
const DEEPSEEK_LLM_REGEXES: &[&str] = &[
    "[\r\n]",
    "\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+",
    "\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+",
    "\\s+$",
    "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+",
    "\\p{N}+",
];
const QWEN2_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Texts llama.cpp (the loader of llama-cpp-python 0.3.36) treats as end-of-generation whatever
/// the token's type, making such a token a control token too (hidden when decoding without
/// specials): Gemma 3's user-defined `</s>` is one. Two exceptions follow in [`Tokenizer::assemble`].
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
    "[e~[",
];

/// What turns text into ids.
enum Model {
    /// Byte-level BPE through the `tokenizers` crate.
    Hf(Box<tokenizers::Tokenizer>),
    /// SentencePiece as llama.cpp runs it.
    Spm(Box<spm::Spm>),
}

pub struct Tokenizer {
    model: Model,
    /// Bytes each id decodes to (empty for control tokens when decoding without specials).
    pieces: Vec<Vec<u8>>,
    /// Control tokens (and SentencePiece's unknown token): hidden in decoded text unless asked.
    control: Vec<bool>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    eog: HashSet<u32>,
    pub chat_template: Option<String>,
    /// `decode` drops one leading space of the first token (SentencePiece's `add_space_prefix`
    /// put it there), as llama.cpp's detokenizer does.
    strip_leading_space: bool,
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

/// Bytes of each byte-level BPE token (the inverse of GPT-2's byte ↔ unicode map); control
/// tokens as written.
fn byte_level_pieces(tokens: &[String], control: &[bool]) -> Vec<Vec<u8>> {
    let fwd = byte_to_char();
    let inverse: std::collections::HashMap<char, u8> =
        fwd.iter().enumerate().map(|(b, &c)| (c, b as u8)).collect();
    tokens
        .iter()
        .zip(control)
        .map(|(t, &c)| if c { t.as_bytes().to_vec() } else { piece_bytes(t, &inverse) })
        .collect()
}

fn pre_tokenizer(pre: &str) -> Result<(Json, bool)> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |re: &str| json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
    Ok(match pre {
        "gpt2" | "default" | "gpt-2" | "mpt" => (byte_level(true), false),
        "smollm" | "starcoder" | "refact" | "codeshell" | "command-r" => (
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
        "qwen35" => {
            (json!({"type": "Sequence", "pretokenizers": [split(QWEN35_REGEX), byte_level(false)]}), false)
        }
        "falcon" | "deepseek-coder" | "deepseek-llm" => {
            let regexes = match pre {
                "falcon" => FALCON_REGEXES,
                "deepseek-coder" => DEEPSEEK_CODER_REGEXES,
                _ => DEEPSEEK_LLM_REGEXES,
            };
            let mut seq: Vec<Json> = regexes.iter().map(|r| split(r)).collect();
            seq.push(byte_level(false));
            (json!({"type": "Sequence", "pretokenizers": seq}), false)
        }
        other => {
            return Err(Error::Tokenizer(format!(
                "unsupported pre-tokenizer '{other}' (supported: gpt2, mpt, smollm, starcoder, refact, \
                 command-r, llama-bpe, qwen2, qwen35, falcon, deepseek-llm, deepseek-coder)"
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
        if !matches!(model, "gpt2" | "llama" | "gemma4") {
            return Err(Error::Tokenizer(format!(
                "unsupported tokenizer model '{model}' (supported: gpt2 byte-level BPE, llama SentencePiece, \
                 gemma4 BPE)"
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
        if tokens.is_empty() || tokens.len() > MAX_VOCAB {
            return Err(Error::Tokenizer(format!("vocabulary of {} tokens", tokens.len())));
        }
        let types: Vec<i64> = match m.get("tokenizer.ggml.token_type").and_then(|v| v.as_array()) {
            Some(a) if a.len() == tokens.len() => {
                a.iter().map(|v| v.as_i64().unwrap_or(TOKEN_NORMAL)).collect()
            }
            Some(a) => {
                return Err(Error::Tokenizer(format!("{} token types for {} tokens", a.len(), tokens.len())));
            }
            None => vec![TOKEN_NORMAL; tokens.len()],
        };
        if model == "llama" {
            return Tokenizer::spm_from_gguf(m, tokens, types, None);
        }
        let merges = strings("tokenizer.ggml.merges")?;
        if model == "gemma4" {
            // a merge is split at its first space after the first character, as llama.cpp does;
            // the first listing of a pair gives its rank
            let mut ranks = spm::Ranks::new();
            for (rank, merge) in merges.iter().enumerate() {
                let at = merge.char_indices().skip(1).find(|&(_, c)| c == ' ').map(|(i, _)| i);
                if let Some(at) = at {
                    let (a, b) = (&merge[..at], &merge[at + 1..]);
                    ranks.entry(a.to_string()).or_default().entry(b.to_string()).or_insert(rank as u32);
                }
            }
            drop(merges);
            return Tokenizer::spm_from_gguf(m, tokens, types, Some(ranks));
        }
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
        let mut hf = Box::new(tokenizers::Tokenizer::new(bpe));
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
        let pieces = byte_level_pieces(&tokens, &control);
        let tok = Tokenizer::assemble(
            Model::Hf(hf),
            pieces,
            &tokens,
            control,
            id("tokenizer.ggml.bos_token_id"),
            id("tokenizer.ggml.eos_token_id"),
        );
        Ok(tok.with_gguf_flags(m, false))
    }

    /// The `llama` tokenizer model: SentencePiece, as llama.cpp runs it. Without the keys, BOS is
    /// 1, EOS 2, unknown 0, BOS is added and a space is put before the text (llama.cpp's defaults
    /// for this model). With `ranks`, Gemma 4's `gemma4` model: the same with BPE merges, no
    /// default ids, no space prefix unless the file asks, and BOS always added (llama.cpp
    /// overrides a file that says otherwise).
    fn spm_from_gguf(
        m: &dyn Metadata,
        mut tokens: Vec<String>,
        types: Vec<i64>,
        ranks: Option<spm::Ranks>,
    ) -> Result<Tokenizer> {
        let n = tokens.len();
        let spm = ranks.is_none();
        let scores: Vec<f32> = match m.get("tokenizer.ggml.scores").and_then(|v| v.as_array()) {
            _ if !spm => Vec::new(),
            Some(a) if a.len() >= n => a.iter().take(n).map(|v| v.as_f64().unwrap_or(0.0) as f32).collect(),
            Some(a) => return Err(Error::Tokenizer(format!("{} scores for {n} tokens", a.len()))),
            None => vec![0.0; n],
        };
        // an empty text would match everywhere; llama.cpp renames them so
        for (i, t) in tokens.iter_mut().enumerate() {
            if t.is_empty() {
                *t = format!("[EMPTY_{i}]");
            }
        }
        let id = |key: &str, default: u32| match m.get(key) {
            Some(v) => v.as_u64().and_then(|v| u32::try_from(v).ok()).filter(|&i| (i as usize) < n),
            None => Some(default).filter(|&i| spm && (i as usize) < n),
        };
        let unk = id("tokenizer.ggml.unknown_token_id", 0);
        let add_space_prefix =
            m.get("tokenizer.ggml.add_space_prefix").and_then(|v| v.as_bool()).unwrap_or(spm);
        // llama.cpp drops the whitespace after Phi-3's special tokens, keyed on the model's name
        // (nothing in the vocabulary says so), except after these three
        let name = m.get("general.name").and_then(|v| v.as_str()).unwrap_or("").to_lowercase();
        let phi3 = name.contains("phi-3") || name.contains("phi3");
        let rstrip = |t: &str| phi3 && !matches!(t, "<unk>" | "<s>" | "<|endoftext|>");
        let model = spm::Spm::new(&tokens, scores, ranks, &types, unk, add_space_prefix, &rstrip);
        let pieces: Vec<Vec<u8>> = tokens.iter().zip(&types).map(|(t, &ty)| spm::piece(t, ty)).collect();
        // control and unknown tokens are hidden in decoded text unless asked for
        let control: Vec<bool> = types.iter().map(|&t| t == TOKEN_CONTROL || t == TOKEN_UNKNOWN).collect();
        let mut tok = Tokenizer::assemble(
            Model::Spm(Box::new(model)),
            pieces,
            &tokens,
            control,
            id("tokenizer.ggml.bos_token_id", 1),
            id("tokenizer.ggml.eos_token_id", 2),
        );
        tok.strip_leading_space = add_space_prefix;
        let mut tok = tok.with_gguf_flags(m, true);
        tok.add_bos |= !spm;
        Ok(tok)
    }

    /// `add_bos_token` / `add_eos_token` (defaults: the model's), end-of-turn tokens and the
    /// chat template, the same keys for every tokenizer model.
    fn with_gguf_flags(mut self, m: &dyn Metadata, add_bos_default: bool) -> Tokenizer {
        let n = self.pieces.len() as u32;
        let flag = |key: &str, default: bool| m.get(key).and_then(|v| v.as_bool()).unwrap_or(default);
        self.add_bos = flag("tokenizer.ggml.add_bos_token", add_bos_default);
        self.add_eos = flag("tokenizer.ggml.add_eos_token", false);
        for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let Some(i) = meta_u32(m, key).filter(|&i| i < n) {
                self.eog.insert(i);
            }
        }
        self.chat_template = m.get("tokenizer.chat_template").and_then(|v| v.as_str()).map(str::to_string);
        self
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
        let pieces = byte_level_pieces(&tokens, &control);
        Ok(Tokenizer::assemble(Model::Hf(Box::new(hf)), pieces, &tokens, control, bos, eos))
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
        model: Model,
        mut pieces: Vec<Vec<u8>>,
        tokens: &[String],
        mut control: Vec<bool>,
        bos: Option<u32>,
        eos: Option<u32>,
    ) -> Tokenizer {
        let mut eog: HashSet<u32> = eos.into_iter().collect();
        // the id of each end-of-generation text (the last, as llama.cpp's text-to-id map keeps)
        let mut by_text: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, t) in tokens.iter().enumerate() {
            if EOG_TEXTS.contains(&t.as_str()) {
                by_text.insert(t.as_str(), i);
            }
        }
        for (&t, &i) in &by_text {
            eog.insert(i as u32);
            if !control[i] {
                control[i] = true;
                pieces[i] = t.as_bytes().to_vec(); // a control token's text, as written
            }
        }
        let has = |t: &str| by_text.contains_key(t);
        // o200k_harmony and solar-open: `<|end|>` ends a message, not the generation
        if let Some(&end) = by_text.get("<|end|>") {
            if (has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>")) {
                eog.remove(&(end as u32));
                control[end] = false;
            }
        }
        // Gemma 4 and PLaMo: `</s>` is a normal token there
        if let Some(&s) = by_text.get("</s>") {
            let marker = |&i: &u32| {
                matches!(
                    tokens.get(i as usize).map(String::as_str),
                    Some("<|tool_response>" | "<|plamo:eos|>")
                )
            };
            if eog.iter().any(marker) {
                eog.remove(&(s as u32));
                control[s] = false;
            }
        }
        Tokenizer {
            model,
            pieces,
            control,
            bos,
            eos,
            add_bos: false,
            add_eos: false,
            eog,
            chat_template: None,
            strip_leading_space: false,
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// Token ids of `text`; special-token texts in it become those tokens. With `add_special`,
    /// BOS/EOS are added where the model asks for them.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if add_special && self.add_bos {
            ids.extend(self.bos);
        }
        match &self.model {
            Model::Hf(hf) => {
                let enc = hf.encode(text, false).map_err(|e| Error::Tokenizer(format!("encoding: {e}")))?;
                ids.extend_from_slice(enc.get_ids());
            }
            Model::Spm(spm) => spm.encode(text, &mut ids)?,
        }
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

    /// Text of `ids` (invalid UTF-8 replaced), control tokens shown only when `special`. For
    /// SentencePiece with `add_space_prefix`, the space the encoder put before the text is
    /// dropped from the first token, as llama.cpp's `llama_detokenize` does (streamed text keeps
    /// it: there the tokens follow a prompt).
    pub fn decode(&self, ids: &[u32], special: bool) -> String {
        let mut bytes: Vec<u8> = Vec::new();
        for (k, &i) in ids.iter().enumerate() {
            let piece = self.token_bytes(i, special);
            let piece = match piece.split_first() {
                Some((b' ', rest)) if k == 0 && self.strip_leading_space => rest,
                _ => piece,
            };
            bytes.extend_from_slice(piece);
        }
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
