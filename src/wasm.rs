//! The browser binding: the only file that knows `wasm_bindgen`. It exposes a few primitives —
//! feed the model file chunk by chunk, tokenize, start a generation and advance it one event at a
//! time — and leaves the loop, abort signals, caching and the OpenAI-shaped API to the thin
//! JavaScript wrapper in `pkg/`. Options and events cross as JSON; ids cross as `Uint32Array`.
//!
//! Every call that needs the engine borrows it for its whole duration; a call that arrives while
//! another is still running (the wrapper serializes them, so only a misuse does this) fails with a
//! clear "busy" error instead of corrupting the conversation. Holding the `RefCell` borrow across
//! the GPU's awaits is that design, hence the first allow below; the second: on wasm `Gpu` is not
//! `Send` (the browser's WebGPU objects live on one thread), but `GpuForward` takes an `Arc`.
#![allow(clippy::await_holding_refcell_ref, clippy::arc_with_non_send_sync)]

use crate::chat::Message;
use crate::error::Error;
use crate::gguf::GgufStream;
use crate::gpu::forward::GpuForward;
use crate::gpu::upload::GpuWeights;
use crate::gpu::Gpu;
use crate::grammar::Grammar;
use crate::sampling::SamplingParams;
use crate::session::{Engine, GenerateOptions, Stream};
use crate::weights::GgufSourceBuilder;
use serde::Deserialize;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

fn js(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

fn now() -> f64 {
    js_sys::Date::now() / 1000.0
}

/// A WebGPU device opened before the download, so the loader can stream weights into it.
#[wasm_bindgen]
pub struct GpuDevice {
    gpu: Arc<Gpu>,
}

/// Opens the default WebGPU adapter's device.
#[wasm_bindgen(js_name = openGpu)]
pub async fn open_gpu() -> Result<GpuDevice, JsError> {
    Ok(GpuDevice { gpu: Arc::new(Gpu::new().await.map_err(js)?) })
}

#[wasm_bindgen]
impl GpuDevice {
    /// "adapter (backend, type)".
    pub fn describe(&self) -> String {
        self.gpu.describe()
    }
}

/// The threaded build's CPU pool (its workers are Web Workers `pkg/thread.js` starts on the
/// shared memory): the epoch a worker started now belongs to.
#[wasm_bindgen(js_name = threadEpoch)]
pub fn thread_epoch() -> u32 {
    crate::cpu::worker_epoch() as u32
}

/// Runs the calling Web Worker as a CPU worker until `stopThreads` (returns at once if `epoch`
/// was already stopped). False in a build without shared memory.
#[wasm_bindgen(js_name = threadWork)]
pub fn thread_work(epoch: u32) -> bool {
    crate::cpu::worker_main(epoch as usize)
}

/// Sends every CPU worker out of its loop (between generations; never blocks).
#[wasm_bindgen(js_name = stopThreads)]
pub fn stop_threads() {
    crate::cpu::stop_workers()
}

/// Threads the CPU path uses now: the caller and the workers in their loop.
#[wasm_bindgen(js_name = cpuThreads)]
pub fn cpu_threads() -> u32 {
    crate::cpu::threads() as u32
}

/// Parses a GGUF file as it arrives. Without a device, tensors are kept in their file encoding
/// (the CPU path); with one, each large matrix goes to the GPU row range by row range as its
/// bytes arrive (`gpu/upload.rs`), and only vectors stay in wasm memory.
#[wasm_bindgen]
pub struct Loader {
    stream: GgufStream,
    builder: GgufSourceBuilder,
    bytes: u64,
    weights: Option<GpuWeights>,
}

#[wasm_bindgen]
impl Loader {
    /// `len`: the file's size when known (lets truncation be reported precisely); `gpu`: stream
    /// the weights to this device (the engine then runs only there).
    #[wasm_bindgen(constructor)]
    pub fn new(len: Option<f64>, gpu: Option<GpuDevice>) -> Loader {
        let stream = GgufStream::new(len.map(|l| l as u64));
        Loader {
            stream: if gpu.is_some() { stream.piecewise(GpuWeights::takes) } else { stream },
            builder: GgufSourceBuilder::default(),
            bytes: 0,
            weights: gpu.map(|d| GpuWeights::new(d.gpu)),
        }
    }

    /// Feeds the next chunk of the file.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        for ev in self.stream.push(chunk).map_err(js)? {
            match &mut self.weights {
                Some(w) => self.builder.event_with(ev, w).map_err(js)?,
                None => self.builder.event(ev).map_err(js)?,
            }
        }
        self.bytes += chunk.len() as u64;
        Ok(())
    }

    /// Bytes fed so far.
    pub fn bytes(&self) -> f64 {
        self.bytes as f64
    }

    /// Builds the engine (CPU path) once the whole file was fed; `n_ctx` 0 picks a default;
    /// `numerics` is the CPU path's rounding, "exact" or "llamacpp".
    pub fn finish(self, n_ctx: u32, numerics: &str) -> Result<WispEngine, JsError> {
        let numerics = crate::cpu::Numerics::parse(numerics).ok_or_else(|| {
            js(Error::arg("numerics", format!("'{numerics}' (expected 'exact' or 'llamacpp')")))
        })?;
        self.stream.finish().map_err(js)?;
        let src = self.builder.finish(self.bytes).map_err(js)?;
        let mut engine = Engine::from_gguf(src, n_ctx as usize).map_err(js)?;
        engine.set_clock(now);
        engine.set_numerics(numerics);
        let inner = Inner { engine, stream: None, streamed: self.weights };
        Ok(WispEngine { inner: Rc::new(RefCell::new(inner)) })
    }
}

struct Inner {
    engine: Engine,
    stream: Option<Stream>,
    /// Weights the loader streamed to the GPU, until `useWebGpu` builds the forward pass.
    streamed: Option<GpuWeights>,
}

/// A loaded model and its one conversation.
#[wasm_bindgen]
pub struct WispEngine {
    inner: Rc<RefCell<Inner>>,
}

/// Generation options as the JS wrapper sends them (camelCase; every field optional).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
struct Opts {
    max_tokens: Option<usize>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    min_p: Option<f32>,
    repetition_penalty: Option<f32>,
    repeat_last_n: Option<usize>,
    frequency_penalty: Option<f32>,
    presence_penalty: Option<f32>,
    seed: Option<u64>,
    stop: Vec<String>,
    ignore_eog: bool,
    /// Alternatives reported with each token's log-probability (none: no log-probabilities).
    logprobs: Option<usize>,
    /// A GBNF grammar the output must follow.
    grammar: Option<String>,
    /// A JSON Schema (as JSON text, its property order kept) the output must follow.
    json_schema: Option<String>,
}

impl Opts {
    fn parse(json: &str) -> Result<GenerateOptions, JsError> {
        let o: Opts = serde_json::from_str(json).map_err(|e| JsError::new(&format!("options: {e}")))?;
        let d = SamplingParams::default();
        Ok(GenerateOptions {
            max_tokens: o.max_tokens.unwrap_or(256),
            sampling: SamplingParams {
                temperature: o.temperature.unwrap_or(d.temperature),
                top_k: o.top_k.unwrap_or(d.top_k),
                top_p: o.top_p.unwrap_or(d.top_p),
                min_p: o.min_p.unwrap_or(d.min_p),
                repetition_penalty: o.repetition_penalty.unwrap_or(d.repetition_penalty),
                repeat_last_n: o.repeat_last_n.unwrap_or(d.repeat_last_n),
                frequency_penalty: o.frequency_penalty.unwrap_or(d.frequency_penalty),
                presence_penalty: o.presence_penalty.unwrap_or(d.presence_penalty),
                seed: o.seed.unwrap_or(d.seed),
            },
            stop: o.stop,
            ignore_eog: o.ignore_eog,
            logprobs: o.logprobs,
            grammar: match (o.grammar, o.json_schema) {
                (Some(_), Some(_)) => return Err(JsError::new("give grammar or jsonSchema, not both")),
                (Some(text), None) => Some(std::sync::Arc::new(Grammar::parse(&text).map_err(js)?)),
                (None, Some(schema)) => {
                    Some(std::sync::Arc::new(Grammar::from_json_schema(&schema).map_err(js)?))
                }
                (None, None) => None,
            },
        })
    }
}

#[wasm_bindgen]
impl WispEngine {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> Result<T, JsError>) -> Result<T, JsError> {
        let mut inner = self.inner.try_borrow_mut().map_err(|_| busy())?;
        f(&mut inner)
    }

    /// Moves the forward pass to WebGPU: onto the weights the loader streamed there, or else the
    /// default adapter, uploading the model now; the conversation is dropped. Resolves to the
    /// adapter's description.
    #[wasm_bindgen(js_name = useWebGpu)]
    pub fn use_webgpu(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let streamed = inner.try_borrow_mut().map_err(|_| busy())?.streamed.take();
            let gf = match streamed {
                Some(mut w) => {
                    let i = inner.try_borrow().map_err(|_| busy())?;
                    GpuForward::with_weights(&i.engine.model, i.engine.n_ctx(), &mut w).await.map_err(js)?
                }
                None => {
                    let gpu = Arc::new(Gpu::new().await.map_err(js)?);
                    // a shared borrow while uploading: a concurrent mutating call fails as busy
                    let i = inner.try_borrow().map_err(|_| busy())?;
                    GpuForward::new(gpu, &i.engine.model, i.engine.n_ctx()).await.map_err(js)?
                }
            };
            let adapter = gf.adapter();
            let mut i = inner.try_borrow_mut().map_err(|_| busy())?;
            i.stream = None;
            i.engine.use_gpu(gf).map_err(js)?;
            Ok(JsValue::from_str(&adapter))
        })
    }

    /// Model facts as JSON (architecture, parameters, quantization, context, backend, …).
    pub fn info(&self) -> Result<String, JsError> {
        self.with(|i| {
            let mut info = serde_json::to_value(i.engine.info()).map_err(|e| JsError::new(&e.to_string()))?;
            if let Some(gf) = i.engine.gpu() {
                info["backend"] = "webgpu".into();
                info["adapter"] = gf.adapter().into();
            } else {
                info["backend"] = "cpu".into();
                info["numerics"] = i.engine.numerics().name().into();
            }
            Ok(info.to_string())
        })
    }

    /// Live counts as JSON: GPU buffers and bind groups created so far (all at load, so flat over
    /// any number of generations) and the tokens held in the KV cache.
    pub fn stats(&self) -> Result<String, JsError> {
        self.with(|i| {
            let (buffers, bind_groups) = i.engine.gpu().map_or((0, 0), |g| g.gpu().created());
            Ok(serde_json::json!({"gpu_buffers": buffers, "gpu_bind_groups": bind_groups,
                "cached_tokens": i.engine.cached_tokens().len()})
            .to_string())
        })
    }

    /// Token ids of `text`; special tokens written in it become those tokens.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, JsError> {
        self.with(|i| i.engine.encode(text).map_err(js))
    }

    /// Text of `ids` (special tokens rendered when `special`).
    pub fn detokenize(&self, ids: &[u32], special: bool) -> Result<String, JsError> {
        self.with(|i| {
            let n = i.engine.tokenizer.vocab_size();
            if let Some(bad) = ids.iter().find(|&&t| t as usize >= n) {
                return Err(JsError::new(&format!("token {bad} is outside the vocabulary of {n}")));
            }
            Ok(i.engine.tokenizer.decode(ids, special))
        })
    }

    /// A token's own bytes (specials as their text): what a log-probability's alternatives show.
    #[wasm_bindgen(js_name = tokenBytes)]
    pub fn token_bytes(&self, id: u32) -> Result<Vec<u8>, JsError> {
        self.with(|i| {
            let n = i.engine.tokenizer.vocab_size();
            if id as usize >= n {
                return Err(JsError::new(&format!("token {id} is outside the vocabulary of {n}")));
            }
            Ok(i.engine.tokenizer.token_bytes(id, true).to_vec())
        })
    }

    /// Renders `messages_json` (`[{role, content}]`) with the model's chat template, ending with
    /// the assistant's turn, and tokenizes it.
    #[wasm_bindgen(js_name = chatPrompt)]
    pub fn chat_prompt(&self, messages_json: &str) -> Result<Vec<u32>, JsError> {
        #[derive(Deserialize)]
        struct M {
            role: String,
            content: String,
        }
        let ms: Vec<M> =
            serde_json::from_str(messages_json).map_err(|e| JsError::new(&format!("messages: {e}")))?;
        let ms: Vec<Message> = ms.iter().map(|m| Message::new(&m.role, &m.content)).collect();
        self.with(|i| i.engine.chat_prompt(&ms).map_err(js))
    }

    /// Ids currently in the KV cache (the conversation so far).
    #[wasm_bindgen(js_name = cachedTokens)]
    pub fn cached_tokens(&self) -> Result<Vec<u32>, JsError> {
        self.with(|i| Ok(i.engine.cached_tokens().to_vec()))
    }

    /// Context length in tokens.
    #[wasm_bindgen(js_name = nCtx)]
    pub fn n_ctx(&self) -> Result<u32, JsError> {
        self.with(|i| Ok(i.engine.n_ctx() as u32))
    }

    /// Forgets the conversation (and any generation in progress).
    pub fn reset(&self) -> Result<(), JsError> {
        self.with(|i| {
            i.stream = None;
            i.engine.reset();
            Ok(())
        })
    }

    /// Starts generating from `prompt` ids with `opts_json` (see the wrapper's options); a
    /// generation already in progress is ended first.
    pub fn begin(&self, prompt: &[u32], opts_json: &str) -> Result<(), JsError> {
        let opts = Opts::parse(opts_json)?;
        self.with(|i| {
            i.stream = None;
            i.stream = Some(i.engine.start(prompt, opts).map_err(js)?);
            Ok(())
        })
    }

    /// Advances the current generation by one event; resolves to the event as JSON
    /// (`{"kind":"prefill","done","total"}`, `{"kind":"token","text","token"}`,
    /// `{"kind":"text", …}`) or to `null` when it is over.
    pub fn next(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut guard = inner.try_borrow_mut().map_err(|_| busy())?;
            let i = &mut *guard;
            let Some(s) = i.stream.as_mut() else {
                return Err(JsError::new(
                    "next() called with no generation in progress (call begin() first)",
                )
                .into());
            };
            let ev = i.engine.advance(s).await;
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    i.stream = None;
                    return Err(js(e).into());
                }
            };
            Ok(match ev {
                Some(ev) => {
                    JsValue::from_str(&serde_json::to_string(&ev).map_err(|e| JsError::new(&e.to_string()))?)
                }
                None => JsValue::NULL,
            })
        })
    }

    /// Ends the current generation (at the caller's request, or after `next` returned `null`)
    /// and returns its summary as JSON: ids, text, finish reason and rates.
    pub fn end(&self, aborted: bool) -> Result<String, JsError> {
        self.with(|i| {
            let Some(mut s) = i.stream.take() else {
                return Err(JsError::new("end() called with no generation in progress"));
            };
            if aborted {
                i.engine.abort(&mut s);
            }
            serde_json::to_string(&s.into_generation()).map_err(|e| JsError::new(&e.to_string()))
        })
    }

    /// Debugging: evaluates `ids` but the last on WebGPU from position 0, then traces the last
    /// token's decode step dispatch by dispatch (`GpuForward::trace_step`); resolves to
    /// `[names_json, widths_json, Float32Array]`. The conversation is dropped.
    #[wasm_bindgen(js_name = traceStep)]
    pub fn trace_step(&self, ids: Vec<u32>) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let (names, values, widths) = {
                let i = inner.try_borrow().map_err(|_| busy())?;
                let gf = i.engine.gpu().ok_or_else(|| JsError::new("traceStep needs the WebGPU backend"))?;
                let (&last, body) = ids.split_last().ok_or_else(|| JsError::new("no ids"))?;
                gf.prefill(body, 0).map_err(js)?;
                let (names, values) = gf.trace_step(last, body.len()).await.map_err(js)?;
                (names, values, gf.trace_widths())
            };
            inner.try_borrow_mut().map_err(|_| busy())?.engine.reset();
            let out = js_sys::Array::new();
            out.push(&JsValue::from_str(&serde_json::to_string(&names).unwrap_or_default()));
            out.push(&JsValue::from_str(&serde_json::to_string(&widths).unwrap_or_default()));
            out.push(&js_sys::Float32Array::from(&values[..]));
            Ok(out.into())
        })
    }

    /// Perplexity of `ids` over windows of `ctx` (every predicted token scored unless `half`);
    /// resolves to `{"ppl", "tokens_scored"}` as JSON.
    pub fn perplexity(&self, ids: Vec<u32>, ctx: u32, half: bool) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut i = inner.try_borrow_mut().map_err(|_| busy())?;
            i.stream = None;
            let (ppl, n) = i.engine.perplexity_async(&ids, ctx as usize, half).await.map_err(js)?;
            Ok(JsValue::from_str(&serde_json::json!({"ppl": ppl, "tokens_scored": n}).to_string()))
        })
    }

    /// Checks an evaluation set and prepares it as `wisp eval` does (`wisp::eval::parse_item` on
    /// each of `items_json`'s list, named `item N` from 1 in errors, then `wisp::eval::prepare`:
    /// rendered with the chat template where the model has one, a plain prompt continued as
    /// written where not, `messages` refused there). Returns JSON: `{"chat_template", "items":
    /// [{"line", "id"?, "reference", "prompt": ids, "reference_ids": ids}]}`.
    #[wasm_bindgen(js_name = evalPrepare)]
    pub fn eval_prepare(&self, items_json: &str) -> Result<String, JsError> {
        let v: serde_json::Value =
            serde_json::from_str(items_json).map_err(|e| JsError::new(&format!("items: {e}")))?;
        let list = v
            .as_array()
            .ok_or_else(|| JsError::new("items must be a list of {prompt or messages, reference} objects"))?;
        if list.is_empty() {
            return Err(JsError::new("items: there is nothing to evaluate (the list is empty)"));
        }
        let items = list
            .iter()
            .enumerate()
            .map(|(n, v)| crate::eval::parse_item(v, &format!("item {}", n + 1), n + 1))
            .collect::<crate::Result<Vec<_>>>()
            .map_err(js)?;
        self.with(|i| {
            let prepared = crate::eval::prepare(&i.engine, &items).map_err(js)?;
            let out: Vec<serde_json::Value> = items
                .iter()
                .zip(prepared)
                .map(|(it, p)| {
                    let mut o = serde_json::json!({"line": it.line, "reference": it.reference,
                        "prompt": p.prompt, "reference_ids": p.reference});
                    if let Some(id) = &it.id {
                        o["id"] = id.clone();
                    }
                    o
                })
                .collect();
            let chat = crate::eval::uses_chat_template(&i.engine);
            Ok(serde_json::json!({"chat_template": chat, "items": out}).to_string())
        })
    }

    /// The reference's negative log-likelihood given the prompt, teacher-forced
    /// (`Engine::reference_nll_async`); the cache then holds the prompt, so a generation from it
    /// reuses it. Resolves to a number.
    #[wasm_bindgen(js_name = referenceNll)]
    pub fn reference_nll(&self, prompt: Vec<u32>, reference: Vec<u32>) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut i = inner.try_borrow_mut().map_err(|_| busy())?;
            i.stream = None;
            let nll = i.engine.reference_nll_async(&prompt, &reference).await.map_err(js)?;
            Ok(JsValue::from_f64(nll))
        })
    }

    /// Scores an evaluation (`wisp::eval::report`): `outcomes_json` is a list of outcomes as
    /// `wisp eval --json` writes an item's first fields, and `nlls` each one's reference NLL
    /// (exactly, beside the JSON). Returns the report as JSON (`items`, `corpus`) with `table`, the
    /// CLI's table.
    #[wasm_bindgen(js_name = evalReport)]
    pub fn eval_report(&self, outcomes_json: &str, nlls: &[f64]) -> Result<String, JsError> {
        let mut outcomes: Vec<crate::eval::Outcome> =
            serde_json::from_str(outcomes_json).map_err(|e| JsError::new(&format!("outcomes: {e}")))?;
        if nlls.len() != outcomes.len() {
            return Err(JsError::new(&format!("{} outcomes but {} NLLs", outcomes.len(), nlls.len())));
        }
        for (o, &nll) in outcomes.iter_mut().zip(nlls) {
            o.reference_nll = nll;
        }
        let report = crate::eval::report(&outcomes).map_err(js)?;
        let mut j = serde_json::to_value(&report).map_err(|e| JsError::new(&e.to_string()))?;
        j["table"] = report.table().into();
        Ok(j.to_string())
    }
}

fn busy() -> JsError {
    JsError::new("the engine is busy with another call (await each call before the next)")
}
