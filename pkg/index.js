// wisp-llm: the thin JavaScript wrapper over the wasm engine (pkg/generated/, built by `make pkg`).
// The engine does the work; this file turns its primitives (feed bytes, begin, next, end) into the
// public API: streaming loads with progress, caching and abort; async-iterable generation; an
// OpenAI-shaped chat API; and the same API in a Web Worker (createWorkerEngine, worker.js).

const CACHE_NAME = 'wisp-models-v1';
let wasmReady = null;
let wasmMemory = null;
/** The chosen build's wasm-bindgen module (Loader, openGpu) and its name for `info.wasmBuild`. */
let glue = null;
let wasmBuild = null;

// The engine ships in two builds: SIMD128, and SIMD128 with relaxed SIMD, whose
// `i32x4.relaxed_dot_i8x16_i7x16_add_s` makes a 4-bit block's int8 dot product (the 'llamacpp'
// numerics) two instructions; both compute the same bits. An engine without relaxed SIMD rejects
// that module whole, so this probe, a function using the instruction, decides which to load.
const RELAXED_SIMD_PROBE = (() => {
  const v = [0xfd, 0x0c, ...new Array(16).fill(0)]; // v128.const 0
  const body = [0x00, ...v, ...v, ...v, 0xfd, 0x93, 0x02, 0x0b];
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type: () -> v128
    0x03, 0x02, 0x01, 0x00, // one function
    0x0a, body.length + 2, 0x01, body.length, ...body]);
})();

function hasRelaxedSimd() {
  try {
    return WebAssembly.validate(RELAXED_SIMD_PROBE);
  } catch {
    return false;
  }
}

/** True where a page may share memory with workers: cross-origin isolated (COOP/COEP served),
 * SharedArrayBuffer and workers present. */
function canShareMemory() {
  return globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer !== 'undefined' && typeof Worker !== 'undefined';
}

const THREADED = 'simd128+relaxed+threads';
/** The threaded build's module, memory and glue URL, for its workers (pkg/thread.js). */
let threadShare = null;

/** Loads and instantiates the wasm module once per realm: the threaded build where memory can be
 * shared and the engine validates relaxed SIMD, else the relaxed-SIMD build where it validates,
 * else SIMD128 (a `wasmUrl` naming a plain build without the others' URLs keeps to it). */
function ready(wasmUrl, relaxedWasmUrl, threadsWasmUrl) {
  wasmReady ??= (async () => {
    if (canShareMemory() && hasRelaxedSimd() && (threadsWasmUrl || !wasmUrl)) {
      try {
        const glueUrl = new URL('./generated/threads/wisp.js', import.meta.url).href;
        const g = await import(glueUrl);
        const res = await fetch(threadsWasmUrl ?? new URL('./generated/threads/wisp_bg.wasm', import.meta.url));
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        // compiled here, not by the glue: the workers instantiate this same module
        const module = await WebAssembly.compile(await res.arrayBuffer());
        const exports = await g.default({ module_or_path: module });
        threadShare = { module, memory: exports.memory, glueUrl };
        [glue, wasmBuild, wasmMemory] = [g, THREADED, exports.memory];
        return exports;
      } catch {
        // a bundle without the threaded build: a single-thread one below
      }
    }
    if (hasRelaxedSimd() && (relaxedWasmUrl || !wasmUrl)) {
      try {
        const g = await import('./generated/relaxed/wisp.js');
        const exports = await g.default({ module_or_path: relaxedWasmUrl ?? new URL('./generated/relaxed/wisp_bg.wasm', import.meta.url) });
        [glue, wasmBuild, wasmMemory] = [g, 'simd128+relaxed', exports.memory];
        return exports;
      } catch {
        // a bundle without the relaxed build: the plain one below
      }
    }
    const g = await import('./generated/wisp.js');
    const exports = await g.default({ module_or_path: wasmUrl ?? new URL('./generated/wisp_bg.wasm', import.meta.url) });
    [glue, wasmBuild, wasmMemory] = [g, 'simd128', exports.memory];
    return exports;
  })();
  return wasmReady;
}

/**
 * The threaded build's CPU workers: one set per realm (the module's pool is), started by the
 * first CPU engine that asks for more than one thread, shared by the engines loaded while it
 * runs, and stopped and terminated when the last of them is disposed.
 */
const cpuThreads = {
  workers: [],
  users: 0,
  starting: null,
  /** Starts `n - 1` workers unless some run or are starting; resolves to the threads the CPU
   * path then uses. */
  async acquire(n) {
    this.users++;
    if (!this.starting && this.workers.length === 0 && n > 1) this.starting = this.start(n).finally(() => { this.starting = null; });
    await this.starting;
    return glue.cpuThreads();
  },
  async start(n) {
    const epoch = glue.threadEpoch();
    const workers = [];
    const started = [];
    for (let i = 0; i < n - 1; i++) {
      const w = new Worker(new URL('./thread.js', import.meta.url), { type: 'module', name: `wisp-cpu-${i}` });
      started.push(new Promise((resolve) => {
        // a worker that cannot start (its script refused, the module not instantiable there)
        // or does not answer within 10 s is dropped: the engine runs on the threads that did
        const fail = () => { w.terminate(); resolve(false); };
        const timer = setTimeout(fail, 10_000);
        w.onmessage = ({ data }) => {
          if (data.type === 'ready') { clearTimeout(timer); resolve(true); }
          else if (data.type === 'exited') w.exited?.();
          else if (data.type === 'error') { clearTimeout(timer); fail(); }
        };
        w.onerror = () => { clearTimeout(timer); fail(); };
      }));
      w.postMessage({ ...threadShare, epoch });
      workers.push(w);
    }
    const ok = await Promise.all(started);
    this.workers = workers.filter((_, i) => ok[i]);
    // each ready worker enters the pool's loop right after saying so
    const until = performance.now() + 2000;
    while (glue.cpuThreads() < this.workers.length + 1 && performance.now() < until) await breathe();
  },
  /** One engine fewer; the last one's release stops the workers, waits for them to free their
   * stacks (briefly), and terminates them. */
  async release() {
    await this.starting;
    if (--this.users > 0 || this.workers.length === 0) return;
    const workers = this.workers;
    this.workers = [];
    const exited = workers.map((w) => new Promise((resolve) => { w.exited = resolve; setTimeout(resolve, 2000); }));
    glue.stopThreads();
    await Promise.all(exited);
    for (const w of workers) w.terminate();
  },
};

/** The `threads` option: a whole number from 1 (default: the machine's logical cores, at most 8). */
function threadCount(threads) {
  if (threads === undefined || threads === null) return Math.max(1, Math.min(8, globalThis.navigator?.hardwareConcurrency ?? 1));
  if (!Number.isSafeInteger(threads) || threads < 1 || threads > 64) throw new RangeError(`wisp: threads must be an integer from 1 to 64, got ${threads}`);
  return threads;
}

/** Whether an engine of `info` holds the page's CPU workers: the threaded build's CPU engines. */
function usesCpuWorkers(info) {
  return info.wasmBuild === THREADED && info.backend === 'cpu';
}

/** The wasm memory's size now (it only grows), or null before the module is loaded. */
function wasmMemoryBytes() {
  return wasmMemory?.buffer.byteLength ?? null;
}

/** An AbortError (or the signal's own reason). */
function abortError(signal) {
  return signal?.reason ?? new DOMException('The operation was aborted.', 'AbortError');
}

/** Yields to the event loop (a macrotask), so abort listeners and rendering run between tokens. */
function breathe() {
  return new Promise((resolve) => {
    if (typeof MessageChannel === 'undefined') return setTimeout(resolve, 0);
    const ch = new MessageChannel();
    ch.port1.onmessage = () => { ch.port1.close(); resolve(); };
    ch.port2.postMessage(0);
  });
}

/** `promise`, or an AbortError as soon as `signal` aborts, whichever comes first. */
function untilAborted(promise, signal) {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Runs calls one at a time: the engine holds one conversation. */
class Queue {
  #tail = Promise.resolve();
  /** Runs `fn` after every earlier call. With `signal`, an abort while the call waits its turn
   * rejects it at once with an AbortError, and `fn` never runs. */
  run(fn, signal) {
    const p = this.#tail.then(() => {
      if (signal?.aborted) throw abortError(signal);
      return fn();
    });
    this.#tail = p.catch(() => {});
    return untilAborted(p, signal);
  }
}

function isUrl(source) {
  return typeof source === 'string' || source instanceof URL;
}

/** Cache API storage for model files, keyed by absolute URL. */
async function openCache() {
  if (typeof caches === 'undefined') throw new Error('wisp: the Cache API is not available here (a secure context is needed); pass cache: false');
  return caches.open(CACHE_NAME);
}

async function checkSpace(bytes) {
  if (!bytes || !navigator.storage?.estimate) return;
  const { quota = 0, usage = 0 } = await navigator.storage.estimate();
  const free = quota - usage;
  if (free < bytes * 1.05) {
    const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
    throw new Error(`wisp: not enough storage to cache the model: it needs ${mb(bytes)}, ${mb(free)} is free; free some space or pass cache: false`);
  }
}

/**
 * Opens `source` as a byte stream and its size when known. For URLs with `cache`, a cached copy
 * is used when present; otherwise the download is stored while it streams (an interrupted
 * download stores nothing).
 */
async function openSource(source, { cache, signal }) {
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    const bytes = source instanceof ArrayBuffer ? new Uint8Array(source) : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
    return { stream: new Blob([bytes]).stream(), size: bytes.byteLength, cached: false };
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    return { stream: source.stream(), size: source.size, cached: false };
  }
  if (typeof ReadableStream !== 'undefined' && source instanceof ReadableStream) {
    return { stream: source, size: null, cached: false };
  }
  if (!isUrl(source)) throw new TypeError('wisp: source must be a URL, File/Blob, ArrayBuffer or ReadableStream');
  const url = new URL(source, globalThis.location?.href).href;
  // the cache is an optimisation: when it cannot be opened or written (no Cache API, storage
  // blocked, quota exceeded) the model still loads, and `info.cacheError` says why it was not kept
  let store = null;
  let cacheError = null;
  if (cache) {
    try {
      store = await openCache();
      const hit = await store.match(url);
      if (hit?.body) {
        const size = Number(hit.headers.get('content-length')) || null;
        return { stream: hit.body, size, cached: true };
      }
    } catch (e) {
      store = null;
      cacheError = `${e.name ?? 'Error'}: ${e.message ?? e}`;
    }
  }
  const res = await fetch(url, { signal });
  if (!res.ok || !res.body) throw new Error(`wisp: could not download ${url}: HTTP ${res.status}`);
  const size = Number(res.headers.get('content-length')) || null;
  if (!store) return { stream: res.body, size, cached: false, stored: Promise.resolve(cacheError) };
  try {
    await checkSpace(size);
  } catch (e) {
    res.body.cancel().catch(() => {}); // do not go on downloading a file nobody reads
    throw e;
  }
  navigator.storage?.persist?.().catch(() => {});
  const [mine, theirs] = res.body.tee();
  const headers = { 'content-type': 'application/octet-stream' };
  if (size) headers['content-length'] = String(size);
  // stored only if the whole body arrives; an aborted download rejects this and stores nothing.
  // Resolves to null, or to why the file could not be stored (the load goes on regardless).
  const stored = store.put(url, new Response(theirs, { headers })).then(() => null, (e) => {
    theirs.cancel().catch(() => {}); // do not buffer a branch nobody reads
    return signal?.aborted ? null : `${e.name ?? 'Error'}: ${e.message ?? e}`;
  });
  return { stream: mine, size, cached: false, stored };
}

/** Integer options and their least value; the other numeric options need only be finite. */
const INTEGER_OPTIONS = { maxTokens: 1, topK: 0, repeatLastN: 0, seed: 0 };

/**
 * Generation options as the engine takes them. Numbers are checked here, where the caller's own
 * name for them is known: NaN, Infinity or a string would otherwise become JSON `null` and
 * silently mean "the default".
 */
function wasmOptions(o = {}) {
  const out = {};
  const map = {
    maxTokens: 'maxTokens', temperature: 'temperature', topK: 'topK', topP: 'topP', minP: 'minP',
    repetitionPenalty: 'repetitionPenalty', repeatLastN: 'repeatLastN', frequencyPenalty: 'frequencyPenalty',
    presencePenalty: 'presencePenalty', seed: 'seed', ignoreEos: 'ignoreEog',
  };
  for (const [k, v] of Object.entries(map)) {
    const x = o[k];
    if (x === undefined || x === null) continue;
    if (k === 'ignoreEos') { out[v] = Boolean(x); continue; }
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new RangeError(`wisp: ${k} must be a finite number, got ${typeof x === 'number' ? x : JSON.stringify(x)}`);
    const least = INTEGER_OPTIONS[k];
    if (least !== undefined && (!Number.isSafeInteger(x) || x < least)) {
      throw new RangeError(`wisp: ${k} must be an integer of at least ${least}, got ${x}`);
    }
    out[v] = x;
  }
  // constrained output: a GBNF grammar (llama.cpp's format) or a JSON Schema (converted to one)
  if (o.grammar !== undefined && o.grammar !== null) {
    if (typeof o.grammar !== 'string') throw new TypeError('wisp: grammar must be GBNF text (a string)');
    if (o.jsonSchema !== undefined && o.jsonSchema !== null) throw new TypeError('wisp: give grammar or jsonSchema, not both');
    out.grammar = o.grammar;
  } else if (o.jsonSchema !== undefined && o.jsonSchema !== null) {
    // as JSON text: the property order the caller wrote is the order the output takes
    const schema = typeof o.jsonSchema === 'string' ? o.jsonSchema : JSON.stringify(o.jsonSchema);
    if (typeof schema !== 'string') throw new TypeError('wisp: jsonSchema must be a JSON Schema object');
    out.jsonSchema = schema;
  }
  // log-probabilities: `logprobs: true` with `topLogprobs` alternatives (0 to 20)
  if (o.logprobs) {
    const n = o.topLogprobs ?? 0;
    if (!Number.isSafeInteger(n) || n < 0 || n > 20) throw new RangeError(`wisp: topLogprobs must be an integer from 0 to 20, got ${n}`);
    out.logprobs = n;
  } else if (o.topLogprobs !== undefined && o.topLogprobs !== null) {
    throw new TypeError('wisp: topLogprobs needs logprobs: true');
  }
  if (o.stop !== undefined && o.stop !== null) {
    const stop = Array.isArray(o.stop) ? o.stop : [o.stop];
    if (!stop.every((x) => typeof x === 'string')) throw new TypeError('wisp: stop must be a string or an array of strings');
    out.stop = stop;
  }
  return out;
}

const FINISH = { eog: 'stop', stop: 'stop', length: 'length', aborted: 'abort' };

export class Engine {
  #wasm;
  #queue = new Queue();
  #info;
  #last = null;

  constructor(wasm, info) {
    this.#wasm = wasm;
    this.#info = info;
    this.chat = { completions: { create: (req) => this.#chatCreate(req) } };
  }

  /**
   * Loads a GGUF model. `source`: URL, File/Blob, ArrayBuffer or ReadableStream.
   * Options: backend ('auto' | 'webgpu' | 'cpu'), onProgress({loaded, total, phase}), signal,
   * cache (URLs only; default true), ctx (tokens; 0 = the model's default), numerics (the CPU
   * path's rounding: 'exact' (default) or 'llamacpp', int8 activations as llama.cpp), threads
   * (the CPU path's threads in the threaded build, loaded in cross-origin-isolated pages; default
   * the machine's logical cores, at most 8), wasmUrl, relaxedWasmUrl and threadsWasmUrl (where a
   * bundler moved the three builds' .wasm files).
   */
  static async load(source, opts = {}) {
    const { backend = 'auto', signal, numerics = 'exact' } = opts;
    if (!['auto', 'webgpu', 'cpu'].includes(backend)) throw new TypeError(`wisp: unknown backend '${backend}'`);
    if (!['exact', 'llamacpp'].includes(numerics)) throw new TypeError(`wisp: unknown numerics '${numerics}' (expected 'exact' or 'llamacpp')`);
    opts = { ...opts, threads: threadCount(opts.threads) };
    if (signal?.aborted) throw abortError(signal);
    await ready(opts.wasmUrl, opts.relaxedWasmUrl, opts.threadsWasmUrl);
    // WebGPU: open the device first, so each weight goes to the GPU as it streams in
    let device = null;
    let fallback = null;
    if (backend !== 'cpu') {
      const why = await webgpuUnavailable();
      if (why && backend === 'webgpu') throw new Error(`wisp: WebGPU requested but ${why}`);
      if (why) fallback = `${why}; using the CPU`;
      else {
        try {
          device = await glue.openGpu();
        } catch (e) {
          if (backend === 'webgpu') throw e;
          fallback = `WebGPU failed (${e.message ?? e}); using the CPU`;
        }
      }
    }
    if (!device) return Engine.#load(source, opts, null, fallback);
    try {
      return await Engine.#load(source, opts, device, null);
    } catch (e) {
      // the weights went to the GPU, so a CPU fallback reads the file again (a stream cannot be)
      const again = !(source instanceof ReadableStream);
      if (backend === 'webgpu' || signal?.aborted || !again) throw e;
      return Engine.#load(source, opts, null, `WebGPU failed (${e.message ?? e}); using the CPU`);
    }
  }

  static async #load(source, opts, device, fallback) {
    const { onProgress, signal, cache = true, ctx = 0, numerics = 'exact' } = opts;
    const src = await openSource(source, { cache: cache && isUrl(source), signal });
    const loader = new glue.Loader(src.size ?? undefined, device ?? undefined);
    const reader = src.stream.getReader();
    let cacheError = null;
    const onAbort = () => reader.cancel(abortError(signal)).catch(() => {});
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        if (signal?.aborted) throw abortError(signal);
        const { done, value } = await reader.read();
        if (done) break;
        loader.push(value);
        onProgress?.({ phase: 'download', loaded: loader.bytes(), total: src.size, cached: src.cached });
      }
      if (signal?.aborted) throw abortError(signal);
      cacheError = await src.stored;
    } catch (e) {
      loader.free();
      reader.cancel().catch(() => {});
      throw signal?.aborted ? abortError(signal) : e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    const loaded = loader.bytes();
    onProgress?.({ phase: 'build', loaded, total: src.size, cached: src.cached });
    if (signal?.aborted) { loader.free(); throw abortError(signal); }
    const wasm = loader.finish(ctx, numerics); // consumes the loader
    if (device) {
      try {
        await wasm.useWebGpu();
      } catch (e) {
        wasm.free();
        throw e;
      }
    }
    if (signal?.aborted) { wasm.free(); throw abortError(signal); }
    const info = JSON.parse(wasm.info());
    if (fallback) info.fallback = fallback;
    info.cached = src.cached;
    if (cacheError) info.cacheError = cacheError;
    info.wasmBuild = wasmBuild;
    // the threaded build's CPU engines run on the page's CPU workers (started by the first)
    const threaded = usesCpuWorkers(info);
    info.threads = threaded ? await cpuThreads.acquire(opts.threads) : 1;
    if (signal?.aborted) {
      wasm.free();
      if (threaded) await cpuThreads.release();
      throw abortError(signal);
    }
    info.wasmMemoryBytes = wasmMemoryBytes();
    return new Engine(wasm, info);
  }

  /** URLs of the model files in the cache. */
  static async cached() {
    if (typeof caches === 'undefined') return [];
    const store = await caches.open(CACHE_NAME);
    return (await store.keys()).map((r) => r.url);
  }

  /** Removes `url` from the cache; true if it was there. */
  static async evict(url) {
    if (typeof caches === 'undefined') return false;
    const store = await caches.open(CACHE_NAME);
    return store.delete(new URL(url, globalThis.location?.href).href);
  }

  /** Architecture, parameters, quantization, context, backend, adapter. */
  get info() {
    return { ...this.#info };
  }

  #engine() {
    if (!this.#wasm) throw new Error('wisp: the engine was disposed');
    return this.#wasm;
  }

  tokenize(text) {
    return this.#queue.run(() => Array.from(this.#engine().tokenize(String(text))));
  }

  detokenize(ids, { special = false } = {}) {
    return this.#queue.run(() => this.#engine().detokenize(Uint32Array.from(ids), special));
  }

  /**
   * Streams the continuation of `prompt` (text, tokenized as the CLI does: special tokens written
   * in it become those tokens; or an array of ids). Yields `{ text, token }`; `token` is null for
   * text released at the end. An aborted `signal` ends it with an AbortError; the engine stays usable.
   */
  generate(prompt, opts = {}) {
    return this.#stream(() => (typeof prompt === 'string' ? this.#engine().tokenize(prompt) : Uint32Array.from(prompt)), opts);
  }

  /** The whole continuation: `{ text, tokens, finishReason, usage, timings }`. */
  async complete(prompt, opts = {}) {
    let text = '';
    const tokens = [];
    for await (const c of this.generate(prompt, opts)) {
      text += c.text;
      if (c.token !== null) tokens.push(c.token);
    }
    return { text, tokens, ...this.#summary() };
  }

  /** Perplexity of `text` in windows of `ctx` tokens: `{ ppl, tokensScored }`. */
  perplexity(text, { ctx = 512, half = false } = {}) {
    return this.#queue.run(async () => {
      const e = this.#engine();
      const r = JSON.parse(await e.perplexity(e.tokenize(String(text)), ctx, half));
      return { ppl: r.ppl, tokensScored: r.tokens_scored };
    });
  }

  /**
   * Evaluates the model on `items` ({ prompt } or { messages }, with a reference, an optional id)
   * as `wisp eval` does: each answered greedily (through the chat template where the model has
   * one) in at most `maxTokens` (default 128), the reference's perplexity given the prompt, and
   * the report `wisp eval --json` prints (corpus and sentence BLEU as sacreBLEU, ROUGE-1/2/L F1 as
   * rouge-score, computed by the engine's own metrics) with `table`, the CLI's table.
   * `onProgress({ done, total, item })` hears of each item as it finishes (`item`: its entry of
   * the report). A bad item rejects, naming it (`item N`, from 1), before anything runs; an
   * aborted `signal` rejects with an AbortError between steps, and the engine stays usable.
   */
  evaluate(items, opts = {}) {
    const { onProgress, signal, maxTokens = 128 } = opts ?? {};
    if (!Array.isArray(items) || items.length === 0) {
      return Promise.reject(new TypeError('wisp: items must be a non-empty array of { prompt or messages, reference }'));
    }
    if (onProgress !== undefined && typeof onProgress !== 'function') return Promise.reject(new TypeError('wisp: onProgress must be a function'));
    let genOpts;
    try {
      genOpts = JSON.stringify(wasmOptions({ maxTokens, temperature: 0 }));
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#queue.run(async () => {
      const e = this.#engine();
      const set = JSON.parse(e.evalPrepare(JSON.stringify(items)));
      const total = set.items.length;
      const outcomes = [];
      const nlls = [];
      for (const [n, it] of set.items.entries()) {
        if (signal?.aborted) throw abortError(signal);
        const prompt = Uint32Array.from(it.prompt);
        // the reference scored after the prompt first, then the answer (reusing the prompt's
        // cache), as the native runner does
        const nll = await e.referenceNll(prompt, Uint32Array.from(it.reference_ids));
        await breathe();
        if (signal?.aborted) throw abortError(signal);
        let g;
        const steps = this.#generation(e, prompt, genOpts, signal, (summary) => { g = summary; });
        while (!(await steps.next()).done); // the answer's text comes with the summary
        const outcome = {
          line: it.line, output: g.text, reference: it.reference, prompt_tokens: it.prompt.length,
          generated_tokens: g.ids.length, finish: g.finish, reference_tokens: it.reference_ids.length, reference_nll: nll,
        };
        if (it.id !== undefined) outcome.id = it.id;
        outcomes.push(outcome);
        nlls.push(nll);
        if (onProgress) {
          const [item] = JSON.parse(e.evalReport(JSON.stringify([outcome]), Float64Array.of(nll))).items;
          onProgress({ done: n + 1, total, item });
        }
      }
      const report = JSON.parse(e.evalReport(JSON.stringify(outcomes), Float64Array.from(nlls)));
      return { ...report, max_tokens: maxTokens, chat_template: set.chat_template };
    }, signal);
  }

  /**
   * Live numbers for watching long use: wasm memory, GPU buffers and bind groups created (all at
   * load, so flat over any number of generations), tokens in the KV cache.
   */
  stats() {
    return this.#queue.run(() => {
      const s = JSON.parse(this.#engine().stats());
      return { wasmMemoryBytes: wasmMemoryBytes(), gpuBuffers: s.gpu_buffers,
        gpuBindGroups: s.gpu_bind_groups, cachedTokens: s.cached_tokens };
    });
  }

  /** Forgets the conversation held in the KV cache. */
  reset() {
    return this.#queue.run(() => this.#engine().reset());
  }

  /** Frees the model (wasm memory and GPU buffers); the engine cannot be used afterwards. */
  dispose() {
    return this.#queue.run(async () => {
      if (!this.#wasm) return;
      this.#wasm.free();
      this.#wasm = null;
      if (usesCpuWorkers(this.#info)) await cpuThreads.release();
    });
  }

  #summary() {
    const g = this.#last;
    return {
      finishReason: FINISH[g.finish] ?? g.finish,
      usage: { promptTokens: g.prompt_ids.length, completionTokens: g.ids.length, cachedTokens: g.prompt_ids.length - g.prefilled },
      timings: { prefillTokensPerSecond: g.prefill_tok_s, decodeTokensPerSecond: g.decode_tok_s },
    };
  }

  /** One generation as an async iterable; holds the engine's queue from its first step to its end. */
  #stream(promptIds, opts) {
    const self = this;
    const { signal } = opts;
    return (async function* () {
      let enter, release;
      const entered = new Promise((r) => { enter = r; });
      const done = new Promise((r) => { release = r; });
      self.#queue.run(() => { enter(); return done; });
      try {
        // waiting for its turn: an abort rejects at once, and the turn is skipped (released below)
        await untilAborted(entered, signal);
        if (signal?.aborted) throw abortError(signal);
        const e = self.#engine();
        const steps = self.#generation(e, promptIds(), JSON.stringify(wasmOptions(opts)), signal, (summary) => { self.#last = summary; });
        for await (const ev of steps) {
          if (ev.kind === 'token') yield ev.logprob ? { text: ev.text, token: ev.token, ...logprobOf(e, ev.logprob) } : { text: ev.text, token: ev.token };
          else if (ev.kind === 'text') yield { text: ev.text, token: null };
        }
      } finally {
        release();
      }
    })();
  }

  /**
   * One generation on the wasm engine `e` while its caller holds the queue: yields each event
   * (parsed; the event loop gets a turn after each) and hands the summary to `onEnd` however it
   * ends: to its end, an abort between steps, the caller stopping early, or an error (when the
   * engine itself ended it, on an error of its own, there is no summary).
   */
  async *#generation(e, prompt, optsJson, signal, onEnd) {
    e.begin(prompt, optsJson);
    let begun = true;
    let finished = false;
    try {
      for (;;) {
        if (signal?.aborted) throw abortError(signal);
        let raw;
        try {
          raw = await e.next();
        } catch (err) {
          begun = false; // the engine ended the generation itself (e.g. the GPU device was lost)
          throw err;
        }
        if (raw === null) { finished = true; break; }
        yield JSON.parse(raw);
        await breathe();
      }
    } finally {
      if (begun && this.#wasm) onEnd(JSON.parse(this.#wasm.end(!finished)));
    }
  }

  async #chatCreate(req) {
    const { messages, stream = false, max_tokens, max_completion_tokens, temperature = 1, top_p, stop, seed,
      frequency_penalty, presence_penalty, top_k, min_p, repetition_penalty, signal, logprobs = false, top_logprobs,
      response_format,
      context_overflow = 'error' } = req ?? {};
    if (!Array.isArray(messages) || messages.length === 0) throw new TypeError('wisp: messages must be a non-empty array');
    if (!['error', 'drop-oldest'].includes(context_overflow)) throw new TypeError(`wisp: unknown context_overflow '${context_overflow}'`);
    const maxTokens = max_completion_tokens ?? max_tokens;
    // OpenAI's structured output: a JSON object, or one a schema describes (converted to a grammar)
    let jsonSchema;
    if (response_format !== undefined && response_format !== null) {
      const type = response_format.type;
      if (type === 'json_object') jsonSchema = { type: 'object' };
      else if (type === 'json_schema') {
        jsonSchema = response_format.json_schema?.schema;
        if (jsonSchema === undefined) throw new TypeError("wisp: response_format { type: 'json_schema' } needs json_schema.schema");
      } else if (type !== 'text') throw new TypeError(`wisp: unknown response_format type '${type}' (text, json_object or json_schema)`);
    }
    const kept = messages.map((m) => ({ role: String(m.role), content: String(m.content ?? '') }));
    // the prompt is rendered and tokenized in the queue: the engine is borrowed for the whole of
    // a step (on WebGPU across its readback), so a call beside a running generation would find it busy
    const { ids, nCtx } = await this.#queue.run(() => {
      const e = this.#engine();
      const nCtx = e.nCtx();
      // the prompt must leave room for max_tokens (or for at least one token when unset)
      const room = maxTokens ?? 1;
      let ids = e.chatPrompt(JSON.stringify(kept));
      while (ids.length + room > nCtx) {
        const first = kept.findIndex((m) => m.role !== 'system');
        const last = kept.length - 1;
        if (context_overflow !== 'drop-oldest' || first < 0 || first >= last) {
          const err = new Error(`wisp: the conversation needs ${ids.length} prompt tokens + ${room} to generate, but the context holds ${nCtx} (context_overflow: 'drop-oldest' drops the oldest turns)`);
          err.code = 'context_length_exceeded';
          throw err;
        }
        // drop the oldest non-system message, and the assistant reply that answered it
        kept.splice(first, kept[first + 1]?.role === 'assistant' && first + 1 < last ? 2 : 1);
        ids = e.chatPrompt(JSON.stringify(kept));
      }
      return { ids, nCtx };
    }, signal);
    const opts = {
      maxTokens: maxTokens ?? nCtx - ids.length, temperature, topP: top_p, topK: top_k ?? 0, minP: min_p ?? 0,
      repetitionPenalty: repetition_penalty, frequencyPenalty: frequency_penalty, presencePenalty: presence_penalty,
      seed, stop, signal, logprobs: Boolean(logprobs), topLogprobs: logprobs ? top_logprobs ?? 0 : undefined, jsonSchema,
    };
    if (top_p === undefined) opts.topP = 1;
    const id = `chatcmpl-${Math.random().toString(36).slice(2)}`;
    const created = Math.floor(Date.now() / 1000);
    const model = this.#info.name ?? this.#info.architecture;
    const gen = this.#stream(() => ids, opts);
    const self = this;
    const usage = () => {
      const s = self.#summary();
      return { prompt_tokens: s.usage.promptTokens, completion_tokens: s.usage.completionTokens,
        total_tokens: s.usage.promptTokens + s.usage.completionTokens,
        prompt_tokens_details: { cached_tokens: s.usage.cachedTokens }, timings: s.timings };
    };
    if (stream) {
      return (async function* () {
        const chunk = (delta, finish_reason) => ({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason }] });
        yield chunk({ role: 'assistant', content: '' }, null);
        for await (const c of gen) {
          if (c.logprob !== undefined) yield { ...chunk({ content: c.text }, null), choices: [{ index: 0, delta: { content: c.text }, logprobs: { content: [openAiLogprob(c)] }, finish_reason: null }] };
          else if (c.text) yield chunk({ content: c.text }, null);
        }
        const s = self.#summary();
        yield { ...chunk({}, s.finishReason), usage: usage() };
      })();
    }
    let content = '';
    const lps = [];
    for await (const c of gen) {
      content += c.text;
      if (c.logprob !== undefined) lps.push(openAiLogprob(c));
    }
    return {
      id, object: 'chat.completion', created, model,
      choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: logprobs ? { content: lps } : null, finish_reason: this.#summary().finishReason }],
      usage: usage(),
    };
  }
}

/**
 * A token's log-probability and alternatives as a chunk carries them: `logprob`, `bytes` (the
 * token's own bytes: a token may hold part of a UTF-8 character), and `topLogprobs`, each
 * `{ token, text, bytes, logprob }`, most likely first.
 */
function logprobOf(e, lp) {
  const piece = (id) => {
    const bytes = Array.from(e.tokenBytes(id));
    return { text: new TextDecoder().decode(Uint8Array.from(bytes)), bytes };
  };
  return {
    logprob: lp.logprob, bytes: piece(lp.token).bytes,
    topLogprobs: lp.top.map((a) => ({ token: a.token, ...piece(a.token), logprob: a.logprob })),
  };
}

/** A chunk's log-probability in OpenAI's shape (`choices[].logprobs.content[]`). */
function openAiLogprob(c) {
  const entry = (text, bytes, logprob) => ({ token: text, logprob, bytes });
  return {
    ...entry(new TextDecoder().decode(Uint8Array.from(c.bytes)), c.bytes, c.logprob),
    top_logprobs: c.topLogprobs.map((a) => entry(a.text, a.bytes, a.logprob)),
  };
}

/** Why WebGPU cannot be used here, or null when an adapter exists. */
async function webgpuUnavailable() {
  if (typeof navigator === 'undefined' || !navigator.gpu) return 'this browser has no WebGPU (navigator.gpu is missing)';
  try {
    const a = await navigator.gpu.requestAdapter();
    return a ? null : 'no WebGPU adapter is available';
  } catch (e) {
    return `requesting a WebGPU adapter failed: ${e.message ?? e}`;
  }
}

export { createWorkerEngine } from './worker-client.js';
