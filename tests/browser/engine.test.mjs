// wisp-llm in headless Chromium: greedy ids equal the native CLI's on both backends, streaming,
// stop strings, aborts, the worker engine (chat KV reuse, queued and aborted calls), perplexity
// equal to the CLI's, chat KV reuse, the cache, the demo page offline, and the CPU fallback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { serve, launch, open, inPageOf, nativeIds, nativePerplexity, requireWebGpu, defaultModel, knownModel, root, here } from './harness.mjs';
import { siteRoots } from '../../scripts/serve.mjs';

const PROMPTS = [
  { prompt: 'What is the capital of France?', chat: true },
  { prompt: 'The history of the printing press', chat: false },
  { prompt: '<|im_start|>user\nWrite a haiku about rain.<|im_end|>\n<|im_start|>assistant\n', chat: false },
];
const N = Number(process.env.WISP_BROWSER_TOKENS || 64);

let model, gemma, server, browser;
before(async () => {
  model = defaultModel();
  gemma = knownModel('gemma3-270m');
  server = await serve({
    roots: {
      '/pkg/': path.join(root, 'pkg'),
      '/www/': path.join(root, 'www'),
      '/arch/': path.join(root, 'tests', 'fixtures', 'arch'),
    },
    files: { '/': path.join(here, 'page.html'), '/model.gguf': model, '/gemma.gguf': gemma },
  });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
  assert.deepEqual(browser?.offsite ?? [], [], 'requests left 127.0.0.1');
});

async function page() {
  const p = await open(browser.context, server.url + '/');
  await p.page.waitForFunction(() => window.wispReady);
  return p;
}

/** Greedy ids of each prompt in the page, with backend `backend` (and the CPU's `numerics`;
 * `wasmUrl` picks a build of the engine). */
async function browserIds(backend, prompts = PROMPTS, n = N, numerics = 'exact', wasmUrl = undefined) {
  const { page: pg, logs } = await page();
  try {
    if (backend === 'webgpu') await requireWebGpu(pg);
    return await pg.evaluate(async ({ prompts, n, backend, numerics, wasmUrl }) => {
      const engine = await wisp.Engine.load('/model.gguf', { backend, cache: false, numerics, wasmUrl });
      const out = { info: engine.info, runs: [] };
      for (const { prompt, chat } of prompts) {
        await engine.reset();
        let ids;
        if (chat) {
          const r = await engine.chat.completions.create({ messages: [{ role: 'user', content: prompt }], temperature: 0, max_tokens: n });
          ids = { text: r.choices[0].message.content };
        } else {
          const r = await engine.complete(prompt, { temperature: 0, maxTokens: n });
          ids = { ids: r.tokens, text: r.text };
        }
        out.runs.push(ids);
      }
      await engine.dispose();
      return out;
    }, { prompts, n, backend, numerics, wasmUrl });
  } catch (e) {
    throw new Error(`${e.message}\npage log:\n${logs.join('\n')}`);
  } finally {
    await pg.close();
  }
}

function checkAgainstNative(got, prompts = PROMPTS, n = N, numerics = 'exact') {
  prompts.forEach(({ prompt, chat }, i) => {
    const want = nativeIds(model, prompt, { chat, maxTokens: n, numerics });
    if (got.runs[i].ids) assert.deepEqual(got.runs[i].ids, want.ids, `prompt ${i} ids`);
    assert.equal(got.runs[i].text, want.text, `prompt ${i} text`);
  });
}

test('CPU backend (wasm): greedy ids equal the native CLI on three prompts', async () => {
  const got = await browserIds('cpu');
  assert.equal(got.info.backend, 'cpu');
  // the CPU path computes on the weights in wasm memory
  assert.ok(got.info.wasmMemoryBytes >= fs.statSync(model).size, `wasm memory ${got.info.wasmMemoryBytes}`);
  checkAgainstNative(got);
});

test("CPU backend with numerics 'llamacpp' (int8 dots), both wasm builds: the native CLI's --numerics llamacpp ids", async () => {
  // Chromium has relaxed SIMD, so by default the relaxed build runs; naming the plain build's
  // .wasm (and no relaxed one) runs the SIMD128 build
  for (const [wasmUrl, build] of [[undefined, 'simd128+relaxed'], ['/pkg/generated/wisp_bg.wasm', 'simd128']]) {
    const got = await browserIds('cpu', PROMPTS, N, 'llamacpp', wasmUrl);
    assert.equal(got.info.numerics, 'llamacpp');
    assert.equal(got.info.wasmBuild, build);
    checkAgainstNative(got, PROMPTS, N, 'llamacpp');
  }
});

// SwiftShader runs the model at a few seconds per token, so the WebGPU comparison uses short
// plain prompts and a few tokens (the GPU path's 64-token comparison runs natively on lavapipe).
const GPU_PROMPTS = [
  { prompt: 'The capital of France is', chat: false },
  { prompt: 'Once upon a time', chat: false },
  { prompt: 'def add(a, b):', chat: false },
];
const GPU_N = Number(process.env.WISP_BROWSER_GPU_TOKENS || 4);

test('WebGPU backend: greedy ids equal the native CLI on three prompts', async () => {
  const got = await browserIds('webgpu', GPU_PROMPTS, GPU_N);
  assert.equal(got.info.backend, 'webgpu');
  assert.ok(got.info.adapter, 'adapter named');
  // the weights streamed to the GPU tensor by tensor: wasm memory peaked far below the file
  const size = fs.statSync(model).size;
  console.log(`# WebGPU load: wasm memory ${(got.info.wasmMemoryBytes / 1e6).toFixed(1)} MB for a ${(size / 1e6).toFixed(1)} MB file`);
  assert.ok(got.info.wasmMemoryBytes < size / 2, `wasm memory ${got.info.wasmMemoryBytes} for a ${size}-byte file`);
  checkAgainstNative(got, GPU_PROMPTS, GPU_N);
});

test('other architectures in the page: Qwen3 (Q5_1, per-head Q/K norms, a 64-wide head on a 256-wide stream) and Phi-3 (Q3_K_M, fused QKV and gate/up, SentencePiece) from the llama.cpp fixtures, on the CPU and WebGPU, equal the native CLI', async () => {
  const prompt = 'Once upon a time';
  for (const [stem, arch] of [['qwen3-q5_1', 'qwen3'], ['phi3-q3_k_m', 'phi3']]) {
    const file = path.join(root, 'tests', 'fixtures', 'arch', `${stem}.gguf`);
    for (const [backend, n] of [['cpu', 32], ['webgpu', 8]]) {
      const want = nativeIds(file, prompt, { maxTokens: n });
      const got = await inPageOf(browser.context, server.url, async ({ url, backend, prompt, n }) => {
        const e = await wisp.Engine.load(url, { backend, cache: false });
        const r = await e.complete(prompt, { temperature: 0, maxTokens: n });
        const info = e.info;
        await e.dispose();
        return { info, tokens: r.tokens, text: r.text };
      }, { url: `/arch/${stem}.gguf`, backend, prompt, n }, backend === 'webgpu' ? { onPage: requireWebGpu } : {});
      assert.equal(got.info.architecture, arch);
      assert.equal(got.info.backend, backend);
      assert.deepEqual(got.tokens, want.ids, `${stem} on ${backend}`);
      assert.equal(got.text, want.text, `${stem} on ${backend}`);
    }
  }
});

test('Gemma 3 270M in the page (SentencePiece tokenizer, gemma3): CPU and WebGPU greedy ids equal the native CLI; WebGPU perplexity equal to the CPU\'s; a WebGPU load keeps wasm memory under half the file', async () => {
  const prompt = 'The mitochondria is the powerhouse of the';
  const want = nativeIds(gemma, prompt, { maxTokens: 24 });
  const text = 'The mitochondria is the powerhouse of the cell. It makes energy for the body, and every cell has many of them. ';
  const got = await inPageOf(browser.context, server.url, async ({ prompt, text }) => {
    const out = {};
    // WebGPU first: wasm memory only grows, so its peak is the WebGPU load's before the CPU's
    for (const backend of ['webgpu', 'cpu']) {
      const e = await wisp.Engine.load('/gemma.gguf', { backend, cache: false });
      out[backend] = { info: e.info, ppl: await e.perplexity(text.repeat(2), { ctx: 32 }) };
      // WebGPU a few tokens (SwiftShader takes seconds per token at this size)
      out[backend].run = await e.complete(prompt, { temperature: 0, maxTokens: backend === 'cpu' ? 24 : 6 });
      await e.dispose();
    }
    return out;
  }, { prompt, text }, { onPage: requireWebGpu });
  assert.equal(got.cpu.info.architecture, 'gemma3');
  assert.deepEqual(got.cpu.run.tokens, want.ids, 'Gemma 3 on the CPU');
  assert.equal(got.cpu.run.text, want.text);
  // the WebGPU prefill path (tiled products, prefill attention, every row's logits over the
  // 262,144-token head) against the CPU
  assert.equal(got.webgpu.info.backend, 'webgpu');
  // the weights streamed to the GPU row range by row range: not even the 178 MB table (tied head)
  // was ever whole in wasm memory
  const size = fs.statSync(gemma).size;
  const mb = (x) => (x / 1e6).toFixed(1);
  console.log(`# Gemma 3 WebGPU load: wasm memory ${mb(got.webgpu.info.wasmMemoryBytes)} MB for a ${mb(size)} MB file (after the CPU load too: ${mb(got.cpu.info.wasmMemoryBytes)} MB)`);
  assert.ok(got.webgpu.info.wasmMemoryBytes < size / 2, `wasm memory ${got.webgpu.info.wasmMemoryBytes} for a ${size}-byte file`);
  // the decode list (head size 256: attention past its first 64 dimensions, once wrong on Tint)
  assert.deepEqual(got.webgpu.run.tokens, want.ids.slice(0, 6), 'Gemma 3 greedy on WebGPU');
  const [c, g] = [got.cpu.ppl.ppl, got.webgpu.ppl.ppl];
  assert.ok(Math.abs(c - g) <= 1e-4 * c, `perplexity: WebGPU ${g}, CPU ${c}`);
});

/** Runs `fn(arg)` in a fresh page with `window.wisp` (harness.mjs inPageOf). */
function inPage(fn, arg, ctx = browser.context, url = server.url) {
  return inPageOf(ctx, url, fn, arg);
}

test('streaming chunks add up to the text, stop strings cut it, and abort leaves the engine usable', async () => {
  const prompt = 'The history of the printing press';
  const want = nativeIds(model, prompt, { maxTokens: 32 });
  // a stop string from the middle of the greedy text
  const words = want.text.trim().split(/\s+/);
  const stop = words[Math.floor(words.length / 2)];
  const got = await inPage(async ({ prompt, stop }) => {
    const engine = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false });
    const chunks = [];
    for await (const c of engine.generate(prompt, { temperature: 0, maxTokens: 32 })) chunks.push(c);
    const stopped = await engine.complete(prompt, { temperature: 0, maxTokens: 32, stop: [stop] });
    // abort during decode, after three chunks
    const ctl = new AbortController();
    let n = 0, decodeAbort = null;
    try {
      for await (const c of engine.generate(prompt, { temperature: 0, maxTokens: 32, signal: ctl.signal })) {
        if (++n === 3) ctl.abort();
      }
    } catch (e) { decodeAbort = e.name; }
    // abort during prefill of a long prompt
    const long = 'Tell me everything about the history of mathematics. '.repeat(40);
    const ctl2 = new AbortController();
    let m = 0, prefillAbort = null;
    const t0 = performance.now();
    setTimeout(() => ctl2.abort(), 30);
    try {
      for await (const c of engine.generate(long, { temperature: 0, maxTokens: 8, signal: ctl2.signal })) m++;
    } catch (e) { prefillAbort = e.name; }
    const abortMs = performance.now() - t0;
    const after = await engine.complete(prompt, { temperature: 0, maxTokens: 32 });
    return { chunks, stopped, decodeAbort, n, prefillAbort, m, abortMs, after };
  }, { prompt, stop });
  assert.equal(got.chunks.map((c) => c.text).join(''), want.text, 'streamed text');
  assert.deepEqual(got.chunks.filter((c) => c.token !== null).map((c) => c.token), want.ids, 'streamed ids');
  assert.ok(!got.chunks.some((c) => c.text.includes('\uFFFD')), 'no split UTF-8');
  const cut = want.text.indexOf(stop);
  assert.equal(got.stopped.text, want.text.slice(0, cut), `text before stop string '${stop}'`);
  assert.equal(got.stopped.finishReason, 'stop');
  assert.equal(got.decodeAbort, 'AbortError');
  assert.equal(got.n, 3, 'no chunk after the abort');
  assert.equal(got.prefillAbort, 'AbortError');
  assert.equal(got.m, 0, 'aborted before the first token');
  assert.deepEqual(got.after.tokens, want.ids, 'usable after aborts');
});

test('chat reuses the KV cache over three turns in the page and the worker engine, matches a fresh conversation, and handles a conversation over the context', async () => {
  const got = await inPage(async () => {
    const out = {};
    for (const kind of ['page', 'worker']) {
      const engine = kind === 'worker'
        ? await wisp.createWorkerEngine('/model.gguf', { backend: 'cpu', cache: false })
        : await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false });
      const messages = [{ role: 'system', content: 'You are a concise tutor.' }];
      const turns = [];
      for (const q of ['What is 2 + 2?', 'And times 3?', 'Name a prime number.']) {
        messages.push({ role: 'user', content: q });
        const stream = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 24, stream: true });
        let content = '', last;
        for await (const c of stream) { content += c.choices[0].delta.content ?? ''; last = c; }
        turns.push({ content, usage: last.usage, cachedAfter: (await engine.stats()).cachedTokens });
        messages.push({ role: 'assistant', content });
      }
      // the last turn again from an empty cache, not streamed
      await engine.reset();
      const emptied = (await engine.stats()).cachedTokens;
      const fresh = await engine.chat.completions.create({ messages: messages.slice(0, -1), temperature: 0, max_tokens: 24 });
      // a conversation that cannot fit: an error by default, dropped turns on request
      let overflow = null;
      const huge = [{ role: 'user', content: 'word '.repeat(5000) }, { role: 'assistant', content: 'ok' }, { role: 'user', content: 'hi' }];
      try { await engine.chat.completions.create({ messages: huge, max_tokens: 8 }); } catch (e) { overflow = e.code; }
      const dropped = await engine.chat.completions.create({ messages: huge, max_tokens: 4, temperature: 0, context_overflow: 'drop-oldest' });
      await engine.dispose();
      out[kind] = { turns, emptied, fresh: fresh.choices[0].message.content, freshUsage: fresh.usage, overflow, dropped: dropped.usage.prompt_tokens };
    }
    return out;
  });
  for (const [kind, r] of Object.entries(got)) {
    const [t1, t2, t3] = r.turns;
    assert.equal(t1.usage.prompt_tokens_details.cached_tokens, 0, kind);
    for (const [prev, t] of [[t1, t2], [t2, t3]]) {
      // the whole previous prompt, and the reply the model gave to it, came from the cache
      assert.ok(t.usage.prompt_tokens_details.cached_tokens >= prev.usage.prompt_tokens, `${kind}: turn reuses the previous prompt: ${JSON.stringify(t.usage)}`);
      assert.ok(t.usage.prompt_tokens_details.cached_tokens > prev.usage.prompt_tokens_details.cached_tokens, `${kind}: cached tokens grow`);
      assert.ok(t.usage.prompt_tokens_details.cached_tokens < t.usage.prompt_tokens, `${kind}: the new question is prefilled`);
    }
    for (const t of r.turns) assert.ok(t.cachedAfter >= t.usage.prompt_tokens, `${kind}: the KV cache holds the turn: ${t.cachedAfter}`);
    assert.equal(r.emptied, 0, `${kind}: reset empties the cache`);
    assert.equal(r.freshUsage.prompt_tokens_details.cached_tokens, 0, kind);
    assert.equal(r.freshUsage.prompt_tokens, t3.usage.prompt_tokens, kind);
    assert.equal(t3.content, r.fresh, `${kind}: cached conversation equals a fresh one`);
    assert.ok(t3.content.length > 0, kind);
    assert.equal(r.overflow, 'context_length_exceeded', kind);
    assert.ok(r.dropped < 100, `${kind}: oldest turn dropped`);
  }
  assert.deepEqual(got.worker.turns.map((t) => t.content), got.page.turns.map((t) => t.content), 'the worker answers as the page does');
});

test('the worker engine streams, completes like the page engine, and aborts', async () => {
  const prompt = 'Once upon a time';
  const want = nativeIds(model, prompt, { maxTokens: 16 });
  const got = await inPage(async ({ prompt }) => {
    const engine = await wisp.createWorkerEngine('/model.gguf', { backend: 'cpu', cache: false });
    const info = engine.info;
    let streamed = '';
    for await (const c of engine.generate(prompt, { temperature: 0, maxTokens: 16 })) streamed += c.text;
    const done = await engine.complete(prompt, { temperature: 0, maxTokens: 16 });
    const ctl = new AbortController();
    let n = 0, aborted = null;
    try {
      for await (const c of engine.generate(prompt, { temperature: 0, maxTokens: 16, signal: ctl.signal })) if (++n === 2) ctl.abort();
    } catch (e) { aborted = e.name; }
    const ids = await engine.tokenize(prompt);
    const back = await engine.detokenize(ids);
    await engine.dispose();
    return { info, streamed, done, aborted, ids, back };
  }, { prompt });
  assert.equal(got.info.backend, 'cpu');
  assert.equal(got.streamed, want.text);
  assert.deepEqual(got.done.tokens, want.ids);
  assert.equal(got.aborted, 'AbortError');
  assert.deepEqual(got.ids, want.prompt_ids);
  assert.equal(got.back, prompt);
});

test('page and worker engines: two concurrent streams are queued, each equal to running it alone; aborting a queued call rejects it at once without running', async () => {
  const [a, b, n] = ['Once upon a time', 'The history of the printing press', 24];
  const wantA = nativeIds(model, a, { maxTokens: n });
  const got = await inPage(async ({ a, b, n }) => {
    const out = {};
    for (const kind of ['page', 'worker']) {
      const e = kind === 'worker'
        ? await wisp.createWorkerEngine('/model.gguf', { backend: 'cpu', cache: false })
        : await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false });
      const greedy = { temperature: 0, maxTokens: n };
      const sampled = { temperature: 0.9, seed: 7, maxTokens: n };
      const ids = (chunks) => chunks.filter((c) => c.token !== null).map((c) => c.token);
      // each alone; the KV cache then holds b's conversation, after a's
      const aloneA = (await e.complete(a, greedy)).tokens;
      const cachedA = (await e.stats()).cachedTokens;
      const aloneB = (await e.complete(b, sampled)).tokens;
      const cachedB = (await e.stats()).cachedTokens;
      // two streams consumed at once, each recording when its chunks arrive
      const order = [];
      const drain = async (prompt, opts, tag) => {
        const chunks = [];
        for await (const c of e.generate(prompt, opts)) { chunks.push(c); order.push(tag); }
        order.push(`${tag} end`);
        return chunks;
      };
      const [ca, cb] = await Promise.all([drain(a, greedy, 'a'), drain(b, sampled, 'b')]);
      // a runs; a complete() and a generate() of b wait behind it and are aborted after a's first chunk
      const events = [];
      let first;
      const firstChunk = new Promise((r) => { first = r; });
      const ctlB = new AbortController();
      const ctlC = new AbortController();
      const runA = (async () => {
        const chunks = [];
        for await (const c of e.generate(a, greedy)) { chunks.push(c); if (chunks.length === 1) first(); }
        events.push('a done');
        return chunks;
      })();
      const runB = e.complete(b, { ...greedy, signal: ctlB.signal })
        .then(() => 'ran', (err) => { events.push('b rejected'); return err.name; });
      let cChunks = 0;
      const runC = (async () => {
        try {
          for await (const c of e.generate(b, { ...greedy, signal: ctlC.signal })) cChunks++;
          return 'ran';
        } catch (err) {
          events.push('c rejected');
          return err.name;
        }
      })();
      await firstChunk;
      ctlB.abort();
      ctlC.abort();
      const [outA, resB, resC] = await Promise.all([runA, runB, runC]);
      // b and c never ran: the KV cache holds a's conversation, as after a alone
      const cachedAfter = (await e.stats()).cachedTokens;
      const after = (await e.complete(b, sampled)).tokens;
      await e.dispose();
      out[kind] = { aloneA, aloneB, cachedA, cachedB, ca: ids(ca), cb: ids(cb), order, outA: ids(outA), resB, resC, cChunks, events, cachedAfter, after };
    }
    return out;
  }, { a, b, n });
  for (const kind of ['page', 'worker']) {
    const r = got[kind];
    const at = `${kind} engine`;
    assert.deepEqual(r.aloneA, wantA.ids, `${at}: a alone equals the native CLI`);
    assert.equal(r.aloneB.length, n, `${at}: b alone`);
    assert.notEqual(r.cachedA, r.cachedB, `${at}: the two conversations fill the cache differently`);
    assert.deepEqual(r.ca, r.aloneA, `${at}: concurrent a equals a alone`);
    assert.deepEqual(r.cb, r.aloneB, `${at}: concurrent b (sampled, seeded) equals b alone`);
    const firstB = r.order.indexOf('b');
    assert.ok(firstB > r.order.indexOf('a end'), `${at}: b streamed only after a ended: ${r.order.join(' ')}`);
    assert.deepEqual(r.outA, r.aloneA, `${at}: a unaffected by the aborted calls`);
    assert.equal(r.resB, 'AbortError', `${at}: queued complete()`);
    assert.equal(r.resC, 'AbortError', `${at}: queued generate()`);
    assert.equal(r.cChunks, 0, `${at}: the queued generate() yielded nothing`);
    assert.deepEqual(r.events.slice(-1), ['a done'], `${at}: the queued calls rejected while a still ran: ${r.events.join(', ')}`);
    assert.equal(r.cachedAfter, r.cachedA, `${at}: the aborted calls never reached the engine`);
    assert.deepEqual(r.after, r.aloneB, `${at}: the engine generates as before`);
  }
});

test("perplexity in the page engine and in the worker engine equals the native CLI's", async () => {
  // a slice of the public-domain fixture (whole words), three windows of 128 tokens
  const full = fs.readFileSync(path.join(root, 'tests', 'fixtures', 'declaration.txt'), 'utf8');
  const text = full.slice(0, full.indexOf(' ', 2000));
  const ctx = 128;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wisp-ppl-'));
  let want;
  try {
    fs.writeFileSync(path.join(dir, 'text.txt'), text);
    want = nativePerplexity(model, path.join(dir, 'text.txt'), ctx);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const got = await inPage(async ({ text, ctx }) => {
    const page = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false });
    const p = await page.perplexity(text, { ctx });
    const tokens = (await page.tokenize(text)).length;
    await page.dispose();
    const worker = await wisp.createWorkerEngine('/model.gguf', { backend: 'cpu', cache: false });
    const w = await worker.perplexity(text, { ctx });
    await worker.dispose();
    return { p, w, tokens };
  }, { text, ctx });
  console.log(`# perplexity over ${want.tokens_scored} tokens (ctx ${ctx}): native ${want.ppl}, page ${got.p.ppl}, worker ${got.w.ppl}`);
  assert.ok(want.tokens_scored >= 3 * (ctx - 1), `three windows scored: ${JSON.stringify(want)}`);
  assert.equal(got.tokens, want.tokens, 'the same tokens');
  // the wasm CPU path's 'exact' numerics are bit-identical to the native build's, so the logits
  // are; only the f64 exp/ln of the log-softmax come from different libms (wasm's is Rust's
  // libm, natively glibc's): a relative 1e-12 allows their last-bit differences, while any
  // difference in a logit moves the result by far more
  for (const [name, r] of [['page', got.p], ['worker', got.w]]) {
    assert.equal(r.tokensScored, want.tokens_scored, `${name}: tokens scored`);
    const rel = Math.abs(r.ppl - want.ppl) / want.ppl;
    assert.ok(rel <= 1e-12, `${name}: perplexity ${r.ppl} vs native ${want.ppl} (relative ${rel})`);
  }
  assert.equal(got.w.ppl, got.p.ppl, 'the worker computes what the page does');
});

test('an aborted download throws AbortError and caches nothing', async () => {
  server.state.slow = 4e6; // 4 MB/s: the 98 MB model takes ~25 s
  try {
    const got = await inPage(async () => {
      const ctl = new AbortController();
      let progress = 0, err = null;
      try {
        await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: true, signal: ctl.signal, onProgress: (p) => { if (++progress === 3) ctl.abort(); } });
      } catch (e) { err = e.name; }
      return { err, progress, cached: await wisp.Engine.cached() };
    });
    assert.equal(got.err, 'AbortError');
    assert.deepEqual(got.cached, [], 'nothing cached from an aborted download');
  } finally {
    server.state.slow = 0;
  }
});

test('a cached model loads with the server stopped; evict removes it', async () => {
  const own = await serve({ roots: { '/pkg/': path.join(root, 'pkg') }, files: { '/': path.join(here, 'page.html'), '/model.gguf': model } });
  const p = await open(browser.context, own.url + '/');
  try {
    await p.page.waitForFunction(() => window.wispReady);
    const first = await p.page.evaluate(async () => {
      const e = await wisp.Engine.load('/model.gguf', { backend: 'cpu' });
      const r = await e.complete('Once upon a time', { temperature: 0, maxTokens: 8 });
      await e.dispose();
      return { cached: await wisp.Engine.cached(), info: e.info, tokens: r.tokens };
    });
    assert.equal(first.cached.length, 1);
    assert.equal(first.info.cached, false);
    await own.close();
    const second = await p.page.evaluate(async () => {
      const e = await wisp.Engine.load('/model.gguf', { backend: 'cpu' });
      const r = await e.complete('Once upon a time', { temperature: 0, maxTokens: 8 });
      const info = e.info;
      await e.dispose();
      const evicted = await wisp.Engine.evict('/model.gguf');
      let offline = null;
      try { await wisp.Engine.load('/model.gguf', { backend: 'cpu' }); } catch (err) { offline = String(err.message ?? err); }
      return { info, tokens: r.tokens, evicted, offline, left: await wisp.Engine.cached() };
    });
    assert.equal(second.info.cached, true);
    assert.deepEqual(second.tokens, first.tokens);
    assert.equal(second.evicted, true);
    assert.ok(second.offline, 'load fails once evicted with the server gone');
    assert.deepEqual(second.left, []);
  } finally {
    await p.page.close();
    await own.close();
  }
});

test('the demo page works offline: the shell from its service worker, the model from the cache, a greedy reply equal to the native CLI', async () => {
  const question = 'What is the capital of France?';
  const want = nativeIds(model, question, { chat: true, maxTokens: 512 });
  const own = await serve(siteRoots(root, model)); // as `make serve`: www/ at /, pkg/ at /pkg/
  const { page: pg, logs } = await open(browser.context, own.url + '/');
  try {
    // first visit: the service worker installs (caching the page, the widget and the package);
    // loading the model downloads it into the package's cache
    await pg.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 60_000 });
    await pg.selectOption('#backend', 'cpu');
    await pg.click('#loadBtn');
    await pg.locator('#input:not([disabled])').waitFor({ timeout: 120_000 });
    assert.doesNotMatch(await pg.textContent('#loadStatus'), /from the cache/);
    assert.ok(own.state.requests.includes('/models/default.gguf'), 'the model was downloaded once');
    await own.close();

    // offline: nothing answers on that port any more
    const responses = [];
    pg.on('response', (r) => responses.push({ url: new URL(r.url()).pathname, sw: r.fromServiceWorker(), ok: r.ok() }));
    await pg.reload();
    await pg.selectOption('#backend', 'cpu');
    await pg.fill('#temperature', '0');
    await pg.click('#loadBtn');
    await pg.locator('#input:not([disabled])').waitFor({ timeout: 120_000 });
    const status = await pg.textContent('#loadStatus');
    assert.match(status, /^llama, .*; loaded from the cache in/, status);
    // `make serve` sends COOP/COEP: the demo's worker engine runs the threaded build on every core
    const cores = Math.min(8, os.cpus().length);
    assert.match(status, new RegExp(`, cpu, ${cores} thread${cores === 1 ? '' : 's'};`), status);
    await pg.fill('#input', question);
    await pg.click('#send');
    await pg.locator('#send:not([disabled])').waitFor({ timeout: 120_000 });
    const got = await pg.evaluate(async (text) => {
      const { renderMarkdown } = await import('./pkg/render.js');
      const bubbles = [...document.querySelectorAll('#log .msg')];
      return {
        bubbles: bubbles.map((b) => b.className),
        reply: bubbles.at(-1).innerHTML,
        replyText: bubbles.at(-1).textContent,
        want: renderMarkdown(document.createElement('div'), text).innerHTML,
        stats: document.getElementById('stats').textContent,
        controlled: Boolean(navigator.serviceWorker.controller),
      };
    }, want.text);
    assert.ok(got.controlled, 'the page is controlled by its service worker');
    assert.deepEqual(got.bubbles, ['msg user', 'msg assistant']);
    assert.ok(got.replyText.trim().length > 0, 'a reply');
    assert.equal(got.reply, got.want, `the greedy reply renders the native CLI's text: ${JSON.stringify(want.text)}`);
    assert.match(got.stats, new RegExp(`· ${want.ids.length} tokens `), got.stats);
    // the page, its scripts and the package came from the service worker's cache
    for (const f of ['/', '/app.js', '/pkg/index.js', '/pkg/render.js']) {
      assert.ok(responses.some((r) => r.url === f && r.sw && r.ok), `${f} from the service worker: ${JSON.stringify(responses)}`);
    }
    assert.deepEqual(responses.filter((r) => !r.sw || !r.ok), [], 'responses not from the service worker');

    // the widget's page and scripts are in the service worker's cache too
    const widget = await pg.evaluate(() => Promise.all(['/tutor.html', '/tutor.js', '/pkg/tutor.js'].map((u) => fetch(u).then((r) => r.status, (e) => e.message))));
    assert.deepEqual(widget, [200, 200, 200], 'the widget offline');
  } catch (e) {
    throw new Error(`${e.message}\npage log:\n${logs.join('\n')}`);
  } finally {
    await pg.close();
    await own.close();
  }
});

test('a model over the adapter\'s storage-binding limit: webgpu names the limit, auto falls back to the CPU', async () => {
  const got = await inPageOf(browser.context, server.url, async () => {
    // an adapter that allows 1 MiB storage bindings: the 28 MB embedding would be cut into
    // parts, but a prefill batch's logits (64 × 49,152 floats) need 12.6 MB in one buffer
    const real = Object.getOwnPropertyDescriptor(GPUAdapter.prototype, 'limits').get;
    Object.defineProperty(GPUAdapter.prototype, 'limits', {
      get() {
        const l = real.call(this);
        return new Proxy(l, { get: (t, k) => (k === 'maxStorageBufferBindingSize' ? 1 << 20 : Reflect.get(t, k)) });
      },
    });
    let strict = null;
    try { await wisp.Engine.load('/model.gguf', { backend: 'webgpu', cache: false }); } catch (e) { strict = String(e.message ?? e); }
    const e = await wisp.Engine.load('/model.gguf', { backend: 'auto', cache: false });
    const r = await e.complete('Once upon a time', { temperature: 0, maxTokens: 8 });
    await e.dispose();
    return { strict, info: e.info, tokens: r.tokens };
  }, undefined, { onPage: requireWebGpu });
  assert.match(got.strict ?? '', /max_storage_buffer_binding_size.*needs \d+ but this adapter allows 1048576/, got.strict);
  assert.equal(got.info.backend, 'cpu');
  assert.match(got.info.fallback, /WebGPU failed .*max_storage_buffer_binding_size/);
  assert.deepEqual(got.tokens, nativeIds(model, 'Once upon a time', { maxTokens: 8 }).ids);
});

test('without WebGPU, auto falls back to the CPU and says so; webgpu and the WebGPU tests\' guard fail naming the adapter', async () => {
  const plain = await launch({ webgpu: false });
  try {
    const got = await inPage(async () => {
      let strict = null;
      try { await wisp.Engine.load('/model.gguf', { backend: 'webgpu', cache: false }); } catch (err) { strict = String(err.message ?? err); }
      const e = await wisp.Engine.load('/model.gguf', { cache: false });
      const r = await e.complete('Once upon a time', { temperature: 0, maxTokens: 8 });
      return { strict, info: e.info, tokens: r.tokens };
    }, undefined, plain.context);
    // backend: 'webgpu' is strict: no silent CPU run
    assert.match(got.strict ?? 'no error', /^wisp: WebGPU requested but (this browser has no WebGPU \(navigator\.gpu is missing\)|no WebGPU adapter is available)$/);
    assert.equal(got.info.backend, 'cpu');
    assert.match(got.info.fallback, /WebGPU|adapter/);
    assert.deepEqual(got.tokens, nativeIds(model, 'Once upon a time', { maxTokens: 8 }).ids);
    // every WebGPU test starts with requireWebGpu: here it must fail, naming what is missing
    const p = await open(plain.context, server.url + '/');
    try {
      await assert.rejects(requireWebGpu(p.page), /needs a WebGPU adapter.*(navigator\.gpu is missing|requestAdapter\(\) returned null: no WebGPU adapter)/);
    } finally {
      await p.page.close();
    }
  } finally {
    assert.deepEqual(plain.offsite, []);
    await plain.close();
  }
});
