//! The `llama` tokenizer model of GGUF files: SentencePiece's BPE variant as llama.cpp runs it
//! (`llm_tokenizer_spm`), used by Llama 2, Mistral, TinyLlama, Phi-3 and Gemma.
//!
//! There are no merge rules: merges are driven by `tokenizer.ggml.scores`. The text is cut into
//! UTF-8 characters and, repeatedly, the adjacent pair whose concatenation is a vocabulary token
//! with the highest score is merged (leftmost on ties, as llama.cpp's bigram priority queue
//! orders them). A final symbol that is not a token falls back to `<0xNN>` byte tokens, so any
//! text encodes. Before that, control, unknown and user-defined token texts are cut out of the
//! text as whole tokens (llama.cpp's special-token partitioning, longest first), spaces become
//! `▁` (U+2581), and with `add_space_prefix` a space is put before text that starts the prompt or
//! follows a special token.
//!
//! Gemma 4's tokenizer model (`gemma4`) is the same machinery with merge ranks instead of scores:
//! llama.cpp runs it as a BPE over raw UTF-8 with spaces as `▁`, the text cut into runs of
//! newlines and runs of anything else (a run of newlines that is a token is taken whole), the
//! lowest-ranked `tokenizer.ggml.merges` pair merged first, and `<0xNN>` byte fallback.
//!
//! Written from llama.cpp's behaviour, not its code: symbols are byte ranges of the text (always
//! whole characters, since the input is a `&str`), and the queue is std's `BinaryHeap`.

use crate::error::{Error, Result};
use std::collections::{BinaryHeap, HashMap};

/// GGUF `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
pub(super) const TYPE_NORMAL: i64 = 1;
pub(super) const TYPE_UNKNOWN: i64 = 2;
pub(super) const TYPE_CONTROL: i64 = 3;
pub(super) const TYPE_USER_DEFINED: i64 = 4;
pub(super) const TYPE_BYTE: i64 = 6;

/// `▁`, SentencePiece's visible space.
const SPACE: &str = "\u{2581}";

pub(crate) struct Spm {
    /// Token text → id; a text listed twice maps to its last id, as llama.cpp's map does.
    ids: HashMap<String, u32>,
    scores: Vec<f32>,
    /// Gemma 4: merge ranks (left → right → rank) drive the merges instead of the scores.
    ranks: Option<Ranks>,
    /// The token each byte falls back to (`<0xNN>`, else for SentencePiece the byte itself as a
    /// token).
    byte_tokens: [Option<u32>; 256],
    unk: Option<u32>,
    /// Control, unknown and user-defined tokens, longest text first: matched in the text, with
    /// whether whitespace after one is dropped (llama.cpp's RSTRIP attribute).
    specials: Vec<(String, u32, bool)>,
    pub(super) add_space_prefix: bool,
}

/// Whitespace as C's `isspace` sees it (what llama.cpp's RSTRIP drops).
fn c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// BPE merge ranks, nested so a lookup borrows the two symbols' texts.
pub(super) type Ranks = HashMap<String, HashMap<String, u32>>;

/// A run of the text: either still text to tokenize, or a special token cut out of it.
enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge of the symbols `left` and `left`'s successor; `len` tells a stale entry
/// (one of the two has changed since) from a live one.
struct Bigram {
    score: f32,
    rank: u32,
    left: usize,
    right: usize,
    len: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == std::cmp::Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Bigram {
    /// Highest score (SentencePiece) or lowest rank (BPE) first, then leftmost (`total_cmp`: a
    /// NaN score from a hostile file orders instead of panicking).
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.score.total_cmp(&o.score).then(o.rank.cmp(&self.rank)).then(o.left.cmp(&self.left))
    }
}

impl Spm {
    /// `tokens` (empty texts already renamed, as llama.cpp does), their `scores` and `types`.
    pub(super) fn new(
        tokens: &[String],
        scores: Vec<f32>,
        ranks: Option<Ranks>,
        types: &[i64],
        unk: Option<u32>,
        add_space_prefix: bool,
        rstrip: &dyn Fn(&str) -> bool,
    ) -> Spm {
        let mut ids = HashMap::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            ids.insert(t.clone(), i as u32);
        }
        let mut byte_tokens = [None; 256];
        for (b, slot) in byte_tokens.iter_mut().enumerate() {
            *slot = ids.get(&format!("<0x{b:02X}>")).copied().or_else(|| {
                // only ASCII bytes are a string of their own
                let spm = ranks.is_none() && b < 128;
                spm.then(|| ids.get(&(b as u8 as char).to_string()).copied()).flatten()
            });
        }
        let mut specials: Vec<(String, u32, bool)> = tokens
            .iter()
            .zip(types)
            .enumerate()
            .filter(|(_, (_, &ty))| matches!(ty, TYPE_CONTROL | TYPE_UNKNOWN | TYPE_USER_DEFINED))
            .map(|(i, (t, _))| (t.clone(), i as u32, rstrip(t)))
            .collect();
        specials.sort_by_key(|(t, _, _)| std::cmp::Reverse(t.len()));
        Spm { ids, scores, ranks, byte_tokens, unk, specials, add_space_prefix }
    }

    /// Token ids of `text` (no BOS/EOS: the caller adds those).
    pub(super) fn encode(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let mut prev_special = true; // the start of the prompt counts as after a special token
        for fragment in self.partition(text) {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Fragment::Text(t) => {
                    let mut s = String::with_capacity(t.len() + 3);
                    if self.add_space_prefix && prev_special {
                        s.push(' ');
                    }
                    s.push_str(t);
                    let s = s.replace(' ', SPACE);
                    if self.ranks.is_none() {
                        self.tokenize(&s, out)?;
                    } else {
                        for run in newline_runs(&s) {
                            match self.ids.get(run) {
                                Some(&id) if run.starts_with('\n') => out.push(id),
                                _ => self.tokenize(run, out)?,
                            }
                        }
                    }
                    prev_special = false;
                }
            }
        }
        Ok(())
    }

    /// Cuts every special token's text out of `text`, longest tokens first.
    fn partition<'a>(&self, text: &'a str) -> Vec<Fragment<'a>> {
        let mut frags = if text.is_empty() { vec![] } else { vec![Fragment::Text(text)] };
        for (special, id, rstrip) in &self.specials {
            if !frags.iter().any(|f| matches!(f, Fragment::Text(t) if t.contains(special.as_str()))) {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                match f {
                    Fragment::Text(mut t) => {
                        while let Some(at) = t.find(special.as_str()) {
                            if at > 0 {
                                next.push(Fragment::Text(&t[..at]));
                            }
                            next.push(Fragment::Token(*id));
                            t = &t[at + special.len()..];
                            if *rstrip {
                                t = t.trim_start_matches(c_space);
                            }
                        }
                        if !t.is_empty() {
                            next.push(Fragment::Text(t));
                        }
                    }
                    token => next.push(token),
                }
            }
            frags = next;
        }
        frags
    }

    /// The bigram merge loop on one text run (spaces already `▁`).
    fn tokenize(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (start, ch) in text.char_indices() {
            let i = symbols.len();
            symbols.push(Symbol { start, len: ch.len_utf8(), prev: i.checked_sub(1), next: Some(i + 1) });
        }
        if let Some(last) = symbols.last_mut() {
            last.next = None;
        }
        let mut queue = BinaryHeap::new();
        let bigram = |symbols: &[Symbol], left: Option<usize>, right: Option<usize>| -> Option<Bigram> {
            let (l, r) = (symbols[left?], symbols[right?]);
            let piece = &text[l.start..r.start + r.len];
            let (score, rank) = match &self.ranks {
                Some(ranks) => {
                    let (a, b) = (&text[l.start..l.start + l.len], &text[r.start..r.start + r.len]);
                    (0.0, *ranks.get(a)?.get(b)?)
                }
                None => (self.scores.get(*self.ids.get(piece)? as usize).copied().unwrap_or(0.0), 0),
            };
            Some(Bigram { score, rank, left: left?, right: right?, len: piece.len() })
        };
        for i in 1..symbols.len() {
            queue.extend(bigram(&symbols, Some(i - 1), Some(i)));
        }
        while let Some(b) = queue.pop() {
            let (l, r) = (symbols[b.left], symbols[b.right]);
            if l.len == 0 || r.len == 0 || l.len + r.len != b.len {
                continue; // one side was merged since this pair was queued
            }
            symbols[b.left].len += r.len;
            symbols[b.right].len = 0;
            symbols[b.left].next = r.next;
            if let Some(n) = r.next {
                symbols[n].prev = Some(b.left);
            }
            queue.extend(bigram(&symbols, symbols[b.left].prev, Some(b.left)));
            queue.extend(bigram(&symbols, Some(b.left), symbols[b.left].next));
        }
        let mut at = if symbols.is_empty() { None } else { Some(0) };
        while let Some(i) = at {
            let s = symbols[i];
            let piece = &text[s.start..s.start + s.len];
            match self.ids.get(piece) {
                Some(&id) => out.push(id),
                None if self.ranks.is_some() => {
                    // llama.cpp's BPE drops a byte that has no <0xNN> token
                    out.extend(piece.bytes().filter_map(|b| self.byte_tokens[b as usize]));
                }
                None => {
                    for &byte in piece.as_bytes() {
                        let id = self.byte_tokens[byte as usize].or(self.unk).ok_or_else(|| {
                            Error::Tokenizer(format!(
                                "byte 0x{byte:02X} of '{piece}' has no <0x{byte:02X}> token and the \
                                 vocabulary has no unknown token"
                            ))
                        })?;
                        out.push(id);
                    }
                }
            }
            at = s.next;
        }
        Ok(())
    }
}

/// `text` cut into runs of newlines and runs of anything else (llama.cpp's `[^\n]+|[\n]+`).
fn newline_runs(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let len = rest.find(|c: char| (c == '\n') != (first == '\n')).unwrap_or(rest.len());
        let (run, tail) = rest.split_at(len);
        rest = tail;
        Some(run)
    })
}

/// The bytes token `text` of GGUF type `ty` decodes to, as llama.cpp's `token_to_piece` gives
/// them: normal tokens with `▁` as space, byte tokens as their byte, control/unknown/user-defined
/// tokens as written (the caller hides control and unknown ones), unused ones as nothing.
pub(super) fn piece(text: &str, ty: i64) -> Vec<u8> {
    match ty {
        TYPE_NORMAL => text.replace(SPACE, " ").into_bytes(),
        TYPE_CONTROL | TYPE_UNKNOWN | TYPE_USER_DEFINED => text.as_bytes().to_vec(),
        TYPE_BYTE => text
            .strip_prefix("<0x")
            .and_then(|h| h.get(..2))
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map(|b| vec![b])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::gguf::Value;
    use crate::sampling::StreamDecoder;
    use crate::tokenizer::Tokenizer;
    use std::collections::HashMap;

    /// A hand-made SentencePiece vocabulary: (text, score, type).
    fn vocab(extra: &[(&str, f32, i64)], add_space_prefix: Option<bool>) -> Tokenizer {
        let mut v: Vec<(String, f32, i64)> =
            vec![("<unk>".into(), 0.0, 2), ("<s>".into(), 0.0, 3), ("</s>".into(), 0.0, 3)];
        v.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), 0.0, 6)));
        v.extend(extra.iter().map(|&(t, s, ty)| (t.to_string(), s, ty)));
        let mut m: HashMap<String, Value> = HashMap::new();
        m.insert("tokenizer.ggml.model".into(), Value::String("llama".into()));
        m.insert(
            "tokenizer.ggml.tokens".into(),
            Value::Array(v.iter().map(|t| Value::String(t.0.clone())).collect()),
        );
        m.insert("tokenizer.ggml.scores".into(), Value::Array(v.iter().map(|t| Value::F32(t.1)).collect()));
        m.insert(
            "tokenizer.ggml.token_type".into(),
            Value::Array(v.iter().map(|t| Value::I32(t.2 as i32)).collect()),
        );
        if let Some(p) = add_space_prefix {
            m.insert("tokenizer.ggml.add_space_prefix".into(), Value::Bool(p));
        }
        Tokenizer::from_gguf(&m).unwrap()
    }

    /// The id of the `i`-th extra token.
    fn x(i: u32) -> u32 {
        3 + 256 + i
    }

    const N: i64 = 1; // normal

    #[test]
    fn bos_eos_and_defaults_are_llamas() {
        let t = vocab(&[("▁a", -1.0, N)], None);
        assert_eq!((t.bos, t.eos, t.add_bos, t.add_eos), (Some(1), Some(2), true, false));
        assert_eq!(t.encode("a", true).unwrap(), [1, x(0)], "BOS, then ▁a: a space is put before the text");
        assert_eq!(t.decode(&[1, x(0)], false), " a", "after BOS the space stays, as llama.cpp decodes");
        assert_eq!(t.decode(&[x(0)], false), "a", "the prefix space is dropped from the first token");
        assert!(t.is_eog(2));
    }

    #[test]
    fn higher_score_merges_first_and_ties_go_leftmost() {
        // ab and bc both tokens: the higher score wins
        let t = vocab(
            &[("a", -5.0, N), ("b", -5.0, N), ("c", -5.0, N), ("ab", -2.0, N), ("bc", -1.0, N)],
            Some(false),
        );
        assert_eq!(t.encode("abc", false).unwrap(), [x(0), x(4)]);
        // equal scores: the leftmost pair merges first
        let t = vocab(
            &[("a", -5.0, N), ("b", -5.0, N), ("c", -5.0, N), ("ab", -1.0, N), ("bc", -1.0, N)],
            Some(false),
        );
        assert_eq!(t.encode("abc", false).unwrap(), [x(3), x(2)]);
        // merges continue on merged symbols: abc from ab + c
        let t = vocab(
            &[("a", -5.0, N), ("b", -5.0, N), ("c", -5.0, N), ("ab", -1.0, N), ("abc", -3.0, N)],
            Some(false),
        );
        assert_eq!(t.encode("abc", false).unwrap(), [x(4)]);
    }

    #[test]
    fn characters_not_in_the_vocabulary_fall_back_to_bytes() {
        let t = vocab(&[("▁", -1.0, N), ("a", -2.0, N)], None);
        // é is C3 A9; the byte tokens are ids 3 + byte
        assert_eq!(t.encode("aé", false).unwrap(), [x(0), x(1), 3 + 0xC3, 3 + 0xA9]);
        assert_eq!(t.decode(&[3 + 0xC3, 3 + 0xA9], false), "é");
    }

    #[test]
    fn without_add_space_prefix_no_space_is_added() {
        let t = vocab(&[("▁", -1.0, N), ("a", -2.0, N), ("b", -2.0, N), ("▁b", -1.5, N)], Some(false));
        assert_eq!(t.encode("a b", false).unwrap(), [x(1), x(3)]);
        assert_eq!(t.decode(&[x(1), x(3)], false), "a b");
        let t =
            vocab(&[("▁", -1.0, N), ("a", -2.0, N), ("b", -2.0, N), ("▁b", -1.5, N), ("▁a", -1.5, N)], None);
        assert_eq!(t.encode("a b", false).unwrap(), [x(4), x(3)]);
    }

    #[test]
    fn control_and_user_defined_tokens_in_the_text_are_single_tokens() {
        let t = vocab(
            &[("▁", -1.0, N), ("a", -2.0, N), ("▁a", -1.5, N), ("<start_of_turn>", 0.0, 3), ("[U]", 0.0, 4)],
            None,
        );
        // after a special token the space prefix is added again, as llama.cpp does
        assert_eq!(t.encode("<s>a</s>a", false).unwrap(), [1, x(2), 2, x(2)]);
        assert_eq!(t.encode("a<start_of_turn>[U]", false).unwrap(), [x(2), x(3), x(4)]);
        // control tokens are hidden in decoded text unless asked for; user-defined ones are text
        assert_eq!(t.decode(&[x(2), x(3), x(4)], false), "a[U]");
        assert_eq!(t.decode(&[x(2), x(3), x(4)], true), "a<start_of_turn>[U]");
    }

    #[test]
    fn byte_tokens_split_across_a_character_stream_as_one_character() {
        let t = vocab(&[("a", -2.0, N)], Some(false));
        // € is E2 82 AC: three byte tokens
        let ids = t.encode("a€", false).unwrap();
        assert_eq!(ids, [x(0), 3 + 0xE2, 3 + 0x82, 3 + 0xAC]);
        let mut d = StreamDecoder::new(&[]);
        let pieces: Vec<String> = ids.iter().map(|&i| d.push(t.token_bytes(i, false))).collect();
        assert_eq!(pieces, ["a", "", "", "€"]);
    }

    #[test]
    fn hostile_metadata_does_not_panic() {
        // NaN scores, an empty token, no byte tokens and no unknown token
        let mut m: HashMap<String, Value> = HashMap::new();
        let s = |x: &str| Value::String(x.into());
        m.insert("tokenizer.ggml.model".into(), s("llama"));
        m.insert("tokenizer.ggml.tokens".into(), Value::Array(vec![s("a"), s(""), s("aa"), s("aaa")]));
        m.insert("tokenizer.ggml.scores".into(), Value::Array(vec![Value::F32(f32::NAN); 4]));
        m.insert("tokenizer.ggml.unknown_token_id".into(), Value::U32(99));
        m.insert("tokenizer.ggml.add_space_prefix".into(), Value::Bool(false));
        let t = Tokenizer::from_gguf(&m).unwrap();
        assert!(t.encode("aaaaa", false).is_ok());
        let e = t.encode("b", false).unwrap_err().to_string();
        assert!(e.contains("no <0x62> token"), "{e}");
        m.insert("tokenizer.ggml.scores".into(), Value::Array(vec![Value::F32(0.0); 2]));
        let e = Tokenizer::from_gguf(&m).unwrap_err().to_string();
        assert!(e.contains("2 scores for 4 tokens"), "{e}");
    }

    #[test]
    fn gemma4_merges_by_rank_keeps_newline_runs_whole_and_adds_bos() {
        let s = |x: &str| Value::String(x.into());
        let toks = ["<pad>", "<bos>", "<0x0A>", "<0xC3>", "<0xA9>", "a", "b", "▁", "ab", "▁a", "\n\n", "▁ab"];
        let types: Vec<Value> = toks
            .iter()
            .map(|t| {
                Value::I32(if t.starts_with("<0x") {
                    6
                } else if t.starts_with('<') {
                    3
                } else {
                    1
                })
            })
            .collect();
        let mut m: HashMap<String, Value> = HashMap::new();
        m.insert("tokenizer.ggml.model".into(), s("gemma4"));
        m.insert("tokenizer.ggml.tokens".into(), Value::Array(toks.iter().map(|t| s(t)).collect()));
        m.insert("tokenizer.ggml.token_type".into(), Value::Array(types));
        // ranks: a b (0), ▁ a (1), ▁ ab (2); "▁a" + "b" has none
        m.insert("tokenizer.ggml.merges".into(), Value::Array(vec![s("a b"), s("▁ a"), s("▁ ab")]));
        m.insert("tokenizer.ggml.bos_token_id".into(), Value::U32(1));
        m.insert("tokenizer.ggml.add_bos_token".into(), Value::Bool(false));
        let t = Tokenizer::from_gguf(&m).unwrap();
        assert!(t.add_bos, "llama.cpp always adds BOS for gemma4");
        // a b (rank 0) merges before ▁ a (rank 1) can, then ▁ + ab (rank 2): one token
        assert_eq!(t.encode(" ab", true).unwrap(), [1, 11]);
        // no space prefix; a run of two newlines is a token taken whole; é falls back to bytes
        assert_eq!(t.encode("a\n\né", false).unwrap(), [5, 10, 3, 4]);
        // three newlines are not a token: BPE on the run, each newline as its byte token
        assert_eq!(t.encode("\n\n\n", false).unwrap(), [2, 2, 2]);
        assert_eq!(t.decode(&[1, 11, 10, 3, 4], false), " ab\n\né");
    }

    /// llama.cpp's end-of-generation texts, whatever their type: a user-defined `</s>` (Gemma 3's
    /// id 212) ends generation and is hidden like a control token (the last id of a repeated text
    /// counts); beside Gemma 4's `<|tool_response>` marker, `</s>` is a normal token instead.
    #[test]
    fn end_of_generation_texts_as_llamacpp() {
        const USER: i64 = 4;
        let t = vocab(&[("<end_of_turn>", 0.0, USER), ("</s>", 0.0, USER), ("x", -1.0, N)], Some(false));
        assert_eq!(t.eog_tokens(), [2, x(0), x(1)]);
        assert_eq!(t.decode(&[x(2), x(1), x(0), x(2)], false), "xx");
        assert_eq!(t.decode(&[x(2), x(1), x(0), x(2)], true), "x</s><end_of_turn>x");
        let t = vocab(&[("<|tool_response>", 0.0, USER), ("x", -1.0, N)], Some(false));
        assert_eq!(t.eog_tokens(), [x(0)], "</s> (also the EOS id) is not an end of generation here");
        assert_eq!(t.decode(&[x(1), 2, x(0)], false), "x</s>");
    }
}
