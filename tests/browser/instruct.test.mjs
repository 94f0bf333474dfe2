// What instruction-following apps need beyond chat, in headless Chromium: token log-probabilities
// through `generate` (`logprobs`, `topLogprobs`) and `chat.completions.create` (OpenAI's
// `logprobs` / `top_logprobs`), in the page and the worker engine, on the CPU and WebGPU, against
// the native CLI's `--logprobs`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { serve, launch, inPageOf, nativeIds, requireWebGpu, defaultModel, root, here } from './harness.mjs';

let model, server, browser;
before(async () => {
  model = defaultModel();
  server = await serve({
    roots: { '/pkg/': path.join(root, 'pkg') },
    files: { '/': path.join(here, 'page.html'), '/model.gguf': model },
  });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
  assert.deepEqual(browser?.offsite ?? [], [], 'requests left 127.0.0.1');
});

/** The wasm CPU path against the native one: the same exact numerics, sums in SIMD order. */
const CPU_ATOL = 1e-3;
/** WebGPU (SwiftShader) against the page's CPU path. */
const GPU_ATOL = 0.02;

function close(got, want, atol, what) {
  assert.ok(Math.abs(got - want) <= atol, `${what}: ${got} vs ${want}`);
}

test('log-probabilities in the page: generate chunks and chat.completions (page and worker engines, streamed or not) equal the native CLI; WebGPU equals the CPU; bad options are refused', async () => {
  const prompt = 'The capital of France is';
  const want = nativeIds(model, prompt, { maxTokens: 12, logprobs: 3 });
  const chatWant = nativeIds(model, 'Name a colour.', { maxTokens: 8, logprobs: 2, chat: true });
  const got = await inPageOf(browser.context, server.url, async ({ prompt }) => {
    const out = {};
    const e = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false });
    out.chunks = [];
    for await (const c of e.generate(prompt, { temperature: 0, maxTokens: 12, ignoreEos: true, logprobs: true, topLogprobs: 3 })) out.chunks.push(c);
    out.plain = [];
    for await (const c of e.generate(prompt, { temperature: 0, maxTokens: 2 })) out.plain.push(c);
    const req = { messages: [{ role: 'user', content: 'Name a colour.' }], temperature: 0, max_tokens: 8, logprobs: true, top_logprobs: 2 };
    out.chat = await e.chat.completions.create(req);
    out.noLogprobs = await e.chat.completions.create({ ...req, logprobs: false, top_logprobs: undefined });
    out.streamed = [];
    for await (const c of await e.chat.completions.create({ ...req, stream: true })) out.streamed.push(c);
    const msg = async (f) => { try { await f(); return null; } catch (err) { return `${err.name}: ${err.message}`; } };
    out.tooMany = await msg(() => e.complete(prompt, { maxTokens: 1, logprobs: true, topLogprobs: 21 }));
    out.without = await msg(() => e.complete(prompt, { maxTokens: 1, topLogprobs: 2 }));
    out.after = (await e.complete(prompt, { temperature: 0, maxTokens: 3 })).tokens;
    await e.dispose();
    const w = await wisp.createWorkerEngine('/model.gguf', { backend: 'cpu', cache: false });
    out.worker = await w.chat.completions.create(req);
    await w.dispose();
    const g = await wisp.Engine.load('/model.gguf', { backend: 'webgpu', cache: false });
    out.gpu = [];
    for await (const c of g.generate(prompt, { temperature: 0, maxTokens: 4, ignoreEos: true, logprobs: true, topLogprobs: 3 })) out.gpu.push(c);
    out.gpuBackend = g.info.backend;
    await g.dispose();
    return out;
  }, { prompt }, { onPage: requireWebGpu });

  // generate: every token chunk carries its log-probability, the native CLI's
  const tokens = got.chunks.filter((c) => c.token !== null);
  assert.deepEqual(tokens.map((c) => c.token), want.ids);
  tokens.forEach((c, i) => {
    const w = want.logprobs[i];
    close(c.logprob, w.logprob, CPU_ATOL, `step ${i}`);
    assert.equal(c.topLogprobs.length, 3);
    assert.deepEqual(c.topLogprobs.map((a) => a.token), w.top_logprobs.map((a) => a.token), `step ${i}: alternatives`);
    c.topLogprobs.forEach((a, j) => { close(a.logprob, w.top_logprobs[j].logprob, CPU_ATOL, `step ${i} alternative ${j}`); assert.equal(a.text, w.top_logprobs[j].text); });
    // greedy: the token is the likeliest
    assert.equal(c.topLogprobs[0].token, c.token);
    assert.ok(Array.isArray(c.bytes) && c.bytes.length > 0);
  });
  assert.ok(got.plain.every((c) => c.logprob === undefined && c.topLogprobs === undefined), 'no log-probabilities unless asked');

  // chat.completions: OpenAI's shape, one entry per completion token, equal to the CLI's --chat
  const content = got.chat.choices[0].logprobs.content;
  assert.equal(content.length, got.chat.usage.completion_tokens);
  assert.equal(content.length, chatWant.ids.length);
  content.forEach((c, i) => {
    close(c.logprob, chatWant.logprobs[i].logprob, CPU_ATOL, `chat step ${i}`);
    assert.equal(c.token, chatWant.logprobs[i].text);
    assert.equal(c.top_logprobs.length, 2);
    assert.deepEqual(c.bytes, [...new TextEncoder().encode(c.token)]);
  });
  assert.equal(got.noLogprobs.choices[0].logprobs, null);
  assert.equal(got.noLogprobs.choices[0].message.content, got.chat.choices[0].message.content);
  const streamed = got.streamed.flatMap((c) => c.choices[0].logprobs?.content ?? []);
  assert.deepEqual(streamed, content, 'streamed chunks carry the same entries');
  assert.equal(got.streamed.map((c) => c.choices[0].delta.content ?? '').join(''), got.chat.choices[0].message.content);
  assert.deepEqual(got.worker.choices[0].logprobs, got.chat.choices[0].logprobs, 'the worker engine');

  assert.match(got.tooMany, /RangeError: .*topLogprobs/);
  assert.match(got.without, /TypeError: .*logprobs: true/);
  assert.deepEqual(got.after, want.ids.slice(0, 3), 'the engine after refused calls');

  // WebGPU: the logits come back each step; the same tokens, log-probabilities close to the CPU's
  assert.equal(got.gpuBackend, 'webgpu');
  const gt = got.gpu.filter((c) => c.token !== null);
  assert.deepEqual(gt.map((c) => c.token), want.ids.slice(0, 4));
  gt.forEach((c, i) => close(c.logprob, tokens[i].logprob, GPU_ATOL, `WebGPU step ${i}`));
});
