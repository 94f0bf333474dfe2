// The threaded build in headless Chromium: in a cross-origin-isolated page (COOP/COEP served) the
// CPU path runs on Web Workers sharing the module's memory, with the native CLI's greedy ids in
// both numerics, in the page and in the worker engine; without isolation the page falls back to a
// single-thread build; aborts mid-prefill and mid-decode leave it usable; dispose ends the workers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { serve, launch, open, nativeIds, requireWebGpu, defaultModel, root, here } from './harness.mjs';

const PROMPTS = [
  { prompt: 'What is the capital of France?', chat: true },
  { prompt: 'The history of the printing press', chat: false },
  { prompt: '<|im_start|>user\nWrite a haiku about rain.<|im_end|>\n<|im_start|>assistant\n', chat: false },
];
const N = Number(process.env.WISP_BROWSER_TOKENS || 64);
const THREADED = 'simd128+relaxed+threads';

let model, isolated, plain, browser;
before(async () => {
  model = defaultModel();
  const site = { roots: { '/pkg/': path.join(root, 'pkg') }, files: { '/': path.join(here, 'page.html'), '/model.gguf': model } };
  isolated = await serve({ ...site, coi: true });
  plain = await serve(site);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await isolated?.close();
  await plain?.close();
  assert.deepEqual(browser?.offsite ?? [], [], 'requests left 127.0.0.1');
});

/** Runs `fn(arg)` in a fresh page of `server`; `fn` gets the page too, outside, through `withPage`. */
async function inPage(server, fn, arg, withPage) {
  const { page, logs } = await open(browser.context, server.url + '/');
  await page.waitForFunction(() => window.wispReady);
  try {
    if (withPage) return await withPage(page, () => page.evaluate(fn, arg));
    return await page.evaluate(fn, arg);
  } catch (e) {
    throw new Error(`${e.message}\npage log:\n${logs.join('\n')}`);
  } finally {
    await page.close();
  }
}

/** Greedy runs of PROMPTS in one engine (the page's, or a worker engine's). */
async function greedyRuns(server, opts, { worker = false } = {}) {
  return inPage(server, async ({ prompts, n, opts, worker }) => {
    const engine = worker ? await wisp.createWorkerEngine('/model.gguf', opts) : await wisp.Engine.load('/model.gguf', opts);
    const out = { isolated: self.crossOriginIsolated, info: engine.info, runs: [] };
    for (const { prompt, chat } of prompts) {
      await engine.reset();
      if (chat) {
        const r = await engine.chat.completions.create({ messages: [{ role: 'user', content: prompt }], temperature: 0, max_tokens: n });
        out.runs.push({ text: r.choices[0].message.content });
      } else {
        const r = await engine.complete(prompt, { temperature: 0, maxTokens: n });
        out.runs.push({ ids: r.tokens, text: r.text });
      }
    }
    await engine.dispose();
    return out;
  }, { prompts: PROMPTS, n: N, opts: { backend: 'cpu', cache: false, ...opts }, worker });
}

function checkAgainstNative(got, numerics) {
  PROMPTS.forEach(({ prompt, chat }, i) => {
    const want = nativeIds(model, prompt, { chat, maxTokens: N, numerics });
    if (got.runs[i].ids) assert.deepEqual(got.runs[i].ids, want.ids, `prompt ${i} ids (${numerics})`);
    assert.equal(got.runs[i].text, want.text, `prompt ${i} text (${numerics})`);
  });
}

test('cross-origin isolated: the threaded build runs the CPU path on 2 threads with the native CLI\'s ids in both numerics, in the page and in the worker engine', async () => {
  for (const numerics of ['exact', 'llamacpp']) {
    const got = await greedyRuns(isolated, { numerics, threads: 2 });
    assert.equal(got.isolated, true);
    assert.equal(got.info.wasmBuild, THREADED);
    assert.equal(got.info.threads, 2, 'the page thread and one worker');
    assert.equal(got.info.numerics, numerics);
    checkAgainstNative(got, numerics);
  }
  // the worker engine starts its CPU workers from inside its own worker
  const got = await greedyRuns(isolated, { numerics: 'llamacpp', threads: 2 }, { worker: true });
  assert.equal(got.info.wasmBuild, THREADED);
  assert.equal(got.info.threads, 2);
  checkAgainstNative(got, 'llamacpp');
});

test('without cross-origin isolation the page loads a single-thread build and still matches the native CLI', async () => {
  const got = await greedyRuns(plain, { numerics: 'exact', threads: 4 });
  assert.equal(got.isolated, false);
  assert.equal(got.info.wasmBuild, 'simd128+relaxed');
  assert.equal(got.info.threads, 1);
  checkAgainstNative(got, 'exact');
});

test('threads option: bad values are refused by name; threads: 1 runs the threaded build on the page thread alone', async () => {
  const got = await inPage(isolated, async () => {
    const refused = [];
    for (const threads of [0, -1, 1.5, 65, '2', Infinity]) {
      try {
        await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false, threads });
        refused.push(null);
      } catch (e) { refused.push(`${e.name}: ${e.message}`); }
    }
    const engine = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false, threads: 1 });
    const r = await engine.complete('Once upon a time', { temperature: 0, maxTokens: 16 });
    const info = engine.info;
    await engine.dispose();
    return { refused, info, tokens: r.tokens };
  });
  for (const r of got.refused) assert.match(r ?? 'accepted', /^RangeError: wisp: threads must be an integer from 1 to 64/);
  assert.equal(got.info.wasmBuild, THREADED);
  assert.equal(got.info.threads, 1);
  assert.deepEqual(got.tokens, nativeIds(model, 'Once upon a time', { maxTokens: 16 }).ids);
});

test('with threads running, aborts mid-prefill and mid-decode leave the engine usable', async () => {
  const prompt = 'The history of the printing press';
  const want = nativeIds(model, prompt, { maxTokens: 32 });
  const got = await inPage(isolated, async ({ prompt }) => {
    const engine = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false, threads: 2 });
    // mid-decode: after three chunks
    const ctl = new AbortController();
    let n = 0, decodeAbort = null;
    try {
      for await (const c of engine.generate(prompt, { temperature: 0, maxTokens: 32, signal: ctl.signal })) if (++n === 3) ctl.abort();
    } catch (e) { decodeAbort = e.name; }
    // mid-prefill: a long prompt, aborted 30 ms in
    const long = 'Tell me everything about the history of mathematics. '.repeat(40);
    const ctl2 = new AbortController();
    let m = 0, prefillAbort = null;
    setTimeout(() => ctl2.abort(), 30);
    try {
      for await (const c of engine.generate(long, { temperature: 0, maxTokens: 8, signal: ctl2.signal })) m++;
    } catch (e) { prefillAbort = e.name; }
    const after = await engine.complete(prompt, { temperature: 0, maxTokens: 32 });
    const info = engine.info;
    await engine.dispose();
    return { decodeAbort, n, prefillAbort, m, after, info };
  }, { prompt });
  assert.equal(got.info.threads, 2);
  assert.equal(got.decodeAbort, 'AbortError');
  assert.equal(got.n, 3, 'no chunk after the abort');
  assert.equal(got.prefillAbort, 'AbortError');
  assert.equal(got.m, 0, 'aborted before the first token');
  assert.deepEqual(got.after.tokens, want.ids, 'usable after the aborts');
});

test('dispose ends the CPU workers: no growth over repeated load and dispose; engines loaded together share them', async () => {
  const counts = await inPage(isolated, null, null, async (page) => {
    const workers = () => page.workers().length;
    const seen = [workers()];
    for (let i = 0; i < 4; i++) {
      await page.evaluate(async () => {
        window.engine = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false, threads: 3 });
        window.threads = window.engine.info.threads;
      });
      seen.push(workers(), await page.evaluate(() => window.threads));
      await page.evaluate(() => window.engine.dispose());
      // terminated workers leave the page's list as their 'close' events arrive
      for (let t = 0; t < 50 && workers() > 0; t++) await new Promise((r) => setTimeout(r, 20));
      seen.push(workers());
    }
    // two engines at once share one set of workers; it ends with the last dispose
    const both = await page.evaluate(async () => {
      const a = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false, threads: 2 });
      const b = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false, threads: 2 });
      window.pair = [a, b];
      return [a.info.threads, b.info.threads];
    });
    const withTwo = workers();
    await page.evaluate(() => window.pair[0].dispose());
    await new Promise((r) => setTimeout(r, 200));
    const withOne = workers();
    const still = await page.evaluate(async () => (await window.pair[1].complete('Once upon a time', { temperature: 0, maxTokens: 8 })).tokens);
    await page.evaluate(() => window.pair[1].dispose());
    for (let t = 0; t < 50 && workers() > 0; t++) await new Promise((r) => setTimeout(r, 20));
    return { seen, both, withTwo, withOne, still, last: workers() };
  });
  // before any load: none; each load: two workers (3 threads); each dispose: none again
  assert.deepEqual(counts.seen, [0, 2, 3, 0, 2, 3, 0, 2, 3, 0, 2, 3, 0]);
  assert.deepEqual(counts.both, [2, 2]);
  assert.equal(counts.withTwo, 1);
  assert.equal(counts.withOne, 1, 'the second engine still holds the worker');
  assert.deepEqual(counts.still, nativeIds(model, 'Once upon a time', { maxTokens: 8 }).ids);
  assert.equal(counts.last, 0);
});

test('WebGPU in the threaded build (its wgpu on shared memory): greedy ids equal the native CLI; info.threads is 1', async () => {
  // SwiftShader takes seconds per token: a short prompt, a few tokens
  const prompt = 'The capital of France is';
  const n = Number(process.env.WISP_BROWSER_GPU_TOKENS || 4);
  const got = await inPage(isolated, async ({ prompt, n }) => {
    const engine = await wisp.Engine.load('/model.gguf', { backend: 'webgpu', cache: false, threads: 2 });
    const r = await engine.complete(prompt, { temperature: 0, maxTokens: n });
    const info = engine.info;
    await engine.dispose();
    return { info, tokens: r.tokens };
  }, { prompt, n }, async (page, run) => {
    await requireWebGpu(page);
    return run();
  });
  assert.equal(got.info.wasmBuild, THREADED);
  assert.equal(got.info.backend, 'webgpu');
  assert.equal(got.info.threads, 1, 'no CPU workers for a WebGPU engine');
  assert.deepEqual(got.tokens, nativeIds(model, prompt, { maxTokens: n }).ids);
});

test('a CPU worker that cannot start is dropped: the engine loads on the threads that did and still matches the native CLI', async () => {
  const got = await inPage(isolated, async () => {
    const engine = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false, threads: 2 });
    const r = await engine.complete('Once upon a time', { temperature: 0, maxTokens: 16 });
    const info = engine.info;
    await engine.dispose();
    return { info, tokens: r.tokens };
  }, null, async (page, run) => {
    // the workers' script never arrives
    await page.route('**/pkg/thread.js', (route) => route.abort('failed'));
    return run();
  });
  assert.equal(got.info.wasmBuild, THREADED);
  assert.equal(got.info.threads, 1);
  assert.deepEqual(got.tokens, nativeIds(model, 'Once upon a time', { maxTokens: 16 }).ids);
});
