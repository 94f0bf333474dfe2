// createWorkerEngine: the Engine API, with the engine running in a Web Worker (worker.js) so the
// page never blocks. Each call is a message with an id; streams arrive as 'chunk' messages.

const ERRORS = { TypeError, RangeError };

function revive(err) {
  const e = err.name === 'AbortError' ? new DOMException(err.message, 'AbortError') : new (ERRORS[err.name] ?? Error)(err.message);
  if (err.code && !(e instanceof DOMException)) e.code = err.code;
  return e;
}

class WorkerEngine {
  #worker;
  #next = 1;
  #pending = new Map();
  #info;
  #disposed = false;

  constructor(worker) {
    this.#worker = worker;
    worker.onmessage = (ev) => this.#pending.get(ev.data.id)?.(ev.data);
    worker.onerror = (ev) => {
      for (const h of this.#pending.values()) h({ type: 'error', error: { message: `wisp worker: ${ev.message ?? 'failed'}` } });
    };
    this.chat = { completions: { create: (req) => this.#chat(req) } };
  }

  get info() {
    return { ...this.#info };
  }

  #send(msg, onMessage, signal) {
    // the worker is gone after dispose(): answer here rather than post into the void
    if (this.#disposed) {
      queueMicrotask(() => onMessage({ type: 'error', error: { message: 'wisp: the engine was disposed' } }));
      return () => {};
    }
    const id = this.#next++;
    this.#pending.set(id, onMessage);
    const onAbort = () => this.#worker.postMessage({ type: 'abort', target: id });
    if (signal) {
      if (signal.aborted) queueMicrotask(onAbort);
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    const done = () => { this.#pending.delete(id); signal?.removeEventListener('abort', onAbort); };
    this.#worker.postMessage({ ...msg, id });
    done.id = id;
    return done;
  }

  #request(msg, { signal, onProgress } = {}) {
    return new Promise((resolve, reject) => {
      const done = this.#send(msg, (m) => {
        if (m.type === 'progress') return onProgress?.(m.value);
        done();
        if (m.type === 'result') resolve(m.value);
        else reject(revive(m.error));
      }, signal);
    });
  }

  /** An async iterable over 'chunk' messages of one streamed request. */
  #streamed(msg, signal) {
    const self = this;
    return (async function* () {
      const queue = [];
      let wake = null;
      let ended = false;
      const done = self.#send(msg, (m) => { queue.push(m); wake?.(); }, signal);
      try {
        for (;;) {
          while (!queue.length) await new Promise((r) => { wake = r; });
          const m = queue.shift();
          ended = m.type !== 'chunk';
          if (m.type === 'chunk') yield m.value;
          else if (m.type === 'end') return;
          else if (m.type === 'error') throw revive(m.error);
        }
      } finally {
        if (!ended) self.#worker.postMessage({ type: 'abort', target: done.id });
        done();
      }
    })();
  }

  async _load(source, opts) {
    const { signal, onProgress, ...rest } = opts;
    this.#info = await this.#request({ type: 'load', source, opts: rest }, { signal, onProgress });
    return this;
  }

  #call(method, args, signal) {
    return this.#request({ type: 'call', method, args }, { signal });
  }

  tokenize(text) { return this.#call('tokenize', [text]); }
  detokenize(ids, opts) { return this.#call('detokenize', [Array.from(ids), opts]); }
  perplexity(text, opts) { return this.#call('perplexity', [text, opts]); }
  reset() { return this.#call('reset', []); }
  stats() { return this.#call('stats', []); }

  complete(prompt, opts = {}) {
    const { signal, ...rest } = opts;
    return this.#call('complete', [prompt, rest], signal);
  }

  /** Engine.evaluate in the worker: progress arrives as 'progress' messages. */
  evaluate(items, opts = {}) {
    const { signal, onProgress, ...rest } = opts ?? {};
    if (onProgress !== undefined && typeof onProgress !== 'function') return Promise.reject(new TypeError('wisp: onProgress must be a function'));
    return this.#request({ type: 'call', method: 'evaluate', args: [items, { ...rest, progress: Boolean(onProgress) }] }, { signal, onProgress });
  }

  generate(prompt, opts = {}) {
    const { signal, ...rest } = opts;
    return this.#streamed({ type: 'stream', prompt, opts: rest }, signal);
  }

  async #chat(req) {
    const { signal, stream, ...rest } = req;
    const it = this.#streamed({ type: 'stream', chat: true, req: rest }, signal);
    if (stream) return it;
    // assemble the non-streamed shape from the chunks
    let content = '';
    let last = null;
    const lps = [];
    for await (const c of it) {
      content += c.choices[0].delta.content ?? '';
      lps.push(...(c.choices[0].logprobs?.content ?? []));
      last = c;
    }
    return {
      id: last.id, object: 'chat.completion', created: last.created, model: last.model,
      choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: rest.logprobs ? { content: lps } : null, finish_reason: last.choices[0].finish_reason }],
      usage: last.usage,
    };
  }

  /** Frees the model and ends the worker. */
  async dispose() {
    if (this.#disposed) return;
    try { await this.#call('dispose', []); } finally {
      this.#disposed = true;
      this.#worker.terminate();
    }
  }
}

/**
 * Loads a model in a new Web Worker; same options as Engine.load (plus workerUrl). The source
 * must be cloneable: a URL string, File/Blob, ArrayBuffer or ReadableStream.
 */
export async function createWorkerEngine(source, opts = {}) {
  const url = opts.workerUrl ?? new URL('./worker.js', import.meta.url);
  const worker = new Worker(url, { type: 'module' });
  const { workerUrl, ...rest } = opts;
  // a relative URL would otherwise resolve against the worker script
  const src = typeof source === 'string' || source instanceof URL ? new URL(source, globalThis.location?.href).href : source;
  try {
    return await new WorkerEngine(worker)._load(src, rest);
  } catch (e) {
    worker.terminate();
    throw e;
  }
}
