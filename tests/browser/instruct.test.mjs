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

test('constrained output in the page: a GBNF grammar equals the native CLI, jsonSchema and response_format give JSON that validates (page and worker, CPU and WebGPU), bad grammars and schemas are refused clearly', async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const grammar = 'root ::= "The colour is " colour "."\ncolour ::= "red" | "green" | "blue" | "yellow"\n';
  const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 20 }, age: { type: 'integer' }, colour: { enum: ['red', 'green', 'blue'] } }, required: ['name', 'age', 'colour'] };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wisp-grammar-'));
  fs.writeFileSync(path.join(dir, 'g.gbnf'), grammar);
  fs.writeFileSync(path.join(dir, 's.json'), JSON.stringify(schema));
  const question = '<|im_start|>user\nWhat colour is the sky?<|im_end|>\n<|im_start|>assistant\n';
  const { execFileSync } = await import('node:child_process');
  const { wispBin } = await import('./harness.mjs');
  const cli = (extra) => JSON.parse(execFileSync(wispBin, ['generate', '--model', model, '--prompt', question, '--temperature', '0', '--max-tokens', '40', '--backend', 'cpu', '--json', ...extra], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  const wantG = cli(['--grammar', path.join(dir, 'g.gbnf')]);
  const wantS = cli(['--json-schema', path.join(dir, 's.json')]);
  const got = await inPageOf(browser.context, server.url, async ({ question, grammar, schema }) => {
    const out = {};
    const msg = async (f) => { try { await f(); return null; } catch (err) { return `${err.name}: ${err.message}`; } };
    const e = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false });
    out.g = await e.complete(question, { temperature: 0, maxTokens: 40, grammar });
    out.s = await e.complete(question, { temperature: 0, maxTokens: 40, jsonSchema: schema });
    out.sampled = [];
    for (let seed = 0; seed < 6; seed++) out.sampled.push((await e.complete(question, { temperature: 1, topK: 0, topP: 1, minP: 0, seed, maxTokens: 60, jsonSchema: schema })).text);
    const req = { messages: [{ role: 'user', content: 'Describe a cat.' }], temperature: 0, max_tokens: 60 };
    out.chatSchema = await e.chat.completions.create({ ...req, response_format: { type: 'json_schema', json_schema: { name: 'cat', schema } } });
    out.chatObject = await e.chat.completions.create({ ...req, response_format: { type: 'json_object' } });
    out.badGrammar = await msg(() => e.complete('x', { maxTokens: 1, grammar: 'root ::= "a"\nitem ::= [a-z' }));
    out.badSchema = await msg(() => e.complete('x', { maxTokens: 1, jsonSchema: { type: 'string', pattern: '^a+$' } }));
    out.both = await msg(() => e.complete('x', { maxTokens: 1, grammar, jsonSchema: schema }));
    out.badFormat = await msg(() => e.chat.completions.create({ ...req, response_format: { type: 'yaml' } }));
    out.after = (await e.complete(question, { temperature: 0, maxTokens: 40, grammar })).text;
    await e.dispose();
    const w = await wisp.createWorkerEngine('/model.gguf', { backend: 'cpu', cache: false });
    out.worker = (await w.chat.completions.create({ ...req, response_format: { type: 'json_schema', json_schema: { schema } } })).choices[0].message.content;
    await w.dispose();
    const g = await wisp.Engine.load('/model.gguf', { backend: 'webgpu', cache: false });
    out.gpu = await g.complete(question, { temperature: 0, maxTokens: 12, grammar });
    out.gpuBackend = g.info.backend;
    await g.dispose();
    return out;
  }, { question, grammar, schema }, { onPage: requireWebGpu });
  fs.rmSync(dir, { recursive: true, force: true });

  assert.deepEqual(got.g.tokens, wantG.ids, 'grammar: the CLI\'s ids');
  assert.match(got.g.text, /^The colour is (red|green|blue|yellow)\.$/);
  assert.deepEqual(got.s.tokens, wantS.ids, 'jsonSchema: the CLI\'s ids');
  const valid = (text, what) => {
    const v = JSON.parse(text);
    assert.deepEqual(Object.keys(v), ['name', 'age', 'colour'], `${what}: keys in the schema's order: ${text}`);
    assert.ok(typeof v.name === 'string' && v.name.length <= 20 && Number.isInteger(v.age) && ['red', 'green', 'blue'].includes(v.colour), `${what}: ${text}`);
  };
  valid(got.s.text, 'jsonSchema');
  got.sampled.forEach((t, i) => valid(t, `sampled seed ${i}`));
  valid(got.chatSchema.choices[0].message.content, 'response_format json_schema');
  assert.equal(got.worker, got.chatSchema.choices[0].message.content, 'the worker engine');
  const obj = JSON.parse(got.chatObject.choices[0].message.content);
  assert.ok(obj && typeof obj === 'object' && !Array.isArray(obj), 'json_object: an object');
  assert.match(got.badGrammar, /line 2, column \d+: unterminated character class/);
  assert.match(got.badSchema, /pattern/);
  assert.match(got.both, /not both/);
  assert.match(got.badFormat, /TypeError: .*response_format/);
  assert.equal(got.after, got.g.text, 'the engine after refused calls');
  assert.equal(got.gpuBackend, 'webgpu');
  assert.deepEqual(got.gpu.tokens, wantG.ids.slice(0, got.gpu.tokens.length), 'WebGPU under the grammar');
  assert.equal(got.gpu.text, got.g.text);
});
