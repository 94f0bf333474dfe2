//! The engine a caller drives: a model, its tokenizer and chat template, and one conversation
//! state (KV cache + the tokens it holds). Generation reuses the cached prefix a new prompt shares
//! with the last one, so multi-turn chat only evaluates the new turn.
//!
//! Time comes from a clock function the host provides (`std::time::Instant` natively,
//! `performance.now()` in the browser), since wasm has no std clock.

use crate::backend::Backend;
use crate::chat::{ChatTemplate, Message};
use crate::cpu::{Numerics, UBATCH};
use crate::error::{Error, Result};
use crate::gpu::forward::Picked;
use crate::grammar::{Grammar, Matcher, TokenTrie};
use crate::model::Model;
use crate::sampling::{
    token_logprob, DeviceDraw, Sampler, SamplingParams, StreamDecoder, TokenLogprob, MAX_TOP_LOGPROBS,
};
use crate::tokenizer::Tokenizer;
use crate::weights::{GgufSource, WeightSource};
use serde::Serialize;
use std::sync::Arc;

/// Default context when the caller does not choose one (the model may allow more).
pub const DEFAULT_CTX: usize = 4096;

#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// At least 1.
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    /// Keep going past end-of-generation tokens (benchmarks).
    pub ignore_eog: bool,
    /// Report each generated token's log-probability with this many alternatives (0 ..=
    /// [`MAX_TOP_LOGPROBS`]): the logits then come back from the GPU every step.
    pub logprobs: Option<usize>,
    /// Only text this grammar allows (GBNF, or a JSON Schema converted to one): every step's
    /// tokens are masked to those it can continue with, end-of-generation only once it is
    /// complete, and the generation ends when nothing but the end is left.
    pub grammar: Option<Arc<Grammar>>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            sampling: SamplingParams::default(),
            stop: Vec::new(),
            ignore_eog: false,
            logprobs: None,
            grammar: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-generation token.
    Eog,
    /// A stop string.
    Stop,
    /// `max_tokens` or the context was reached.
    Length,
    /// The caller's callback asked to stop.
    Aborted,
}

#[derive(Clone, Debug, Serialize)]
pub struct Generation {
    pub prompt_ids: Vec<u32>,
    pub ids: Vec<u32>,
    pub text: String,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
    /// Prompt tokens actually evaluated (the rest came from the cache).
    pub prefilled: usize,
    pub finish: FinishReason,
    /// Each generated token's log-probability and alternatives, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<TokenLogprob>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Info {
    pub architecture: String,
    pub parameters: u64,
    pub quantization: String,
    pub context: usize,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_vocab: usize,
    pub backend: String,
}

/// What one call of [`Engine::advance`] did.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// Prompt tokens `..done` of `total` are in the cache.
    Prefill { done: usize, total: usize },
    /// A generated token and the text it completed (possibly empty: a partial UTF-8 character or
    /// a possible stop-string prefix is held back until it is decided).
    Token {
        text: String,
        token: u32,
        /// With [`GenerateOptions::logprobs`]: the token's log-probability and alternatives.
        #[serde(skip_serializing_if = "Option::is_none")]
        logprob: Option<TokenLogprob>,
    },
    /// Held-back text released at the end (never empty). A struct variant: serde cannot tag a
    /// newtype variant holding a string, so `Text(String)` failed to serialize in the page.
    Text { text: String },
}

/// Where the next token is picked when the forward pass runs on the GPU.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum GpuPick {
    /// On the host, from the logits read back (and always on the CPU path).
    Host,
    /// Greedy without penalties: the argmax kernel.
    Argmax,
    /// The sampler's chain on the GPU (`sample.wgsl`).
    Sample,
}

/// One generation in progress (see [`Engine::start`]).
pub struct Stream {
    opts: GenerateOptions,
    sampler: Sampler,
    decoder: StreamDecoder,
    prompt: Vec<u32>,
    /// Prompt tokens in the cache.
    evaluated: usize,
    /// Prompt tokens that were already in the cache at the start.
    reused: usize,
    /// Prompt and generated ids (for penalties).
    history: Vec<u32>,
    ids: Vec<u32>,
    text: String,
    /// The last sampled token, not yet evaluated.
    pending: Option<u32>,
    /// A token chosen on the GPU, to be emitted next.
    next: Option<u32>,
    /// The draw of a pick the GPU handed back (its logits are in the scratch).
    drawn: Option<f64>,
    gpu_pick: GpuPick,
    decoded: usize,
    /// Clock at start, end of prefill, end.
    times: [f64; 3],
    finish: Option<FinishReason>,
    tail_sent: bool,
    /// Each emitted token's, with [`GenerateOptions::logprobs`].
    logprobs: Vec<TokenLogprob>,
    /// The grammar's state over the tokens generated so far, and the vocabulary's trie.
    matcher: Option<(Matcher, Arc<TokenTrie>)>,
}

impl Stream {
    /// Whether the prompt is still being evaluated.
    pub fn prefilling(&self) -> bool {
        self.evaluated < self.prompt.len()
    }

    pub fn finished(&self) -> Option<FinishReason> {
        self.finish
    }

    /// Ids generated so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    fn end(&mut self, why: FinishReason, now: f64) {
        if self.finish.is_none() {
            self.finish = Some(why);
            self.times[2] = now;
            if self.times[1] == 0.0 {
                self.times[1] = now;
            }
        }
    }

    fn tail(&mut self) -> Option<Event> {
        if self.tail_sent {
            return None;
        }
        self.tail_sent = true;
        let tail = self.decoder.finish();
        if tail.is_empty() {
            return None;
        }
        self.text.push_str(&tail);
        Some(Event::Text { text: tail })
    }

    /// The summary; prompt tokens found in the cache do not count toward the prefill rate.
    pub fn into_generation(mut self) -> Generation {
        let _ = self.tail();
        let rate = |n: usize, dt: f64| if dt > 0.0 { n as f64 / dt } else { 0.0 };
        let [t0, t1, t2] = self.times;
        let prefilled = self.prompt.len() - self.reused;
        Generation {
            prefill_tok_s: rate(prefilled, t1 - t0),
            decode_tok_s: rate(self.decoded, t2 - t1),
            prompt_ids: self.prompt,
            ids: self.ids,
            text: self.text,
            prefilled,
            finish: self.finish.unwrap_or(FinishReason::Aborted),
            logprobs: self.logprobs,
        }
    }
}

pub struct Engine {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub template: ChatTemplate,
    /// Where the forward pass runs, with its KV cache.
    backend: Backend,
    n_ctx: usize,
    /// Tokens whose keys/values are in the backend's cache, in order.
    tokens: Vec<u32>,
    numerics: Numerics,
    /// On the GPU, sampled generations pick their tokens there (off: logits read back).
    device_sampling: bool,
    clock: fn() -> f64,
    /// The vocabulary as a trie, built on the first constrained generation.
    trie: Option<Arc<TokenTrie>>,
}

#[cfg(not(target_arch = "wasm32"))]
fn native_clock() -> f64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64()
}

#[cfg(target_arch = "wasm32")]
fn native_clock() -> f64 {
    0.0
}

impl Engine {
    /// Builds an engine from a model source and its tokenizer; `n_ctx` 0 picks a default.
    pub fn new(src: &mut dyn WeightSource, tokenizer: Tokenizer, n_ctx: usize) -> Result<Engine> {
        let model = Model::load(src)?;
        if tokenizer.vocab_size() > model.n_vocab {
            return Err(Error::Tokenizer(format!(
                "tokenizer has {} tokens but the model's embedding has {} rows",
                tokenizer.vocab_size(),
                model.n_vocab
            )));
        }
        let token = |id: Option<u32>| id.and_then(|i| tokenizer.token_text(i)).unwrap_or_default();
        let template = ChatTemplate::new(
            tokenizer.chat_template.as_deref(),
            &token(tokenizer.bos),
            &token(tokenizer.eos),
        )?;
        let train = model.cfg.n_ctx_train;
        let n_ctx = if n_ctx == 0 { train.min(DEFAULT_CTX).min(model.max_positions()) } else { n_ctx };
        if n_ctx > train {
            return Err(Error::arg("ctx", format!("{n_ctx} exceeds the model's trained context {train}")));
        }
        if let Some((limit, why)) = model.ctx_limit.as_ref().filter(|l| n_ctx > l.0) {
            return Err(Error::arg(
                "ctx",
                format!("{n_ctx} exceeds {limit}, the longest this model runs exactly: {why}"),
            ));
        }
        Ok(Engine {
            backend: Backend::cpu(&model, n_ctx),
            n_ctx,
            model,
            tokenizer,
            template,
            tokens: Vec::new(),
            numerics: Numerics::default(),
            device_sampling: true,
            clock: native_clock,
            trie: None,
        })
    }

    /// Loads a GGUF model (weights and tokenizer) from its bytes.
    pub fn from_gguf_bytes(bytes: &[u8], n_ctx: usize) -> Result<Engine> {
        Self::from_gguf(GgufSource::from_bytes(bytes)?, n_ctx)
    }

    pub fn from_gguf(mut src: GgufSource, n_ctx: usize) -> Result<Engine> {
        let tok = Tokenizer::from_gguf(&src.header)?;
        Engine::new(&mut src, tok, n_ctx)
    }

    /// Chooses the CPU path's rounding (see [`Numerics`]); the cached conversation is dropped,
    /// since its keys and values were computed with the previous choice.
    pub fn set_numerics(&mut self, numerics: Numerics) {
        if numerics != self.numerics {
            self.numerics = numerics;
            self.reset();
        }
    }

    /// Runs the forward pass on the GPU from now on (the conversation is dropped).
    pub fn use_gpu(&mut self, gpu: crate::gpu::forward::GpuForward) -> Result<()> {
        if gpu.n_ctx() < self.n_ctx {
            return Err(Error::arg(
                "ctx",
                format!("GPU context {} < engine context {}", gpu.n_ctx(), self.n_ctx),
            ));
        }
        self.backend = Backend::Gpu { forward: Box::new(gpu), logits: Vec::new() };
        self.reset();
        Ok(())
    }

    pub fn gpu(&self) -> Option<&crate::gpu::forward::GpuForward> {
        self.backend.gpu()
    }

    /// Whether sampled generations on the GPU pick their tokens there (the default) or read the
    /// logits back and sample on the host (for comparison and benchmarks; the picks are the
    /// same). Greedy generations always take the argmax on the GPU.
    pub fn set_device_sampling(&mut self, on: bool) {
        self.device_sampling = on;
    }

    pub fn numerics(&self) -> Numerics {
        self.numerics
    }

    /// Sets the time source (seconds, monotonic).
    pub fn set_clock(&mut self, clock: fn() -> f64) {
        self.clock = clock;
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    pub fn info(&self) -> Info {
        let cfg = &self.model.cfg;
        Info {
            architecture: cfg.arch.name().into(),
            parameters: self.model.parameters(),
            quantization: self.model.quantization().into(),
            context: self.n_ctx,
            n_layer: cfg.n_layer,
            n_embd: cfg.n_embd,
            n_vocab: self.model.n_vocab,
            backend: "cpu".into(),
        }
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.tokens.clear();
    }

    /// Tokens currently held in the KV cache.
    pub fn cached_tokens(&self) -> &[u32] {
        &self.tokens
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text, true)
    }

    /// Evaluates `ids` after the cached tokens; keeps the last row's logits when `logits`.
    async fn eval(&mut self, ids: &[u32], logits: bool) -> Result<()> {
        let pos = self.tokens.len();
        self.backend.eval(&self.model, ids, pos, logits, self.numerics).await?;
        self.tokens.extend_from_slice(ids);
        Ok(())
    }

    /// Evaluates `ids`; on failure forgets the conversation, so the cache and the token list
    /// never disagree.
    async fn eval_or_reset(&mut self, ids: &[u32], logits: bool) -> Result<()> {
        let r = self.eval(ids, logits).await;
        if r.is_err() {
            self.reset();
        }
        r
    }

    /// Evaluates `prompt` (reusing the cached prefix it shares) and returns its last logits.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<&[f32]> {
        let mut s = self.start(prompt, GenerateOptions::default())?;
        while s.prefilling() {
            pollster::block_on(self.advance(&mut s))?;
        }
        Ok(&self.backend.logits()[..self.model.n_vocab])
    }

    /// Evaluates one more token (after `prefill`) and returns its logits.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step(&mut self, token: u32) -> Result<&[f32]> {
        if self.tokens.is_empty() {
            return Err(Error::State("step() called before prefill()".into()));
        }
        pollster::block_on(self.eval_or_reset(&[token], true))?;
        Ok(&self.backend.logits()[..self.model.n_vocab])
    }

    /// Begins generating from `prompt` ids: checks the request and drops the part of the cache
    /// the prompt does not share. Nothing is evaluated until [`Engine::advance`].
    pub fn start(&mut self, prompt: &[u32], opts: GenerateOptions) -> Result<Stream> {
        if opts.max_tokens == 0 {
            return Err(Error::arg("max_tokens", "must be at least 1"));
        }
        if prompt.is_empty() {
            return Err(Error::arg("prompt", "is empty"));
        }
        if prompt.len() > self.n_ctx {
            return Err(Error::PromptTooLong { prompt: prompt.len(), ctx: self.n_ctx });
        }
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= self.model.n_vocab) {
            return Err(Error::arg(
                "prompt",
                format!("token {bad} is outside the vocabulary of {}", self.model.n_vocab),
            ));
        }
        if let Some(n) = opts.logprobs.filter(|&n| n > MAX_TOP_LOGPROBS) {
            return Err(Error::arg("logprobs", format!("{n} alternatives; at most {MAX_TOP_LOGPROBS}")));
        }
        let sampler = Sampler::new(opts.sampling.clone())?;
        let matcher = match &opts.grammar {
            Some(g) => {
                let trie = match &self.trie {
                    Some(t) => t.clone(),
                    None => {
                        let t = Arc::new(TokenTrie::from_tokenizer(&self.tokenizer, self.model.n_vocab));
                        self.trie = Some(t.clone());
                        t
                    }
                };
                Some((Matcher::new(g.clone()), trie))
            }
            None => None,
        };
        let mut common = self.tokens.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        if common == prompt.len() {
            common -= 1; // re-evaluate the last token to get its logits
        }
        self.tokens.truncate(common);
        let sp = &opts.sampling;
        // a pool the GPU can sort: greedy, top-k within it, or a min-p floor that narrows it
        let poolable = sp.temperature == 0.0
            || (1..=crate::gpu::forward::SAMPLE_POOL).contains(&sp.top_k)
            || sp.min_p > 0.0;
        let gpu_pick = match self.backend.gpu() {
            // log-probabilities need the whole distribution: the logits come back each step (a
            // grammar's allowed set goes to the GPU instead)
            Some(_) if opts.logprobs.is_some() => GpuPick::Host,
            Some(_) if sp.is_plain_argmax() => GpuPick::Argmax,
            Some(_) if self.device_sampling && poolable => GpuPick::Sample,
            _ => GpuPick::Host,
        };
        Ok(Stream {
            decoder: StreamDecoder::new(&opts.stop),
            sampler,
            history: prompt.to_vec(),
            prompt: prompt.to_vec(),
            evaluated: common,
            reused: common,
            ids: Vec::new(),
            text: String::new(),
            pending: None,
            next: None,
            drawn: None,
            gpu_pick,
            opts,
            decoded: 0,
            times: [(self.clock)(), 0.0, 0.0],
            finish: None,
            tail_sent: false,
            logprobs: Vec::new(),
            matcher,
        })
    }

    /// Does the next piece of work of `s` and says what came of it: a chunk of the prompt
    /// evaluated, a generated token with its text, the held-back text at the end, or `None` once
    /// the generation is over. A caller may stop calling at any point ([`Stream::abort`]); the
    /// cache then holds the prompt and every token evaluated so far.
    pub async fn advance(&mut self, s: &mut Stream) -> Result<Option<Event>> {
        if s.prefilling() {
            let (a, n) = (s.evaluated, s.prompt.len());
            let b = n.min(a + UBATCH);
            let chunk = s.prompt[a..b].to_vec();
            self.eval_or_reset(&chunk, b == n).await?;
            s.evaluated = b;
            if b == n {
                s.times[1] = (self.clock)();
            }
            return Ok(Some(Event::Prefill { done: b, total: n }));
        }
        if s.finish.is_some() {
            return Ok(s.tail());
        }
        if let Some(tok) = s.pending.take() {
            if s.gpu_pick == GpuPick::Host {
                self.eval_or_reset(&[tok], true).await?;
            } else {
                let draw = (s.gpu_pick == GpuPick::Sample).then(|| s.sampler.device_draw(&s.history));
                // a grammar's allowed set goes with the step: the GPU picks within it
                let allowed = s.matcher.as_mut().map(|(m, trie)| self.allowed_words(m, trie));
                match self.gpu_step(tok, draw.as_ref(), allowed.as_deref()).await? {
                    Picked::Token(t) => s.next = Some(t),
                    Picked::Logits(l) => {
                        *self.backend.logits() = l;
                        s.drawn = draw.map(|d| d.r);
                    }
                }
            }
            s.decoded += 1;
        }
        let n_vocab = self.model.n_vocab;
        let logits = &mut self.backend.logits()[..n_vocab];
        // the raw distribution, before the sampler's penalties change the logits in place
        let raw = s.opts.logprobs.map(|top| (top, logits.to_vec()));
        if let (Some((m, _)), None) = (&mut s.matcher, s.next) {
            if !m.can_continue() {
                // complete, and nothing may follow: the end
                s.end(FinishReason::Stop, (self.clock)());
                return Ok(s.tail());
            }
            // greedy: when the best token is one the grammar allows, it is the best allowed one
            // too, so the mask (a walk of the vocabulary) is only needed when it is not
            if s.sampler.params.is_plain_argmax() && s.drawn.is_none() {
                let best = crate::sampling::argmax(logits);
                let ok = if self.tokenizer.is_eog(best) {
                    m.is_complete()
                } else {
                    m.allows(self.tokenizer.token_bytes(best, false))
                };
                if ok {
                    s.next = Some(best);
                }
            }
        }
        if let (Some((m, trie)), None) = (&mut s.matcher, s.next) {
            let mask = m.allowed(trie);
            let complete = m.is_complete();
            let mut any = false;
            for (t, l) in logits.iter_mut().enumerate() {
                let ok = mask.get(t / 64).is_some_and(|w| w >> (t % 64) & 1 == 1)
                    || complete && self.tokenizer.is_eog(t as u32);
                if ok {
                    any = true;
                } else {
                    *l = f32::NEG_INFINITY;
                }
            }
            if !any {
                return Err(Error::Grammar(
                    "no token of the vocabulary can continue the grammar here".into(),
                ));
            }
        }
        let tok = match (s.next.take(), s.drawn.take()) {
            (Some(t), _) => t,
            (None, Some(r)) => s.sampler.sample_drawn(logits, &s.history, r),
            (None, None) => s.sampler.sample(logits, &s.history),
        };
        let logprob = raw.map(|(top, l)| token_logprob(&l, tok, top));
        // under a grammar the end is only allowed once it is complete: it ends even ignore_eog
        if self.tokenizer.is_eog(tok) && (!s.opts.ignore_eog || s.matcher.is_some()) {
            s.end(FinishReason::Eog, (self.clock)());
            return Ok(s.tail());
        }
        if let Some((m, _)) = &mut s.matcher {
            m.accept(self.tokenizer.token_bytes(tok, false))?;
        }
        s.ids.push(tok);
        s.history.push(tok);
        let piece = s.decoder.push(self.tokenizer.token_bytes(tok, false));
        s.text.push_str(&piece);
        if s.decoder.stopped {
            s.end(FinishReason::Stop, (self.clock)());
        } else if s.ids.len() >= s.opts.max_tokens || self.tokens.len() >= self.n_ctx {
            s.end(FinishReason::Length, (self.clock)());
        } else {
            s.pending = Some(tok);
        }
        if let Some(lp) = &logprob {
            s.logprobs.push(lp.clone());
        }
        Ok(Some(Event::Token { text: piece, token: tok, logprob }))
    }

    /// Ends `s` at the caller's request (its summary then says `Aborted`).
    pub fn abort(&self, s: &mut Stream) {
        s.end(FinishReason::Aborted, (self.clock)());
    }

    /// Generates from `prompt` ids; `on_chunk(text, token)` receives each piece of final text as it
    /// is decided (the held-back tail comes with token `u32::MAX`) and returns `false` to stop.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn generate(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        on_chunk: &mut dyn FnMut(&str, u32) -> bool,
    ) -> Result<Generation> {
        let mut s = self.start(prompt, opts.clone())?;
        while let Some(ev) = pollster::block_on(self.advance(&mut s))? {
            let more = match ev {
                Event::Prefill { .. } => true,
                Event::Token { text, token, .. } => on_chunk(&text, token),
                Event::Text { text } => on_chunk(&text, u32::MAX),
            };
            if !more {
                self.abort(&mut s);
                break;
            }
        }
        Ok(s.into_generation())
    }

    /// The tokens `m` allows next as bits, 32 tokens a word (end-of-generation where complete).
    fn allowed_words(&self, m: &mut Matcher, trie: &TokenTrie) -> Vec<u32> {
        let mask = m.allowed(trie);
        let n = self.model.n_vocab;
        let mut words: Vec<u32> =
            mask.iter().flat_map(|&w| [w as u32, (w >> 32) as u32]).take(n.div_ceil(32)).collect();
        if m.is_complete() {
            for t in self.tokenizer.eog_tokens() {
                if let Some(w) = words.get_mut(t as usize / 32) {
                    *w |= 1 << (t % 32);
                }
            }
        }
        words
    }

    /// Evaluates `tok` on the GPU and picks its successor there: greedily, or with the sampler's
    /// `draw` (which may hand the logits back).
    async fn gpu_step(
        &mut self,
        tok: u32,
        draw: Option<&DeviceDraw>,
        allowed: Option<&[u32]>,
    ) -> Result<Picked> {
        match self.backend.step(tok, self.tokens.len(), draw, allowed).await {
            Ok(next) => {
                self.tokens.push(tok);
                Ok(next)
            }
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    /// Renders `messages` with the chat template (ending with the assistant's turn) and tokenizes.
    pub fn chat_prompt(&self, messages: &[Message]) -> Result<Vec<u32>> {
        let prompt = self.template.render(messages, true)?;
        self.tokenizer.encode(&prompt, true)
    }

    /// Renders `messages` with the chat template and generates the assistant's reply.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn chat(
        &mut self,
        messages: &[Message],
        opts: &GenerateOptions,
        on_chunk: &mut dyn FnMut(&str, u32) -> bool,
    ) -> Result<Generation> {
        let ids = self.chat_prompt(messages)?;
        self.generate(&ids, opts, on_chunk)
    }

    /// Perplexity over `ids` in non-overlapping windows of `ctx` tokens, each from an empty cache.
    /// Every predicted token is scored, or with `half` only the second half of each window
    /// (llama.cpp's `llama-perplexity`). Returns (perplexity, tokens scored).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn perplexity(&mut self, ids: &[u32], ctx: usize, half: bool) -> Result<(f64, usize)> {
        pollster::block_on(self.perplexity_async(ids, ctx, half))
    }

    /// [`Engine::perplexity`] for hosts that must await the GPU (the browser).
    pub async fn perplexity_async(&mut self, ids: &[u32], ctx: usize, half: bool) -> Result<(f64, usize)> {
        if ctx < 2 || ctx > self.n_ctx {
            return Err(Error::arg("ctx", format!("{ctx} must be in 2..={}", self.n_ctx)));
        }
        let windows = ids.len() / ctx;
        if windows == 0 {
            return Err(Error::arg("file", format!("{} tokens is less than one window of {ctx}", ids.len())));
        }
        let n_vocab = self.model.n_vocab;
        let first = if half { ctx / 2 } else { 0 };
        let (mut nll, mut count) = (0.0f64, 0usize);
        for w in 0..windows {
            self.reset();
            let mut window = ids[w * ctx..(w + 1) * ctx].to_vec();
            if self.tokenizer.add_bos {
                if let Some(b) = self.tokenizer.bos {
                    window[0] = b;
                }
            }
            // every row's logits but the last token's (nothing follows it), a batch at a time
            let batch = self.backend.batch();
            for (ci, chunk) in window[..ctx - 1].chunks(batch).enumerate() {
                let pos0 = ci * batch;
                let rows = self.backend.eval_all(&self.model, chunk, pos0, self.numerics).await?;
                for (r, row) in rows.chunks_exact(n_vocab).enumerate() {
                    if pos0 + r >= first {
                        let (l, c) = score(row, window[pos0 + r + 1] as usize);
                        nll += l;
                        count += c;
                    }
                }
                self.tokens.extend_from_slice(chunk);
            }
        }
        self.reset();
        if count == 0 {
            return Err(Error::arg("ctx", format!("{ctx} leaves no token to score")));
        }
        Ok(((nll / count as f64).exp(), count))
    }

    /// Σ −ln p(`reference` token | `prompt`, the reference tokens before it), teacher-forced (an
    /// evaluation's reference likelihood, [`crate::eval::run_item`] and the page's
    /// `engine.evaluate`). The prompt is evaluated as a generation's prefill is (the cached prefix
    /// it shares reused, its last token's logits kept), then every reference row's logits but the
    /// last's, a batch at a time. The cache then holds the prompt and the reference but its last
    /// token, so a generation from the same prompt reuses it.
    pub async fn reference_nll_async(&mut self, prompt: &[u32], reference: &[u32]) -> Result<f64> {
        let n_vocab = self.model.n_vocab;
        if prompt.is_empty() {
            return Err(Error::arg("prompt", "is empty"));
        }
        if reference.is_empty() {
            return Err(Error::arg("reference", "has no tokens"));
        }
        let need = prompt.len() + reference.len() - 1;
        if need > self.n_ctx {
            return Err(Error::arg(
                "reference",
                format!(
                    "the prompt ({} tokens) and the reference ({} tokens) need {need} positions, but \
                     the context holds {}",
                    prompt.len(),
                    reference.len(),
                    self.n_ctx
                ),
            ));
        }
        if let Some(&bad) = prompt.iter().chain(reference).find(|&&t| t as usize >= n_vocab) {
            return Err(Error::arg("tokens", format!("token {bad} is outside the vocabulary of {n_vocab}")));
        }
        // the prompt as `start` and `advance` evaluate it: after the shared prefix (its last token
        // again when all of it is cached), a UBATCH chunk at a time, the last chunk's logits kept
        let mut common = self.tokens.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        if common == prompt.len() {
            common -= 1;
        }
        self.tokens.truncate(common);
        let rest = &prompt[common..];
        for (i, chunk) in rest.chunks(UBATCH).enumerate() {
            let last = (i + 1) * UBATCH >= rest.len();
            self.eval_or_reset(chunk, last).await?;
        }
        let mut total = crate::eval::nll(&self.backend.logits()[..n_vocab], reference[0])?;
        // each reference token but the last predicts the next: every row's logits
        let batch = self.backend.batch();
        for (ci, chunk) in reference[..reference.len() - 1].chunks(batch).enumerate() {
            let pos = self.tokens.len();
            let rows = match self.backend.eval_all(&self.model, chunk, pos, self.numerics).await {
                Ok(rows) => rows,
                Err(e) => {
                    self.reset();
                    return Err(e);
                }
            };
            for (r, row) in rows.chunks_exact(n_vocab).enumerate() {
                total += crate::eval::nll(row, reference[ci * batch + r + 1])?;
            }
            self.tokens.extend_from_slice(chunk);
        }
        Ok(total)
    }
}

/// The negative log-likelihood of `target` under `logits` (softmax in f64), and 1 token scored.
fn score(logits: &[f32], target: usize) -> (f64, usize) {
    let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let lse = logits.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
    (lse - logits[target] as f64, 1)
}

#[cfg(test)]
mod tests {
    use super::Event;

    /// Every event serializes to the tagged JSON the page reads (`kind` and its fields).
    #[test]
    fn events_serialize_as_the_page_reads_them() {
        let j = |e: &Event| serde_json::to_string(e).unwrap();
        assert_eq!(j(&Event::Prefill { done: 1, total: 2 }), r#"{"kind":"prefill","done":1,"total":2}"#);
        assert_eq!(
            j(&Event::Token { text: "a".into(), token: 7, logprob: None }),
            r#"{"kind":"token","text":"a","token":7}"#
        );
        assert_eq!(j(&Event::Text { text: "é".into() }), r#"{"kind":"text","text":"é"}"#);
    }
}
