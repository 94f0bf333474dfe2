//! Token sampling and streamed-text assembly.
//!
//! Order as llama.cpp applies it: repetition/frequency/presence penalties over a window of recent
//! tokens, then top-k, top-p, min-p, temperature, and a draw from a seeded generator (same seed,
//! same text, on every platform: the generator is ours, not the OS's). Temperature 0 is greedy.
//! [`StreamDecoder`] turns token bytes into text that never splits a UTF-8 character and never
//! shows any part of a stop string.

use crate::error::{Error, Result};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// 0 = greedy.
    pub temperature: f32,
    /// 0 = off.
    pub top_k: usize,
    /// 1 = off.
    pub top_p: f32,
    /// 0 = off.
    pub min_p: f32,
    /// 1 = off; > 1 discourages tokens seen in the last `repeat_last_n`.
    pub repetition_penalty: f32,
    pub repeat_last_n: usize,
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repetition_penalty: 1.0,
            repeat_last_n: 64,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            seed: 0x5eed,
        }
    }
}

impl SamplingParams {
    /// Greedy with no penalties: the next token is the plain argmax of the logits (so a GPU can
    /// pick it without reading the logits back).
    pub fn is_plain_argmax(&self) -> bool {
        self.temperature <= 0.0
            && (self.repetition_penalty == 1.0 || self.repeat_last_n == 0)
            && self.frequency_penalty == 0.0
            && self.presence_penalty == 0.0
    }

    pub fn greedy() -> Self {
        SamplingParams { temperature: 0.0, ..Default::default() }
    }

    pub fn validate(&self) -> Result<()> {
        let finite = |name: &'static str, v: f32| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(Error::arg(name, format!("{v} is not a finite number")))
            }
        };
        finite("temperature", self.temperature)?;
        finite("top_p", self.top_p)?;
        finite("min_p", self.min_p)?;
        finite("repetition_penalty", self.repetition_penalty)?;
        finite("frequency_penalty", self.frequency_penalty)?;
        finite("presence_penalty", self.presence_penalty)?;
        if self.temperature < 0.0 {
            return Err(Error::arg("temperature", format!("{} is negative", self.temperature)));
        }
        if !(0.0..=1.0).contains(&self.top_p) || self.top_p == 0.0 {
            return Err(Error::arg("top_p", format!("{} is outside (0, 1]", self.top_p)));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(Error::arg("min_p", format!("{} is outside [0, 1]", self.min_p)));
        }
        if self.repetition_penalty <= 0.0 {
            return Err(Error::arg(
                "repetition_penalty",
                format!("{} must be positive", self.repetition_penalty),
            ));
        }
        Ok(())
    }
}

/// xoshiro128** seeded through splitmix64: small, fast, identical everywhere.
#[derive(Clone, Debug)]
pub struct Rng([u32; 4]);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        let (a, b) = (next(), next());
        Rng([a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32 | 1])
    }

    pub fn next_u32(&mut self) -> u32 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 9;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(11);
        result
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u32() >> 8) as f64 / (1u32 << 24) as f64
    }
}

/// Index of the largest logit (lowest index on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The most alternatives [`token_logprob`] reports per token (OpenAI's `top_logprobs` limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// A generated token's log-probability under the model (the log-softmax of its raw logits:
/// temperature 1, before penalties and truncation, as llama.cpp and OpenAI report it) and the
/// `top` most likely tokens of that step with theirs, most likely first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenLogprob {
    pub token: u32,
    pub logprob: f64,
    pub top: Vec<Alternative>,
}

/// One of the tokens a step weighed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alternative {
    pub token: u32,
    pub logprob: f64,
}

/// [`TokenLogprob`] of `token` from one step's raw `logits`, with the `top` (≤
/// [`MAX_TOP_LOGPROBS`]) likeliest alternatives, ties to the lower id. NaN logits count as
/// impossible. The normaliser is summed in f64 from the largest logit.
pub fn token_logprob(logits: &[f32], token: u32, top: usize) -> TokenLogprob {
    let max = logits.iter().copied().filter(|v| !v.is_nan()).fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().filter(|v| !v.is_nan()).map(|&v| (v as f64 - max).exp()).sum();
    let lse = max + sum.ln();
    let lp = |t: u32| match logits.get(t as usize) {
        Some(v) if !v.is_nan() => *v as f64 - lse,
        _ => f64::NEG_INFINITY,
    };
    let top = top.min(MAX_TOP_LOGPROBS).min(logits.len());
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(top + 1);
    if top > 0 {
        // one pass keeping the top few sorted (top ≤ 20: insertion beats a sort of the vocabulary)
        let after = |a: &(u32, f32), b: &(u32, f32)| a.1 < b.1 || (a.1 == b.1 && a.0 > b.0);
        for (i, &v) in logits.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            let c = (i as u32, v);
            if best.len() == top && !after(&best[top - 1], &c) {
                continue;
            }
            let at = best.iter().position(|b| after(b, &c)).unwrap_or(best.len());
            best.insert(at, c);
            best.truncate(top);
        }
    }
    TokenLogprob {
        token,
        logprob: lp(token),
        top: best.into_iter().map(|(t, _)| Alternative { token: t, logprob: lp(t) }).collect(),
    }
}

/// One pick handed to a device (the GPU's `sample` kernel): the sampler's options, the draw,
/// and `(token, count)` for each token the penalties touch (empty when they are off).
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceDraw {
    /// 0 = off; 1 when greedy.
    pub top_k: u32,
    pub temperature: f32,
    pub top_p: f32,
    pub min_p: f32,
    pub repetition_penalty: f32,
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    /// Uniform in [0, 1), a multiple of 2^-24 (exact in f32).
    pub r: f64,
    pub counts: Vec<[u32; 2]>,
}

pub struct Sampler {
    pub params: SamplingParams,
    rng: Rng,
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Result<Sampler> {
        params.validate()?;
        let rng = Rng::new(params.seed);
        Ok(Sampler { params, rng, candidates: Vec::new() })
    }

    /// Applies the penalties to `logits` in place, using the last `repeat_last_n` of `history`.
    pub fn apply_penalties(&self, logits: &mut [f32], history: &[u32]) {
        let p = &self.params;
        for [t, c] in self.penalty_counts(history) {
            let Some(l) = logits.get_mut(t as usize) else {
                continue;
            };
            if *l > 0.0 {
                *l /= p.repetition_penalty;
            } else {
                *l *= p.repetition_penalty;
            }
            *l -= c as f32 * p.frequency_penalty + p.presence_penalty;
        }
    }

    /// Picks the next token from `logits` (modified in place by the penalties).
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let r = self.draw();
        self.sample_drawn(logits, history, r)
    }

    /// The uniform number the next pick uses: one step of the generator when sampling at a
    /// temperature, none when greedy (so both paths keep the same sequence).
    fn draw(&mut self) -> f64 {
        if self.params.temperature == 0.0 {
            0.0
        } else {
            self.rng.next_f64()
        }
    }

    /// What a device needs to pick the next token exactly as [`Sampler::sample`] would: the
    /// options, the penalized tokens of the window with their counts, and the draw (the
    /// generator advances as `sample` advances it). If the device cannot finish the pick, the
    /// host goes on with [`Sampler::sample_drawn`] and this draw.
    pub fn device_draw(&mut self, history: &[u32]) -> DeviceDraw {
        let counts = self.penalty_counts(history);
        let r = self.draw();
        let p = &self.params;
        DeviceDraw {
            // greedy is the first of the sorted top-1
            top_k: if p.temperature == 0.0 { 1 } else { p.top_k.min(u32::MAX as usize) as u32 },
            temperature: p.temperature,
            top_p: p.top_p,
            min_p: p.min_p,
            repetition_penalty: p.repetition_penalty,
            frequency_penalty: p.frequency_penalty,
            presence_penalty: p.presence_penalty,
            r,
            counts,
        }
    }

    /// `[token, count]` for each distinct token in the last `repeat_last_n` of `history`, by
    /// token id; empty when the penalties are off.
    fn penalty_counts(&self, history: &[u32]) -> Vec<[u32; 2]> {
        let p = &self.params;
        if p.repetition_penalty == 1.0 && p.frequency_penalty == 0.0 && p.presence_penalty == 0.0 {
            return Vec::new();
        }
        let window = &history[history.len().saturating_sub(p.repeat_last_n)..];
        let mut counts: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
        for &t in window {
            *counts.entry(t).or_default() += 1;
        }
        let mut out: Vec<[u32; 2]> = counts.into_iter().map(|(t, c)| [t, c]).collect();
        out.sort_unstable();
        out
    }

    /// [`Sampler::sample`] with the draw already taken (by [`Sampler::device_draw`]).
    pub fn sample_drawn(&mut self, logits: &mut [f32], history: &[u32], r: f64) -> u32 {
        self.apply_penalties(logits, history);
        let p = self.params.clone();
        if p.temperature == 0.0 {
            return argmax(logits);
        }
        let c = &mut self.candidates;
        c.clear();
        c.extend(logits.iter().enumerate().filter(|(_, v)| !v.is_nan()).map(|(i, &v)| (i as u32, v)));
        if c.is_empty() {
            return 0;
        }
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if p.top_k > 0 && p.top_k < c.len() {
            c.select_nth_unstable_by(p.top_k - 1, by_logit);
            c.truncate(p.top_k);
        }
        c.sort_unstable_by(by_logit);
        // probabilities at temperature 1 for top-p / min-p, as llama.cpp's chain does
        let softmax = |c: &[(u32, f32)], t: f32| -> Vec<f64> {
            let m = c[0].1 as f64;
            let e: Vec<f64> = c.iter().map(|x| ((x.1 as f64 - m) / t as f64).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|v| v / s).collect()
        };
        if p.top_p < 1.0 {
            let probs = softmax(c, 1.0);
            let mut cum = 0.0;
            let mut keep = c.len();
            for (i, pr) in probs.iter().enumerate() {
                cum += pr;
                if cum >= p.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            c.truncate(keep);
        }
        if p.min_p > 0.0 {
            let probs = softmax(c, 1.0);
            let floor = probs[0] * p.min_p as f64;
            let keep = probs.iter().take_while(|&&pr| pr >= floor).count().max(1);
            c.truncate(keep);
        }
        let probs = softmax(c, p.temperature);
        let mut cum = 0.0;
        for (i, pr) in probs.iter().enumerate() {
            cum += pr;
            if r < cum {
                return c[i].0;
            }
        }
        c[c.len() - 1].0
    }
}

/// Assembles streamed text from token bytes: emits only whole UTF-8 characters and holds back any
/// tail that could begin a stop string.
#[derive(Default, Debug)]
pub struct StreamDecoder {
    stops: Vec<String>,
    /// Bytes not yet forming a whole character.
    bytes: Vec<u8>,
    /// Decoded text not yet emitted (a possible stop-string prefix).
    held: String,
    pub stopped: bool,
}

impl StreamDecoder {
    pub fn new(stops: &[String]) -> StreamDecoder {
        StreamDecoder {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            ..Default::default()
        }
    }

    /// Adds a token's bytes; returns the text that is now final.
    pub fn push(&mut self, piece: &[u8]) -> String {
        if self.stopped {
            return String::new();
        }
        self.bytes.extend_from_slice(piece);
        loop {
            match std::str::from_utf8(&self.bytes) {
                Ok(s) => {
                    self.held.push_str(s);
                    self.bytes.clear();
                    break;
                }
                Err(e) => {
                    let ok = e.valid_up_to();
                    // valid prefix is whole characters
                    self.held.push_str(std::str::from_utf8(&self.bytes[..ok]).unwrap_or(""));
                    match e.error_len() {
                        // an invalid sequence: replace it, keep going
                        Some(bad) => {
                            self.held.push('\u{FFFD}');
                            self.bytes.drain(..ok + bad);
                        }
                        // an incomplete character at the end: wait for more bytes
                        None => {
                            self.bytes.drain(..ok);
                            break;
                        }
                    }
                }
            }
        }
        if let Some(out) = self.cut_at_stop() {
            return out;
        }
        // hold back the longest tail that is a prefix of a stop string
        let mut keep = 0;
        for s in &self.stops {
            for (i, _) in self.held.char_indices() {
                let tail = &self.held[i..];
                if s.starts_with(tail) {
                    keep = keep.max(tail.len());
                    break;
                }
            }
        }
        let emit_to = self.held.len() - keep;
        let rest = self.held.split_off(emit_to);
        std::mem::replace(&mut self.held, rest)
    }

    /// End of generation: whatever is held becomes final (a dangling partial character is shown
    /// as U+FFFD).
    pub fn finish(&mut self) -> String {
        if self.stopped {
            return String::new();
        }
        if !self.bytes.is_empty() {
            // the U+FFFD may complete a stop string ("a\u{FFFD}" after a held "a")
            self.held.push_str(&String::from_utf8_lossy(&self.bytes));
            self.bytes.clear();
            if let Some(out) = self.cut_at_stop() {
                return out;
            }
        }
        std::mem::take(&mut self.held)
    }

    /// A complete stop string in the held text ends the stream: returns the text before the
    /// earliest one (the stop string itself is never shown).
    fn cut_at_stop(&mut self) -> Option<String> {
        let at = self.stops.iter().filter_map(|s| self.held.find(s.as_str())).min()?;
        self.held.truncate(at);
        self.stopped = true;
        Some(std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dangling_byte_at_the_end_can_complete_a_stop_string() {
        let mut d = StreamDecoder::new(&["a\u{FFFD}".to_string()]);
        assert_eq!(d.push(b"xa"), "x");
        assert_eq!(d.push(&[0xE2]), "");
        assert_eq!(d.finish(), "");
        assert!(d.stopped);
        let mut d = StreamDecoder::new(&["b\u{FFFD}".to_string()]);
        assert_eq!(d.push(b"xa"), "xa");
        assert_eq!(d.push(&[0xE2]), "");
        assert_eq!(d.finish(), "\u{FFFD}");
    }

    #[test]
    fn stream_never_splits_utf8_and_hides_stop() {
        let mut d = StreamDecoder::new(&["\nUser:".to_string()]);
        let snow = "☃".as_bytes();
        assert_eq!(d.push(&snow[..1]), "");
        assert_eq!(d.push(&snow[1..]), "☃");
        assert_eq!(d.push(b"hi\nUs"), "hi");
        assert_eq!(d.push(b"er: more"), "");
        assert!(d.stopped);
        assert_eq!(d.finish(), "");
    }

    #[test]
    fn false_stop_prefix_is_released() {
        let mut d = StreamDecoder::new(&["STOP".to_string()]);
        assert_eq!(d.push(b"a ST"), "a ");
        assert_eq!(d.push(b"ORM"), "STORM");
        assert!(!d.stopped);
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_greedy_is_argmax() {
        let logits: Vec<f32> = (0..100).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
        let p = SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: 42,
            ..Default::default()
        };
        let draw = |p: &SamplingParams| {
            let mut s = Sampler::new(p.clone()).unwrap();
            (0..20).map(|_| s.sample(&mut logits.clone(), &[])).collect::<Vec<_>>()
        };
        assert_eq!(draw(&p), draw(&p));
        assert_ne!(draw(&p), draw(&SamplingParams { seed: 43, ..p.clone() }));
        let mut g = Sampler::new(SamplingParams::greedy()).unwrap();
        assert_eq!(g.sample(&mut logits.clone(), &[]), argmax(&logits));
        let mut k1 = Sampler::new(SamplingParams { top_k: 1, ..p }).unwrap();
        assert_eq!(k1.sample(&mut logits.clone(), &[]), argmax(&logits));
    }

    #[test]
    fn bad_params_are_errors() {
        for p in [
            SamplingParams { temperature: f32::NAN, ..Default::default() },
            SamplingParams { temperature: -1.0, ..Default::default() },
            SamplingParams { top_p: 0.0, ..Default::default() },
            SamplingParams { min_p: 2.0, ..Default::default() },
            SamplingParams { repetition_penalty: 0.0, ..Default::default() },
        ] {
            assert!(Sampler::new(p).is_err());
        }
    }

    #[test]
    fn penalties_push_seen_tokens_down() {
        let p = SamplingParams { repetition_penalty: 2.0, presence_penalty: 1.0, ..SamplingParams::greedy() };
        let s = Sampler::new(p).unwrap();
        let mut l = vec![4.0, 3.0, -1.0];
        s.apply_penalties(&mut l, &[0, 2]);
        assert_eq!(l, vec![1.0, 3.0, -3.0]);
    }
}
