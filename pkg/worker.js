// wisp-llm worker: runs an Engine inside a Web Worker for createWorkerEngine (worker-client.js).
// Messages in: {id, type: 'load' | 'call' | 'stream' | 'abort', ...}; out: {id, type: 'progress' |
// 'result' | 'chunk' | 'end' | 'error', ...}. Abort signals cross as 'abort' messages.

import { Engine } from './index.js';

let engine = null;
const controllers = new Map();

function post(msg) {
  self.postMessage(msg);
}

function serializeError(e) {
  return { name: e?.name ?? 'Error', message: e?.message ?? String(e), code: e?.code };
}

function withSignal(id, opts = {}) {
  const c = new AbortController();
  controllers.set(id, c);
  return { ...opts, signal: c.signal };
}

async function handle(m) {
  const { id } = m;
  try {
    if (m.type === 'abort') {
      controllers.get(m.target)?.abort();
      return;
    }
    if (m.type === 'load') {
      if (engine) throw new Error('wisp: this worker already holds a model');
      const opts = withSignal(id, m.opts);
      opts.onProgress = (p) => post({ id, type: 'progress', value: p });
      engine = await Engine.load(m.source, opts);
      post({ id, type: 'result', value: engine.info });
      return;
    }
    if (!engine) throw new Error('wisp: no model is loaded in the worker');
    if (m.type === 'call') {
      const allowed = ['tokenize', 'detokenize', 'perplexity', 'reset', 'dispose', 'complete', 'stats', 'evaluate'];
      if (!allowed.includes(m.method)) throw new Error(`wisp: unknown method ${m.method}`);
      const args = m.args ?? [];
      if (m.method === 'complete') args[1] = withSignal(id, args[1]);
      if (m.method === 'evaluate') {
        const { progress, ...rest } = args[1] ?? {};
        args[1] = withSignal(id, rest);
        if (progress) args[1].onProgress = (p) => post({ id, type: 'progress', value: p });
      }
      const value = await engine[m.method](...args);
      post({ id, type: 'result', value });
      if (m.method === 'dispose') engine = null;
      return;
    }
    if (m.type === 'stream') {
      const it = m.chat
        ? await engine.chat.completions.create({ ...m.req, stream: true, signal: withSignal(id).signal })
        : engine.generate(m.prompt, withSignal(id, m.opts));
      for await (const chunk of it) post({ id, type: 'chunk', value: chunk });
      post({ id, type: 'end' });
      return;
    }
    throw new Error(`wisp: unknown message ${m.type}`);
  } catch (e) {
    post({ id, type: 'error', error: serializeError(e) });
  } finally {
    controllers.delete(id);
  }
}

self.onmessage = (ev) => { handle(ev.data); };
