//! Evaluation on a set of prompts with reference answers (`wisp eval`): the model answers each
//! greedily, and the report scores the answers against the references with BLEU and ROUGE, and
//! the model against the references with their perplexity given the prompt.
//!
//! The metrics are the reference implementations' own, reproduced to the last bit where no
//! transcendental function is involved (`tests/eval.rs` checks them against
//! `scripts/make_eval_fixture.py`'s golden values):
//!
//! - BLEU as sacreBLEU 2.x computes it with its defaults (signature
//!   `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp`): the text right-stripped, the `13a`
//!   tokenizer (mteval-v13a's: `<skipped>` and `-\n` removed, four HTML entities unescaped,
//!   ASCII punctuation split off, `.` and `,` split unless between digits, `-` after a digit),
//!   n-grams up to 4 clipped by the reference's counts, the 'exp' smoothing (each order with no
//!   match counts as 1 / (2^k · total)), the brevity penalty, and the score on sacreBLEU's 0–100
//!   scale. The corpus score sums the statistics of every item ([`corpus_bleu`],
//!   `sacrebleu.corpus_bleu`); an item's own is `sacrebleu.sentence_bleu`'s ([`sentence_bleu`]:
//!   the same, with its default effective order, so orders the hypothesis is too short for do
//!   not zero it). Whitespace is Python's `str.split()`'s (which includes U+001C–U+001F).
//! - ROUGE-1, ROUGE-2 and ROUGE-L as Google's `rouge-score` computes them with
//!   `RougeScorer(['rouge1', 'rouge2', 'rougeL'])` and its default `use_stemmer=False` (no Porter
//!   stemming): text lowercased, every run of characters outside `[a-z0-9]` a separator (so
//!   accented letters and other scripts separate words and are not words), n-gram overlap or
//!   the longest common subsequence, precision, recall and F1 on a 0–1 scale. The corpus figure
//!   is the mean of the items' F1.
//! - Perplexity of the reference given the prompt, teacher-forced: the reference's tokens
//!   (tokenized alone, no BOS) follow the prompt's, and each is scored by the logits after the
//!   prompt and the reference tokens before it (softmax in f64). An item's perplexity is
//!   `exp(nll / tokens)`; the corpus's weighs every reference token equally,
//!   `exp(Σ nll / Σ tokens)`.
//!
//! Prompts: a JSONL line is `{"prompt": "..."}` or `{"messages": [{"role", "content"}, ...]}`,
//! with `"reference": "..."` and optionally an `"id"` (other keys are ignored). On a model that
//! can chat ([`crate::chat::check_chat_support`]) every item is rendered with the model's chat
//! template, a prompt as one user message, ending where the assistant speaks. A model that cannot
//! (a base model) continues a plain `prompt` as written, and an item with `messages` is refused
//! before anything runs, naming its line.
//!
//! The metric functions, [`parse_jsonl`] / [`parse_item`] and [`report`] are plain functions
//! that also build for wasm (a page generates with its own step loop, then hands the
//! [`Outcome`]s to [`report`]); [`evaluate`], which drives the engine, is native.

use crate::chat::Message;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// BLEU's largest n-gram order (sacreBLEU's `MAX_NGRAM_ORDER`).
pub const MAX_NGRAM_ORDER: usize = 4;

/// What the BLEU figures match: sacreBLEU's signature for its corpus defaults, one reference.
pub const BLEU_SIGNATURE: &str = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp";

/// Python's `str.isspace()` (what `str.split()` and `str.rstrip()` split and strip on): Unicode's
/// White_Space characters and the four separators U+001C–U+001F.
pub fn py_isspace(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\x1c'..=' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Python's `str.split()` with no argument.
fn py_split(s: &str) -> Vec<String> {
    s.split(py_isspace).filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// The tokens sacreBLEU's BLEU counts for `line`: `line.rstrip()` through the `13a` tokenizer,
/// split on whitespace.
pub fn tokenize_13a(line: &str) -> Vec<String> {
    let mut s =
        line.trim_end_matches(py_isspace).replace("<skipped>", "").replace("-\n", "").replace('\n', " ");
    if s.contains('&') {
        s = s.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    }
    // ' {line} ', then `([\{-\~\[-\` -\&\(-\+\:-\@\/])` -> ' \1 '
    let mut a = Vec::with_capacity(s.len() + 2);
    a.push(' ');
    for c in s.chars() {
        if matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/') {
            a.extend([' ', c, ' ']);
        } else {
            a.push(c);
        }
    }
    a.push(' ');
    // the three two-character substitutions, each a left-to-right pass of non-overlapping
    // matches (Python's `re.sub`)
    type Rule = (fn(char, char) -> bool, fn(char, char) -> [char; 4]);
    let rules: [Rule; 3] = [
        // `([^0-9])([\.,])` -> '\1 \2 '
        (|x, y| !x.is_ascii_digit() && (y == '.' || y == ','), |x, y| [x, ' ', y, ' ']),
        // `([\.,])([^0-9])` -> ' \1 \2'
        (|x, y| (x == '.' || x == ',') && !y.is_ascii_digit(), |x, y| [' ', x, ' ', y]),
        // `([0-9])(-)` -> '\1 \2 '
        (|x, y| x.is_ascii_digit() && y == '-', |x, y| [x, ' ', y, ' ']),
    ];
    for (matches, replace) in rules {
        let mut b = Vec::with_capacity(a.len() + a.len() / 4);
        let mut i = 0;
        while i < a.len() {
            if i + 1 < a.len() && matches(a[i], a[i + 1]) {
                b.extend(replace(a[i], a[i + 1]));
                i += 2;
            } else {
                b.push(a[i]);
                i += 1;
            }
        }
        a = b;
    }
    py_split(&a.into_iter().collect::<String>())
}

/// n-gram counts of `tokens`, orders `min` to `max`.
fn ngram_counts(tokens: &[String], min: usize, max: usize) -> HashMap<&[String], u64> {
    let mut m = HashMap::new();
    for n in min..=max {
        for w in tokens.windows(n) {
            *m.entry(w).or_insert(0) += 1;
        }
    }
    m
}

/// BLEU's sufficient statistics for one hypothesis and its reference (sacreBLEU's segment
/// statistics); corpus statistics are their sums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BleuStats {
    /// Hypothesis tokens.
    pub sys_len: u64,
    /// Reference tokens.
    pub ref_len: u64,
    /// Hypothesis n-grams found in the reference (clipped by its counts), per order.
    pub counts: [u64; MAX_NGRAM_ORDER],
    /// Hypothesis n-grams, per order.
    pub totals: [u64; MAX_NGRAM_ORDER],
}

impl BleuStats {
    pub fn new(hypothesis: &str, reference: &str) -> BleuStats {
        let hyp = tokenize_13a(hypothesis);
        let rf = tokenize_13a(reference);
        let ref_ngrams = ngram_counts(&rf, 1, MAX_NGRAM_ORDER);
        let mut s = BleuStats { sys_len: hyp.len() as u64, ref_len: rf.len() as u64, ..Default::default() };
        for (g, &h) in &ngram_counts(&hyp, 1, MAX_NGRAM_ORDER) {
            let n = g.len() - 1;
            s.totals[n] += h;
            s.counts[n] += h.min(ref_ngrams.get(g).copied().unwrap_or(0));
        }
        s
    }

    fn add(&mut self, o: &BleuStats) {
        self.sys_len += o.sys_len;
        self.ref_len += o.ref_len;
        for n in 0..MAX_NGRAM_ORDER {
            self.counts[n] += o.counts[n];
            self.totals[n] += o.totals[n];
        }
    }

    /// The score from these statistics (sacreBLEU's `compute_bleu` with smoothing 'exp').
    pub fn score(&self, effective_order: bool) -> Bleu {
        let (sys, rf) = (self.sys_len, self.ref_len);
        let mut bp = 1.0;
        if sys < rf {
            bp = if sys > 0 { (1.0 - rf as f64 / sys as f64).exp() } else { 0.0 };
        }
        let mut b = Bleu {
            score: 0.0,
            counts: self.counts,
            totals: self.totals,
            precisions: [0.0; MAX_NGRAM_ORDER],
            bp,
            sys_len: sys,
            ref_len: rf,
        };
        if self.counts.iter().all(|&c| c == 0) {
            return b; // no match at all: 0 (sacreBLEU's early exit, precisions left at 0)
        }
        let mut smooth = 1.0f64;
        let mut eff_order = MAX_NGRAM_ORDER;
        for n in 1..=MAX_NGRAM_ORDER {
            let (c, t) = (self.counts[n - 1], self.totals[n - 1]);
            if t == 0 {
                break;
            }
            if effective_order {
                eff_order = n;
            }
            b.precisions[n - 1] = if c == 0 {
                smooth *= 2.0;
                100.0 / (smooth * t as f64)
            } else {
                100.0 * c as f64 / t as f64
            };
        }
        // sacreBLEU's `my_log`: log(0) floored to -9999999999; summed in order from 0
        let log = |p: f64| if p == 0.0 { -9_999_999_999.0 } else { p.ln() };
        let sum = b.precisions[..eff_order].iter().fold(0.0, |acc, &p| acc + log(p));
        b.score = bp * (sum / eff_order as f64).exp();
        b
    }
}

/// A BLEU score with what it is made of, as sacreBLEU's `BLEUScore` has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bleu {
    /// 0–100.
    pub score: f64,
    pub counts: [u64; MAX_NGRAM_ORDER],
    pub totals: [u64; MAX_NGRAM_ORDER],
    /// n-gram precisions, 0–100 (smoothed where an order has no match).
    pub precisions: [f64; MAX_NGRAM_ORDER],
    /// Brevity penalty.
    pub bp: f64,
    pub sys_len: u64,
    pub ref_len: u64,
}

impl Bleu {
    /// Hypothesis length over reference length (0 when the references are empty).
    pub fn ratio(&self) -> f64 {
        if self.ref_len == 0 {
            0.0
        } else {
            self.sys_len as f64 / self.ref_len as f64
        }
    }
}

/// Corpus BLEU of `hypotheses` against one reference each: `sacrebleu.corpus_bleu(hypotheses,
/// [references])` with its defaults.
pub fn corpus_bleu(hypotheses: &[&str], references: &[&str]) -> Result<Bleu> {
    if hypotheses.len() != references.len() {
        return Err(Error::arg(
            "references",
            format!("{} hypotheses but {} references", hypotheses.len(), references.len()),
        ));
    }
    let mut total = BleuStats::default();
    for (h, r) in hypotheses.iter().zip(references) {
        total.add(&BleuStats::new(h, r));
    }
    Ok(total.score(false))
}

/// One hypothesis's BLEU: `sacrebleu.sentence_bleu(hypothesis, [reference])` with its defaults
/// (smoothing 'exp', effective order on).
pub fn sentence_bleu(hypothesis: &str, reference: &str) -> Bleu {
    BleuStats::new(hypothesis, reference).score(true)
}

/// The tokens `rouge-score`'s default tokenizer makes (no stemmer): the text lowercased as
/// Python's `str.lower()` does, every run outside `[a-z0-9]` a separator.
pub fn tokenize_rouge(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut end = |cur: &mut String| {
        if !cur.is_empty() {
            tokens.push(std::mem::take(cur));
        }
    };
    for c in text.chars() {
        match c {
            'a'..='z' | '0'..='9' => cur.push(c),
            'A'..='Z' => cur.push(c.to_ascii_lowercase()),
            // the only characters whose lowercase has a letter of [a-z]: KELVIN SIGN -> 'k', and
            // LATIN CAPITAL I WITH DOT ABOVE -> 'i' + COMBINING DOT ABOVE (which then separates)
            '\u{212a}' => cur.push('k'),
            '\u{130}' => {
                cur.push('i');
                end(&mut cur);
            }
            _ => end(&mut cur),
        }
    }
    end(&mut cur);
    tokens
}

/// Precision, recall and F1 (0–1), as `rouge_score.scoring.Score`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

impl Prf {
    fn new(precision: f64, recall: f64) -> Prf {
        let fmeasure =
            if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        Prf { precision, recall, fmeasure }
    }
}

/// ROUGE-1, ROUGE-2 and ROUGE-L of one hypothesis against its reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rouge {
    pub rouge1: Prf,
    pub rouge2: Prf,
    #[serde(rename = "rougeL")]
    pub rouge_l: Prf,
}

fn rouge_n(target: &[String], prediction: &[String], n: usize) -> Prf {
    let (tc, pc) = (ngram_counts(target, n, n), ngram_counts(prediction, n, n));
    let inter: u64 = tc.iter().map(|(g, &c)| c.min(pc.get(g).copied().unwrap_or(0))).sum();
    let t_total: u64 = tc.values().sum();
    let p_total: u64 = pc.values().sum();
    Prf::new(inter as f64 / p_total.max(1) as f64, inter as f64 / t_total.max(1) as f64)
}

fn rouge_lcs(target: &[String], prediction: &[String]) -> Prf {
    if target.is_empty() || prediction.is_empty() {
        return Prf::default();
    }
    // the LCS table a row at a time
    let mut prev = vec![0u64; prediction.len() + 1];
    let mut row = prev.clone();
    for t in target {
        for (j, p) in prediction.iter().enumerate() {
            row[j + 1] = if t == p { prev[j] + 1 } else { prev[j + 1].max(row[j]) };
        }
        std::mem::swap(&mut prev, &mut row);
    }
    let lcs = prev[prediction.len()] as f64;
    Prf::new(lcs / prediction.len() as f64, lcs / target.len() as f64)
}

/// ROUGE of `hypothesis` against `reference`: `RougeScorer(['rouge1', 'rouge2',
/// 'rougeL']).score(reference, hypothesis)` (no stemmer).
pub fn rouge(hypothesis: &str, reference: &str) -> Rouge {
    let (h, r) = (tokenize_rouge(hypothesis), tokenize_rouge(reference));
    Rouge { rouge1: rouge_n(&r, &h, 1), rouge2: rouge_n(&r, &h, 2), rouge_l: rouge_lcs(&r, &h) }
}

/// What an item asks the model.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Text: a user message on a chat model, continued as written on a base model.
    Prompt(String),
    /// A conversation for the chat template (a chat model only).
    Messages(Vec<Message>),
}

/// One line of an evaluation set.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Its 1-based line in the file (its 1-based index for items that came as a list).
    pub line: usize,
    /// Where it came from, for errors: `set.jsonl line 3` (`item 3`).
    pub at: String,
    /// The item's `"id"`, if it has one (any JSON value), carried into the report.
    pub id: Option<Value>,
    pub input: Input,
    pub reference: String,
}

/// An item from its JSON object; `at` names it in errors (`"set.jsonl line 3"`).
pub fn parse_item(v: &Value, at: &str, line: usize) -> Result<Item> {
    let bad = |why: String| Error::malformed(at.to_string(), why);
    let obj = v.as_object().ok_or_else(|| {
        bad(format!("expected a JSON object {{\"prompt\" or \"messages\", \"reference\"}}, got {}", kind(v)))
    })?;
    let input = match (obj.get("prompt"), obj.get("messages")) {
        (Some(_), Some(_)) => return Err(bad("has both \"prompt\" and \"messages\"; give one".into())),
        (None, None) => {
            return Err(bad(
                "has neither \"prompt\" (a string) nor \"messages\" (a list of {role, content})".into()
            ))
        }
        (Some(p), None) => Input::Prompt(
            p.as_str()
                .ok_or_else(|| bad(format!("\"prompt\" must be a string, got {}", kind(p))))?
                .to_string(),
        ),
        (None, Some(m)) => {
            let list = m.as_array().ok_or_else(|| {
                bad(format!("\"messages\" must be a list of {{role, content}}, got {}", kind(m)))
            })?;
            if list.is_empty() {
                return Err(bad("\"messages\" is empty".into()));
            }
            let mut msgs = Vec::with_capacity(list.len());
            for (i, msg) in list.iter().enumerate() {
                let field = |k: &str| {
                    msg.get(k).and_then(Value::as_str).ok_or_else(|| {
                        bad(format!("message {} needs a string \"{k}\" ({})", i + 1, compact(msg)))
                    })
                };
                let role = field("role")?;
                if role.is_empty() {
                    return Err(bad(format!("message {} has an empty \"role\"", i + 1)));
                }
                msgs.push(Message::new(role, field("content")?));
            }
            Input::Messages(msgs)
        }
    };
    if let Input::Prompt(p) = &input {
        if p.trim().is_empty() {
            return Err(bad("\"prompt\" is empty".into()));
        }
    }
    let reference = match obj.get("reference") {
        None => return Err(bad("has no \"reference\" (the answer the output is scored against)".into())),
        Some(r) => {
            r.as_str().ok_or_else(|| bad(format!("\"reference\" must be a string, got {}", kind(r))))?
        }
    };
    if reference.trim().is_empty() {
        return Err(bad("\"reference\" is empty: there is nothing to score against".into()));
    }
    Ok(Item { line, at: at.to_string(), id: obj.get("id").cloned(), input, reference: reference.to_string() })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `v` as JSON, cut to 60 characters (for error messages).
fn compact(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// The items of a JSONL evaluation set (one JSON object per line; blank lines skipped). `name`
/// names the file in errors, which give the line: not UTF-8, not JSON, a missing or empty
/// reference, no items at all.
pub fn parse_jsonl(bytes: &[u8], name: &str) -> Result<Vec<Item>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        Error::malformed(format!("{name} line {line}"), "not UTF-8 text")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut items = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{name} line {}", i + 1);
        let v: Value = serde_json::from_str(line)
            .map_err(|e| Error::malformed(at.clone(), format!("not a JSON object: {e}")))?;
        items.push(parse_item(&v, &at, i + 1)?);
    }
    if items.is_empty() {
        return Err(Error::malformed(
            name.to_string(),
            "no items: an evaluation set has one JSON object per line, {\"prompt\": \"...\", \
             \"reference\": \"...\"} or {\"messages\": [...], \"reference\": \"...\"}",
        ));
    }
    Ok(items)
}

/// What running one item gave: the model's answer and the reference's likelihood. [`report`]
/// scores a list of these; a page's `engine.evaluate` builds them with its own generation loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// The item's line in its file (or its index, from 1).
    pub line: usize,
    /// The generated answer.
    pub output: String,
    pub reference: String,
    /// Tokens of the rendered prompt.
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Why generation ended: `eog`, `stop`, `length` or `aborted`.
    pub finish: String,
    /// Tokens of the reference, all scored.
    pub reference_tokens: usize,
    /// Σ −ln p(reference token | prompt, the reference tokens before it).
    pub reference_nll: f64,
}

/// One item's scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemScores {
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Sentence BLEU (0–100).
    pub bleu: f64,
    /// ROUGE F1 (0–1).
    pub rouge1: f64,
    pub rouge2: f64,
    #[serde(rename = "rougeL")]
    pub rouge_l: f64,
    /// exp(reference_nll / reference_tokens).
    pub perplexity: f64,
}

/// The whole set's scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorpusScores {
    pub items: usize,
    /// Corpus BLEU over every item (sacreBLEU's corpus defaults).
    pub bleu: Bleu,
    pub bleu_signature: String,
    /// Mean of the items' ROUGE F1.
    pub rouge1: f64,
    pub rouge2: f64,
    #[serde(rename = "rougeL")]
    pub rouge_l: f64,
    /// exp(Σ reference_nll / Σ reference_tokens).
    pub perplexity: f64,
    pub reference_tokens: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub items: Vec<ItemScores>,
    pub corpus: CorpusScores,
}

/// Scores `outcomes`: per item sentence BLEU, ROUGE F1 and perplexity; for the set corpus BLEU,
/// mean ROUGE F1 and the token-weighted perplexity.
pub fn report(outcomes: &[Outcome]) -> Result<Report> {
    if outcomes.is_empty() {
        return Err(Error::arg("items", "there is nothing to evaluate"));
    }
    let mut items = Vec::with_capacity(outcomes.len());
    let mut stats = BleuStats::default();
    let (mut r1, mut r2, mut rl, mut nll) = (0.0, 0.0, 0.0, 0.0);
    let mut tokens = 0usize;
    for o in outcomes {
        if o.reference_tokens == 0 || !o.reference_nll.is_finite() || o.reference_nll < 0.0 {
            return Err(Error::arg(
                "items",
                format!(
                    "line {}: {} reference tokens with a log-likelihood of {} cannot be scored",
                    o.line, o.reference_tokens, -o.reference_nll
                ),
            ));
        }
        let s = BleuStats::new(&o.output, &o.reference);
        stats.add(&s);
        let r = rouge(&o.output, &o.reference);
        r1 += r.rouge1.fmeasure;
        r2 += r.rouge2.fmeasure;
        rl += r.rouge_l.fmeasure;
        nll += o.reference_nll;
        tokens += o.reference_tokens;
        items.push(ItemScores {
            outcome: o.clone(),
            bleu: s.score(true).score,
            rouge1: r.rouge1.fmeasure,
            rouge2: r.rouge2.fmeasure,
            rouge_l: r.rouge_l.fmeasure,
            perplexity: (o.reference_nll / o.reference_tokens as f64).exp(),
        });
    }
    let n = outcomes.len() as f64;
    Ok(Report {
        items,
        corpus: CorpusScores {
            items: outcomes.len(),
            bleu: stats.score(false),
            bleu_signature: BLEU_SIGNATURE.into(),
            rouge1: r1 / n,
            rouge2: r2 / n,
            rouge_l: rl / n,
            perplexity: (nll / tokens as f64).exp(),
            reference_tokens: tokens,
        },
    })
}

/// `s` on one line (whitespace runs as one space), cut to `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if s.chars().count() > max => format!("{}…", &s[..i]),
        _ => s,
    }
}

impl Report {
    /// The report as a table for people: a row per item, then the corpus figures.
    pub fn table(&self) -> String {
        let mut t = String::new();
        t += &format!(
            "{:>4} {:>6} {:>7} {:>7} {:>7} {:>9}  output | reference\n",
            "line", "BLEU", "ROUGE-1", "ROUGE-2", "ROUGE-L", "ppl"
        );
        for it in &self.items {
            t += &format!(
                "{:>4} {:>6.2} {:>7.4} {:>7.4} {:>7.4} {:>9.3}  {} | {}\n",
                it.outcome.line,
                it.bleu,
                it.rouge1,
                it.rouge2,
                it.rouge_l,
                it.perplexity,
                one_line(&it.outcome.output, 48),
                one_line(&it.outcome.reference, 40),
            );
        }
        let c = &self.corpus;
        let b = &c.bleu;
        t += &format!(
            "\n{} items\nBLEU     {:.2}  {:.1}/{:.1}/{:.1}/{:.1} (BP {:.3}, ratio {:.3}, hyp_len {}, ref_len {}; {})\n",
            c.items,
            b.score,
            b.precisions[0],
            b.precisions[1],
            b.precisions[2],
            b.precisions[3],
            b.bp,
            b.ratio(),
            b.sys_len,
            b.ref_len,
            c.bleu_signature,
        );
        t += &format!(
            "ROUGE    1: {:.4}  2: {:.4}  L: {:.4} (F1, mean over items; rouge-score, no stemmer)\n",
            c.rouge1, c.rouge2, c.rouge_l
        );
        t += &format!(
            "perplexity of the references given their prompts: {:.3} ({} tokens)\n",
            c.perplexity, c.reference_tokens
        );
        t
    }
}

/// The negative log-likelihood of `target` under `logits` (softmax in f64).
pub fn nll(logits: &[f32], target: u32) -> Result<f64> {
    let t = logits.get(target as usize).ok_or_else(|| {
        Error::arg("reference", format!("token {target} is outside the vocabulary of {}", logits.len()))
    })?;
    let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let lse = logits.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
    Ok(lse - *t as f64)
}

/// Options of [`evaluate`].
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Most tokens per answer (at least 1).
    pub max_tokens: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions { max_tokens: 128 }
    }
}

/// An item ready to run: its prompt and reference as token ids.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub prompt: Vec<u32>,
    pub reference: Vec<u32>,
}

/// Whether the engine's model renders items through its chat template (see the module docs).
pub fn uses_chat_template(engine: &crate::Engine) -> bool {
    crate::chat::check_chat_support(&engine.tokenizer).is_ok()
}

/// Renders and tokenizes every item, checking each before anything runs: a conversation needs a
/// chat model, and the prompt and the reference must fit in the context together.
pub fn prepare(engine: &crate::Engine, items: &[Item]) -> Result<Vec<Prepared>> {
    let chat = crate::chat::check_chat_support(&engine.tokenizer);
    let ctx = engine.n_ctx();
    items
        .iter()
        .map(|it| {
            let at = |e: Error| match e {
                Error::Template(why) => Error::Template(format!("{}: {why}", it.at)),
                e => Error::Other(format!("{}: {e}", it.at)),
            };
            let prompt = match (&it.input, &chat) {
                (Input::Prompt(p), Ok(())) => engine.chat_prompt(&[Message::new("user", p)]),
                (Input::Messages(m), Ok(())) => engine.chat_prompt(m),
                (Input::Prompt(p), Err(_)) => engine.encode(p),
                (Input::Messages(_), Err(e)) => Err(Error::Template(format!(
                    "{}; this item has \"messages\", which need one (a plain \"prompt\" is \
                     continued as written)",
                    match e {
                        Error::Template(why) => why.clone(),
                        e => e.to_string(),
                    }
                ))),
            }
            .map_err(at)?;
            let reference = engine.tokenizer.encode(&it.reference, false).map_err(at)?;
            if reference.is_empty() {
                return Err(at(Error::arg("reference", "has no tokens")));
            }
            if prompt.len() + reference.len() > ctx {
                return Err(Error::Other(format!(
                    "{}: the prompt ({} tokens) and the reference ({} tokens) need {} positions, \
                     but the context holds {ctx} (--ctx)",
                    it.at,
                    prompt.len(),
                    reference.len(),
                    prompt.len() + reference.len()
                )));
            }
            Ok(Prepared { prompt, reference })
        })
        .collect()
}

/// Runs one prepared item: the reference scored teacher-forced after the prompt
/// ([`crate::Engine::reference_nll_async`], as the page's `engine.evaluate` scores it), then the
/// greedy answer (which reuses the prompt's cache).
#[cfg(not(target_arch = "wasm32"))]
pub fn run_item(
    engine: &mut crate::Engine,
    item: &Item,
    p: &Prepared,
    opts: &EvalOptions,
) -> Result<Outcome> {
    let total = pollster::block_on(engine.reference_nll_async(&p.prompt, &p.reference))?;
    let gen = crate::GenerateOptions {
        max_tokens: opts.max_tokens,
        sampling: crate::sampling::SamplingParams::greedy(),
        ..Default::default()
    };
    let g = engine.generate(&p.prompt, &gen, &mut |_, _| true)?;
    let finish = serde_json::to_value(g.finish).ok().and_then(|v| v.as_str().map(String::from));
    Ok(Outcome {
        id: item.id.clone(),
        line: item.line,
        output: g.text,
        reference: item.reference.clone(),
        prompt_tokens: p.prompt.len(),
        generated_tokens: g.ids.len(),
        finish: finish.unwrap_or_default(),
        reference_tokens: p.reference.len(),
        reference_nll: total,
    })
}

/// Evaluates `engine` on `items` (all checked first, see [`prepare`]); `on_item(done, total,
/// outcome)` hears of each item as it finishes and returns `false` to stop (an `Aborted` error).
#[cfg(not(target_arch = "wasm32"))]
pub fn evaluate(
    engine: &mut crate::Engine,
    items: &[Item],
    opts: &EvalOptions,
    on_item: &mut dyn FnMut(usize, usize, &Outcome) -> bool,
) -> Result<Report> {
    if opts.max_tokens == 0 {
        return Err(Error::arg("max_tokens", "must be at least 1"));
    }
    if items.is_empty() {
        return Err(Error::arg("items", "there is nothing to evaluate"));
    }
    let prepared = prepare(engine, items)?;
    let mut outcomes = Vec::with_capacity(items.len());
    for (i, (item, p)) in items.iter().zip(&prepared).enumerate() {
        let o = run_item(engine, item, p, opts).map_err(|e| match e {
            Error::Aborted => e,
            e => Error::Other(format!("{}: {e}", item.at)),
        })?;
        let more = on_item(i + 1, items.len(), &o);
        outcomes.push(o);
        if !more {
            return Err(Error::Aborted);
        }
    }
    report(&outcomes)
}
