// engine.evaluate in headless Chromium (CPU backend): the report of three items of the project's
// instruction set (one a conversation) equal to the native `wisp eval --json` on the same items
// (outputs and counts identical, BLEU/ROUGE from the same Rust metrics, perplexities within 1e-9
// relative), in the page and the worker engine; onProgress in order; an abort mid-way rejects
// with an AbortError and the engine then evaluates as before; bad items refused naming them; a
// base model (no chat template) continues plain prompts and refuses `messages`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { serve, launch, inPageOf, defaultModel, knownModel, wispBin, root, here } from './harness.mjs';

const MAX_TOKENS = 12;

let model, gemma, server, browser;
before(async () => {
  model = defaultModel();
  gemma = knownModel('gemma3-270m');
  server = await serve({
    roots: { '/pkg/': path.join(root, 'pkg') },
    files: { '/': path.join(here, 'page.html'), '/model.gguf': model, '/gemma.gguf': gemma },
  });
  browser = await launch({ webgpu: false });
});
after(async () => {
  await browser?.close();
  await server?.close();
  assert.deepEqual(browser?.offsite ?? [], [], 'requests left 127.0.0.1');
});

/** The first two items of data/eval/instructions.jsonl and its first conversation. */
function threeItems() {
  const lines = fs.readFileSync(path.join(root, 'data', 'eval', 'instructions.jsonl'), 'utf8').split('\n').filter((l) => l.trim());
  const conv = lines.findIndex((l) => l.includes('"messages"'));
  return [lines[0], lines[1], lines[conv]].map((l) => JSON.parse(l));
}

/** `wisp eval` on `items` written to a JSONL file: the parsed --json report, and the table. */
function nativeEval(modelPath, items, maxTokens) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wisp-eval-'));
  try {
    const data = path.join(dir, 'set.jsonl');
    fs.writeFileSync(data, items.map((it) => JSON.stringify(it)).join('\n') + '\n');
    const run = (extra) => execFileSync(wispBin, ['eval', '--model', modelPath, '--data', data, '--max-tokens', String(maxTokens), '--backend', 'cpu', ...extra],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { json: JSON.parse(run(['--json'])), table: run([]) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const rel = (a, b) => (a === b ? 0 : Math.abs(a - b) / Math.abs(b));

/** `got` (a page's report) against the native one: the same items, texts and counts; the same
 * metrics (plain arithmetic exactly, exp/log within 1e-12: wasm's libm is Rust's, natively
 * glibc's); the perplexities within 1e-9. Returns the largest perplexity difference. */
function sameReport(got, want, what) {
  let worst = 0;
  assert.equal(got.items.length, want.items.length, `${what}: items`);
  got.items.forEach((g, i) => {
    const w = want.items[i];
    const at = `${what}, item ${i + 1}`;
    for (const k of ['id', 'line', 'output', 'reference', 'prompt_tokens', 'generated_tokens', 'finish', 'reference_tokens', 'rouge1', 'rouge2', 'rougeL']) {
      assert.deepEqual(g[k], w[k], `${at}: ${k}`);
    }
    assert.ok(rel(g.bleu, w.bleu) <= 1e-12, `${at}: BLEU ${g.bleu} vs ${w.bleu}`);
    for (const k of ['reference_nll', 'perplexity']) {
      const r = rel(g[k], w[k]);
      worst = Math.max(worst, r);
      assert.ok(r <= 1e-9, `${at}: ${k} ${g[k]} vs native ${w[k]} (relative ${r})`);
    }
  });
  const [g, w] = [got.corpus, want.corpus];
  for (const k of ['items', 'bleu_signature', 'rouge1', 'rouge2', 'rougeL', 'reference_tokens']) assert.deepEqual(g[k], w[k], `${what}: corpus ${k}`);
  for (const k of ['counts', 'totals', 'precisions', 'sys_len', 'ref_len']) assert.deepEqual(g.bleu[k], w.bleu[k], `${what}: corpus BLEU ${k}`);
  for (const k of ['score', 'bp']) assert.ok(rel(g.bleu[k], w.bleu[k]) <= 1e-12, `${what}: corpus BLEU ${k} ${g.bleu[k]} vs ${w.bleu[k]}`);
  const r = rel(g.perplexity, w.perplexity);
  worst = Math.max(worst, r);
  assert.ok(r <= 1e-9, `${what}: corpus perplexity ${g.perplexity} vs native ${w.perplexity} (relative ${r})`);
  assert.equal(got.max_tokens, want.max_tokens, `${what}: max_tokens`);
  assert.equal(got.chat_template, want.chat_template, `${what}: chat_template`);
  return worst;
}

test("engine.evaluate in the page and the worker equals `wisp eval --json`; onProgress in order; an abort mid-way leaves the engine evaluating as before; bad items refused naming them", async () => {
  const items = threeItems();
  assert.ok(items[2].messages, 'one item is a conversation');
  const want = nativeEval(model, items, MAX_TOKENS);
  assert.equal(want.json.chat_template, true);

  const got = await inPageOf(browser.context, server.url, async ({ items, maxTokens }) => {
    const msg = async (f) => { try { await f(); return null; } catch (err) { return `${err.name}: ${err.message}`; } };
    const out = {};
    const e = await wisp.Engine.load('/model.gguf', { backend: 'cpu', cache: false });
    out.progress = [];
    out.report = await e.evaluate(items, { maxTokens, onProgress: (p) => out.progress.push(p) });

    // abort from onProgress after the first item: nothing more runs
    const ctl = new AbortController();
    let heard = 0;
    out.aborted = await msg(() => e.evaluate(items, { maxTokens, signal: ctl.signal, onProgress: () => { heard++; ctl.abort(); } }));
    out.heardBeforeAbort = heard;
    // abort while the second item runs (a timer, so it lands between steps)
    const ctl2 = new AbortController();
    out.abortedMidItem = await msg(() => e.evaluate(items, { maxTokens, signal: ctl2.signal, onProgress: (p) => { if (p.done === 1) setTimeout(() => ctl2.abort(), 5); } }));
    const pre = new AbortController();
    pre.abort();
    out.preAborted = await msg(() => e.evaluate(items, { maxTokens, signal: pre.signal }));
    // the engine after the aborts: the same report
    out.again = await e.evaluate(items, { maxTokens });

    // bad sets, each refused naming the item, before anything runs
    const good = items[0];
    out.bad = {
      noReference: await msg(() => e.evaluate([good, { prompt: 'Hello' }], { maxTokens })),
      emptyReference: await msg(() => e.evaluate([good, good, { prompt: 'Hello', reference: ' ' }], { maxTokens })),
      both: await msg(() => e.evaluate([{ prompt: 'a', messages: [{ role: 'user', content: 'b' }], reference: 'c' }], { maxTokens })),
      notObject: await msg(() => e.evaluate([good, 'What is 2+2?'], { maxTokens })),
      badMessage: await msg(() => e.evaluate([good, { messages: [{ role: 'user' }], reference: 'x' }], { maxTokens })),
      tooLong: await msg(() => e.evaluate([good, { prompt: 'word '.repeat(5000), reference: 'x' }], { maxTokens })),
      empty: await msg(() => e.evaluate([], { maxTokens })),
      notList: await msg(() => e.evaluate({ prompt: 'a', reference: 'b' }, { maxTokens })),
      maxTokens: await msg(() => e.evaluate(items, { maxTokens: 0 })),
    };
    out.afterBad = (await e.evaluate([items[0]], { maxTokens })).items[0];
    out.complete = (await e.complete('The capital of France is', { temperature: 0, maxTokens: 4 })).text;
    await e.dispose();

    const w = await wisp.createWorkerEngine('/model.gguf', { backend: 'cpu', cache: false });
    out.workerProgress = [];
    out.worker = await w.evaluate(items, { maxTokens, onProgress: (p) => out.workerProgress.push(p) });
    const ctl3 = new AbortController();
    out.workerAborted = await msg(() => w.evaluate(items, { maxTokens, signal: ctl3.signal, onProgress: () => ctl3.abort() }));
    out.workerAgain = await w.evaluate(items, { maxTokens });
    out.workerBad = await msg(() => w.evaluate([items[0], { prompt: 'Hello' }], { maxTokens }));
    await w.dispose();
    return out;
  }, { items, maxTokens: MAX_TOKENS });

  const worst = sameReport(got.report, want.json, 'page');
  console.log(`# evaluate: ${got.report.items.map((it) => JSON.stringify(it.output)).join(', ')}; perplexity ${got.report.corpus.perplexity} (native ${want.json.corpus.perplexity}, largest relative difference ${worst})`);
  assert.equal(got.report.table, want.table, "the table is the CLI's");
  assert.ok(got.report.items.some((it) => it.finish === 'eog') && got.report.items.every((it) => it.generated_tokens <= MAX_TOKENS));

  // onProgress: once per item, in order, each with its entry of the report
  assert.deepEqual(got.progress.map((p) => [p.done, p.total]), [[1, 3], [2, 3], [3, 3]]);
  got.progress.forEach((p, i) => assert.deepEqual(p.item, got.report.items[i], `progress ${i + 1}: the item's report entry`));

  // aborts reject with an AbortError; the engine then gives the same report
  assert.match(got.aborted, /^AbortError/);
  assert.equal(got.heardBeforeAbort, 1, 'nothing ran after the abort');
  assert.match(got.abortedMidItem, /^AbortError/);
  assert.match(got.preAborted, /^AbortError/);
  assert.deepEqual(got.again, got.report, 'after the aborts: the same report');

  const bad = got.bad;
  assert.match(bad.noReference, /item 2: has no "reference"/);
  assert.match(bad.emptyReference, /item 3: "reference" is empty/);
  assert.match(bad.both, /item 1: has both "prompt" and "messages"/);
  assert.match(bad.notObject, /item 2: expected a JSON object .* got a string/);
  assert.match(bad.badMessage, /item 2: message 1 needs a string "content"/);
  assert.match(bad.tooLong, /item 2: the prompt \(\d+ tokens\) and the reference \(\d+ tokens\) need \d+ positions, but the context holds \d+/);
  assert.match(bad.empty, /^TypeError: .*non-empty array/);
  assert.match(bad.notList, /^TypeError: .*non-empty array/);
  assert.match(bad.maxTokens, /^RangeError: .*maxTokens/);
  assert.deepEqual(got.afterBad, got.report.items[0], 'after refused sets: the same first item');
  assert.ok(got.complete.length > 0);

  // the worker engine: the same report, progress and aborts across postMessage
  sameReport(got.worker, want.json, 'worker');
  assert.deepEqual(got.worker, got.report, 'the worker computes what the page does');
  assert.deepEqual(got.workerProgress.map((p) => p.done), [1, 2, 3]);
  got.workerProgress.forEach((p, i) => assert.deepEqual(p.item, got.report.items[i]));
  assert.match(got.workerAborted, /^AbortError/);
  assert.deepEqual(got.workerAgain, got.report, 'worker: after the abort, the same report');
  assert.match(got.workerBad, /item 2: has no "reference"/);
});

test('engine.evaluate on a base model (no chat template): a plain prompt continued as written, as `wisp eval` does; `messages` refused naming the item', async () => {
  const items = [{ id: 7, prompt: 'The capital of France is', reference: 'Paris, a city on the Seine.' }];
  const want = nativeEval(gemma, items, 6);
  assert.equal(want.json.chat_template, false);
  const got = await inPageOf(browser.context, server.url, async ({ items }) => {
    const e = await wisp.Engine.load('/gemma.gguf', { backend: 'cpu', cache: false });
    const report = await e.evaluate(items, { maxTokens: 6 });
    let refused = null;
    try {
      await e.evaluate([...items, { messages: [{ role: 'user', content: 'Hi' }], reference: 'Hello' }], { maxTokens: 6 });
    } catch (err) { refused = err.message; }
    await e.dispose();
    return { report, refused };
  }, { items });
  sameReport(got.report, want.json, 'gemma');
  assert.equal(got.report.items[0].id, 7);
  assert.match(got.refused, /item 2: .*this item has "messages", which need one \(a plain "prompt" is continued as written\)/);
});
