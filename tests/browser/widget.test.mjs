// <wisp-tutor> embedded in a plain page with one script tag and one element, the script being the
// package's own `wisp-llm/tutor` as installed from the npm tarball: it loads the model in a
// worker, answers a question typed into it, and renders model text as text, never HTML. Without
// `show-alternatives` it asks the engine for no log-probabilities and shows no alternatives; with
// it, a word of a greedy reply opens the alternatives `chat.completions` reports for the same
// conversation, by mouse and by keyboard.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { serve, launch, open, defaultModel, installPacked, root, here } from './harness.mjs';
import { siteRoots } from '../../scripts/serve.mjs';

let pack, server, browser;
before(async () => {
  pack = installPacked();
  const site = siteRoots(root, defaultModel());
  site.roots['/pkg/'] = pack.installed; // /pkg/ is node_modules/wisp-llm: the files the tarball ships
  site.files['/embed.html'] = path.join(here, 'embed.html');
  const alternatives = path.join(pack.project, 'alternatives.html');
  fs.writeFileSync(alternatives, `<!doctype html>
<meta charset="utf-8">
<title>the tutor with show-alternatives</title>
<script type="module" src="/pkg/tutor.js"></script>
<wisp-tutor model="/models/default.gguf" backend="cpu" temperature="0" show-alternatives="4"
  system-prompt="You are a concise geography tutor."></wisp-tutor>`);
  site.files['/alternatives.html'] = alternatives;
  server = await serve(site);
  browser = await launch({ webgpu: false });
  // every request a page posts to its engine's worker, as { type, logprobs, top_logprobs }
  await browser.context.addInitScript(() => {
    window.posted = [];
    const post = Worker.prototype.postMessage;
    Worker.prototype.postMessage = function (msg, ...rest) {
      if (msg?.type === 'stream' || msg?.type === 'call') window.posted.push({ type: msg.type, logprobs: msg.req?.logprobs ?? null, top_logprobs: msg.req?.top_logprobs ?? null });
      return post.call(this, msg, ...rest);
    };
  });
});
after(async () => {
  await browser?.close();
  await server?.close();
  pack?.cleanup();
  assert.deepEqual(browser?.offsite ?? [], [], 'requests left 127.0.0.1');
});

/** Asks the page's <wisp-tutor> `question` as a reader would; resolves to the reply. */
async function ask(page, question) {
  await page.locator('wisp-tutor .status').filter({ hasText: 'Ready' }).waitFor({ timeout: 120_000 });
  const reply = page.evaluate(() => new Promise((r) => document.querySelector('wisp-tutor').addEventListener('reply', (e) => r(e.detail.text), { once: true })));
  await page.locator('wisp-tutor input').fill(question);
  await page.locator('wisp-tutor input').press('Enter');
  return reply;
}

test('the tutor widget from the installed package answers a question, and HTML in its text shows as text; without show-alternatives it asks for no log-probabilities', async () => {
  const { page, logs } = await open(browser.context, server.url + '/embed.html');
  try {
    const text = await ask(page, 'What is the capital of France?');
    assert.match(text, /Paris/, `reply: ${text}\n${logs.join('\n')}`);
    const dom = await page.evaluate(async (text) => {
      const root = document.querySelector('wisp-tutor').shadowRoot;
      // the reply's bubble holds exactly what the package's renderer makes of the reply
      const { renderMarkdown } = await import('/pkg/render.js');
      const bubbles = root.querySelectorAll('.msg');
      return {
        imgs: root.querySelectorAll('img').length,
        greeting: root.querySelector('.msg.assistant').textContent,
        strong: root.querySelector('.msg.assistant strong')?.textContent,
        bubbles: [...bubbles].map((m) => m.className),
        last: bubbles[bubbles.length - 1].innerHTML,
        rendered: renderMarkdown(document.createElement('div'), text).innerHTML,
        defined: customElements.get('wisp-tutor')?.name,
        pwned: window.pwned ?? null,
        alternatives: root.querySelectorAll('.wisp-token, .wisp-alternatives, [role="button"]').length,
        posted: window.posted,
      };
    }, text);
    assert.equal(dom.imgs, 0, 'no <img> element');
    assert.equal(dom.pwned, null, 'no handler ran');
    assert.match(dom.greeting, /<img src=x onerror="window.pwned=1"> Hello!/);
    assert.equal(dom.strong, 'Ask', 'markdown bold');
    assert.deepEqual(dom.bubbles, ['msg assistant', 'msg user', 'msg assistant']);
    assert.equal(dom.last, dom.rendered, 'the streamed reply is rendered by the package renderer');
    assert.equal(dom.defined, 'WispTutor');
    // off by default: no token buttons, no list, and the engine was asked for no log-probabilities
    assert.equal(dom.alternatives, 0, 'no alternatives UI without show-alternatives');
    assert.deepEqual(dom.posted.filter((m) => m.type === 'stream'), [{ type: 'stream', logprobs: null, top_logprobs: null }]);
    await page.locator('wisp-tutor .msg.assistant >> nth=-1').click();
    assert.equal(await page.evaluate(() => document.querySelector('wisp-tutor').shadowRoot.querySelectorAll('.wisp-alternatives').length), 0, 'a click opens nothing');
    // the widget, its renderer and its engine came from the installed package
    for (const f of ['/pkg/tutor.js', '/pkg/render.js', '/pkg/index.js', '/pkg/worker.js']) {
      assert.ok(server.state.requests.includes(f), `${f} requested (got ${server.state.requests.join(', ')})`);
    }
    assert.ok(!server.state.requests.includes('/tutor.js'), 'nothing from www/');
  } finally {
    await page.close();
  }
});

test('the tutor widget with show-alternatives: a word of a greedy reply opens the alternatives chat.completions reports for the same conversation, by mouse and by keyboard', async () => {
  const { page, logs } = await open(browser.context, server.url + '/alternatives.html');
  try {
    const question = 'What is the capital of France?';
    const text = await ask(page, question);
    assert.match(await page.locator('wisp-tutor .status').textContent(), /Click a word/);
    const ref = await page.evaluate(async (question) => {
      const { Engine } = await import('/pkg/index.js');
      const e = await Engine.load('/models/default.gguf', { backend: 'cpu' });
      const r = await e.chat.completions.create({
        messages: [{ role: 'system', content: 'You are a concise geography tutor.' }, { role: 'user', content: question }],
        temperature: 0, max_tokens: 384, logprobs: true, top_logprobs: 4,
      });
      await e.dispose();
      return { content: r.choices[0].message.content, logprobs: r.choices[0].logprobs.content };
    }, question);
    assert.equal(text, ref.content, 'the greedy reply');
    const n = ref.logprobs.length;
    const state = () => page.evaluate(() => {
      const root = document.querySelector('wisp-tutor').shadowRoot;
      const pop = root.querySelector('.wisp-alternatives');
      const active = root.activeElement;
      return {
        open: Boolean(pop && !pop.hidden),
        rows: pop && !pop.hidden ? [...pop.querySelectorAll('.wisp-alt')].map((li) => ({
          token: li.querySelector('.wisp-alt-token').textContent, p: li.querySelector('.wisp-alt-p').textContent, logprob: li.dataset.logprob, chosen: li.classList.contains('chosen'),
        })) : [],
        focused: active?.dataset?.token ?? null,
        expanded: active?.getAttribute('aria-expanded') ?? null,
        tokens: new Set([...[...root.querySelectorAll('.msg.assistant')].at(-1).querySelectorAll('.wisp-token')].map((s) => s.dataset.token)).size,
        stops: [...root.querySelectorAll('.msg.assistant')].at(-1).querySelectorAll('[tabindex="0"]').length,
      };
    });
    const expected = (entry) => page.evaluate(async (entry) => {
      const { visibleToken, formatProbability } = await import('/pkg/render.js');
      return entry.top_logprobs.map((a, j) => ({ token: visibleToken(a.token, a.bytes), p: formatProbability(a.logprob), logprob: String(a.logprob), chosen: j === 0 }));
    }, entry);

    let got = await state();
    assert.equal(got.tokens, n, 'every token of the reply is inspectable');
    assert.equal(got.stops, 1, 'one tab stop');
    // the engine was asked for 4 alternatives per token
    assert.deepEqual((await page.evaluate(() => window.posted)).filter((m) => m.type === 'stream'), [{ type: 'stream', logprobs: true, top_logprobs: 4 }]);

    const k = ref.logprobs.findIndex((e) => e.token === ' Paris');
    assert.ok(k >= 0, `" Paris" in ${JSON.stringify(ref.logprobs.map((e) => e.token))}`);
    const word = page.locator(`wisp-tutor .msg.assistant .wisp-token[data-token="${k}"]`).first();
    await word.click();
    got = await state();
    assert.ok(got.open, 'a click opens the list');
    assert.deepEqual(got.rows, await expected(ref.logprobs[k]));
    assert.equal(got.rows.length, 4);
    assert.equal(got.focused, String(k));
    assert.equal(got.expanded, 'true');
    await page.keyboard.press('Escape');
    got = await state();
    assert.equal(got.open, false, 'Escape closes');
    assert.equal(got.focused, String(k), 'the focus stays on the word');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('Enter');
    got = await state();
    assert.equal(got.focused, String(k - 1));
    assert.deepEqual(got.rows, await expected(ref.logprobs[k - 1]), '← then Enter: the token before');
    await page.keyboard.press('ArrowRight');
    assert.deepEqual((await state()).rows, await expected(ref.logprobs[k]), 'the list follows →');
    // Tab leaves the reply (closing the list) for the question box
    await page.keyboard.press('Tab');
    got = await state();
    assert.equal(got.open, false, 'leaving the log closes the list');
    assert.equal(await page.evaluate(() => document.querySelector('wisp-tutor').shadowRoot.activeElement?.name), 'q');

    // the attribute removed: the replies render as plain markdown again
    await page.evaluate(() => document.querySelector('wisp-tutor').removeAttribute('show-alternatives'));
    const plain = await page.evaluate(async (text) => {
      const { renderMarkdown } = await import('/pkg/render.js');
      const root = document.querySelector('wisp-tutor').shadowRoot;
      return { html: [...root.querySelectorAll('.msg')].at(-1).innerHTML, want: renderMarkdown(document.createElement('div'), text).innerHTML };
    }, text);
    assert.equal(plain.html, plain.want);
  } catch (e) {
    throw new Error(`${e.message}\npage log:\n${logs.join('\n')}`);
  } finally {
    await page.close();
  }
});
