// "Show alternatives" in the demo page (the widget's is in widget.test.mjs): a greedy reply's
// words open the alternatives the model weighed, and they are exactly what
// `chat.completions.create({ logprobs: true, top_logprobs: 5, temperature: 0 })` reports for the
// same conversation; by mouse and by keyboard (one tab stop, arrows, Enter, Escape), under a
// strict CSP; model text in the tokens and the alternatives stays text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serve, launch, defaultModel, root } from './harness.mjs';
import { siteRoots } from '../../scripts/serve.mjs';

const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'";

let model, server, browser;
before(async () => {
  model = defaultModel();
  server = await serve({ ...siteRoots(root, model), csp: CSP });
  browser = await launch({ webgpu: false });
});
after(async () => {
  await browser?.close();
  await server?.close();
  assert.deepEqual(browser?.offsite ?? [], [], 'requests left 127.0.0.1');
});

/** A page of the site whose CSP violations and log are collected. */
async function page(path) {
  const p = await browser.context.newPage();
  const logs = [];
  p.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  p.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await p.addInitScript(() => {
    window.violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await p.goto(server.url + path);
  return { p, logs };
}

/** What the open list of alternatives shows, and where the focus is. */
const popoverState = (sel) => {
  const host = sel.host ? document.querySelector(sel.host).shadowRoot : document;
  const pop = host.querySelector('.wisp-alternatives');
  const active = host.activeElement;
  return {
    open: Boolean(pop && !pop.hidden),
    role: pop?.getAttribute('role') ?? null,
    rows: pop && !pop.hidden ? [...pop.querySelectorAll('.wisp-alt')].map((li) => ({
      token: li.querySelector('.wisp-alt-token').textContent,
      p: li.querySelector('.wisp-alt-p').textContent,
      logprob: li.dataset.logprob,
      chosen: li.classList.contains('chosen'),
    })) : [],
    elements: pop ? pop.querySelectorAll('*').length : 0,
    focused: active?.dataset?.token ?? null,
    expanded: active?.getAttribute('aria-expanded') ?? null,
    controls: active?.getAttribute('aria-controls') === pop?.id,
    role2: active?.getAttribute('role') ?? null,
  };
};

/** The rows the list must show for a chat.completions logprobs entry. */
async function expectedRows(p, entry) {
  return p.evaluate(async (entry) => {
    const { visibleToken, formatProbability } = await import('/pkg/render.js');
    return entry.top_logprobs.map((a, j) => ({
      token: visibleToken(a.token, a.bytes), p: formatProbability(a.logprob), logprob: String(a.logprob), chosen: j === 0,
    }));
  }, entry);
}

test('the demo page: with "Show alternatives", any word of a greedy reply opens the alternatives chat.completions reports for it, by mouse and by keyboard', async () => {
  const question = 'What is the capital of France?';
  const { p, logs } = await page('/');
  try {
    await p.selectOption('#backend', 'cpu');
    await p.fill('#temperature', '0');
    await p.check('#alternatives');
    await p.click('#loadBtn');
    await p.locator('#input:not([disabled])').waitFor({ timeout: 120_000 });
    await p.fill('#input', question);
    await p.click('#send');
    await p.locator('#send:not([disabled])').waitFor({ timeout: 120_000 });

    // the reference: the same conversation through the API, in this page (the model from the package's cache)
    const ref = await p.evaluate(async (question) => {
      const { Engine } = await import('/pkg/index.js');
      const e = await Engine.load('/models/default.gguf', { backend: 'cpu' });
      const r = await e.chat.completions.create({ messages: [{ role: 'user', content: question }], temperature: 0, max_tokens: 512, logprobs: true, top_logprobs: 5 });
      await e.dispose();
      return { content: r.choices[0].message.content, logprobs: r.choices[0].logprobs.content };
    }, question);
    const view = await p.evaluate(async (ref) => {
      const { renderMarkdown } = await import('/pkg/render.js');
      const bubble = [...document.querySelectorAll('#log .msg')].at(-1);
      const pieces = {};
      for (const s of bubble.querySelectorAll('.wisp-token')) (pieces[s.dataset.token] ??= []).push(s.textContent);
      return {
        text: bubble.textContent,
        plainText: renderMarkdown(document.createElement('div'), ref.content).textContent,
        pieces,
        stops: bubble.querySelectorAll('[tabindex="0"]').length,
        buttons: bubble.querySelectorAll('[role="button"]').length,
      };
    }, ref);
    const n = ref.logprobs.length;
    assert.ok(n > 3, `a reply: ${ref.content}`);
    // the page's reply is the API's, word for word, with every token of it a button
    assert.equal(view.text, view.plainText, 'the token view shows the same text as the plain reply');
    assert.deepEqual(Object.keys(view.pieces).map(Number).sort((a, b) => a - b), [...Array(n).keys()], 'every token is inspectable');
    assert.equal(view.buttons, n, 'one button per token');
    for (const [i, texts] of Object.entries(view.pieces)) {
      if (ref.logprobs[i].token.includes('\uFFFD')) continue; // part of a character
      assert.ok(ref.logprobs[i].token.includes(texts.join('')), `token ${i}: ${JSON.stringify(texts)} in ${JSON.stringify(ref.logprobs[i].token)}`);
    }
    assert.equal(view.stops, 1, 'one tab stop in the reply');

    // a word, by mouse: " Paris"
    const k = ref.logprobs.findIndex((e) => e.token === ' Paris');
    assert.ok(k >= 0, `" Paris" in ${JSON.stringify(ref.logprobs.map((e) => e.token))}`);
    const word = p.locator(`#log .assistant .wisp-token[data-token="${k}"]`).first();
    await word.click();
    let got = await p.evaluate(popoverState, {});
    assert.ok(got.open, 'the list opened');
    assert.equal(got.role, 'status');
    assert.deepEqual(got.rows, await expectedRows(p, ref.logprobs[k]), 'the alternatives chat.completions reports');
    assert.equal(got.rows.length, 5);
    assert.equal(got.focused, String(k));
    assert.equal(got.expanded, 'true');
    assert.ok(got.controls, 'aria-controls names the list');
    assert.equal(got.role2, 'button');
    // clicking the word again closes it; clicking elsewhere closes it too
    await word.click();
    assert.equal((await p.evaluate(popoverState, {})).open, false, 'a second click closes');
    await word.click();
    await p.click('header h1');
    assert.equal((await p.evaluate(popoverState, {})).open, false, 'a click elsewhere closes');

    // by keyboard: Tab reaches the reply's one tab stop (the word last opened), Enter opens, →
    // moves (the list follows), Escape closes and the focus stays on the word
    await p.focus('#loadBtn');
    await p.keyboard.press('Tab');
    assert.equal((await p.evaluate(popoverState, {})).focused, String(k), 'Tab reaches the word last opened');
    await p.keyboard.press('Enter');
    got = await p.evaluate(popoverState, {});
    assert.ok(got.open && got.focused === String(k), 'Enter opens');
    await p.keyboard.press('Escape');
    got = await p.evaluate(popoverState, {});
    assert.equal(got.open, false, 'Escape closes');
    assert.equal(got.focused, String(k), 'the focus stays on the word');
    assert.equal(got.expanded, 'false');
    await p.keyboard.press('ArrowRight');
    got = await p.evaluate(popoverState, {});
    assert.equal(got.focused, String(k + 1), '→ moves to the next token');
    assert.equal(got.open, false, 'and opens nothing while closed');
    await p.keyboard.press(' ');
    got = await p.evaluate(popoverState, {});
    assert.deepEqual(got.rows, await expectedRows(p, ref.logprobs[k + 1]), 'Space opens the next token\'s alternatives');
    await p.keyboard.press('Home');
    got = await p.evaluate(popoverState, {});
    assert.equal(got.focused, '0');
    assert.deepEqual(got.rows, await expectedRows(p, ref.logprobs[0]), 'the list follows the focus');
    await p.keyboard.press('End');
    got = await p.evaluate(popoverState, {});
    assert.deepEqual(got.rows, await expectedRows(p, ref.logprobs[n - 1]), 'the last token');
    await p.keyboard.press('Escape');
    assert.equal((await p.evaluate(popoverState, {})).open, false);
    // Tab leaves the reply: one tab stop, not one per word
    await p.keyboard.press('Tab');
    assert.equal(await p.evaluate(() => document.activeElement.id), 'input');

    // "Show alternatives" off: the reply is the renderer's plain markdown again; on: the words again
    await p.uncheck('#alternatives');
    const off = await p.evaluate(async (text) => {
      const { renderMarkdown } = await import('/pkg/render.js');
      return { html: [...document.querySelectorAll('#log .msg')].at(-1).innerHTML, want: renderMarkdown(document.createElement('div'), text).innerHTML };
    }, ref.content);
    assert.equal(off.html, off.want);
    await p.check('#alternatives');
    await word.click();
    assert.deepEqual((await p.evaluate(popoverState, {})).rows, await expectedRows(p, ref.logprobs[k]));

    // a second turn: a word opened while the reply streams stays open and focused as the rest
    // arrives, and shows what the API reports for the whole conversation
    const question2 = 'Explain photosynthesis in two short paragraphs.';
    await p.fill('#input', question2);
    await p.click('#send');
    const early = p.locator('#log .msg.assistant').nth(1).locator('.wisp-token[data-token="2"]');
    await early.click({ timeout: 60_000 });
    assert.ok(await p.isEnabled('#stop'), 'clicked while the reply streams');
    await p.locator('#send:not([disabled])').waitFor({ timeout: 120_000 });
    got = await p.evaluate(popoverState, {});
    const ref2 = await p.evaluate(async (messages) => {
      const { Engine } = await import('/pkg/index.js');
      const e = await Engine.load('/models/default.gguf', { backend: 'cpu' });
      const r = await e.chat.completions.create({ messages, temperature: 0, max_tokens: 512, logprobs: true, top_logprobs: 5 });
      await e.dispose();
      return { content: r.choices[0].message.content, logprobs: r.choices[0].logprobs.content };
    }, [{ role: 'user', content: question }, { role: 'assistant', content: ref.content }, { role: 'user', content: question2 }]);
    assert.ok(ref2.logprobs.length > 20, `a longer reply: ${ref2.content}`);
    assert.equal(await p.locator('#log .msg.assistant').nth(1).textContent(), await p.evaluate(async (t) => {
      const { renderMarkdown } = await import('/pkg/render.js');
      return renderMarkdown(document.createElement('div'), t).textContent;
    }, ref2.content));
    assert.ok(got.open, 'still open after the stream');
    assert.equal(got.focused, '2', 'still focused');
    assert.deepEqual(got.rows, await expectedRows(p, ref2.logprobs[2]));
    assert.deepEqual(await p.evaluate(() => window.violations), [], 'CSP violations');
  } catch (e) {
    throw new Error(`${e.message}\npage log:\n${logs.join('\n')}`);
  } finally {
    await p.close();
  }
});

test('tokens and alternatives that look like HTML stay text; split characters, markup-only tokens and a token sampled outside the top few', async () => {
  const { p, logs } = await page('/');
  try {
    const got = await p.evaluate(async () => {
      const { TokenInspector } = await import('/pkg/render.js');
      const enc = (t) => [...new TextEncoder().encode(t)];
      const alt = (token, logprob, bytes = enc(token)) => ({ token, logprob, bytes });
      const entry = (token, logprob, top, bytes = enc(token)) => ({ token, logprob, bytes, top_logprobs: top });
      const img = '<img src=x onerror="window.pwned=1">';
      // "Say <b>hi</b>\n\n**it’s**": ’ (e2 80 99) split over two tokens, "**" and "\n\n" tokens that are only markup
      const text = 'Say <b>hi</b>\n\n**it’s**';
      const logprobs = [
        entry('Say', -0.1, [alt('Say', -0.1), alt(img, -2.5)]),
        entry(' <b>', -0.7, [alt(' <b>', -0.7), alt('<script>window.pwned=2</script>', -1.2)]),
        entry('hi', -0.05, [alt('hi', -0.05)]),
        entry('</b>', -3, [alt('<style>*{display:none}</style>', -0.2), alt('</i>', -1)]), // sampled from outside the top 2
        entry('\n\n', -0.3, [alt('\n\n', -0.3), alt(' ', -1.5)]),
        entry('**', -0.2, [alt('**', -0.2)]),
        entry('it\uFFFD', -0.4, [alt('it\uFFFD', -0.4, [0x69, 0x74, 0xe2, 0x80])], [0x69, 0x74, 0xe2, 0x80]),
        entry('\uFFFDs', -0.4, [alt('\uFFFDs', -0.4, [0x99, 0x73])], [0x99, 0x73]),
        entry('**', -0.1, [alt('**', -0.1)]),
      ];
      const log = document.getElementById('log');
      const bubble = document.createElement('div');
      bubble.className = 'msg assistant';
      log.append(bubble);
      const inspector = new TokenInspector(log);
      inspector.render(bubble, text, logprobs);
      const rows = () => [...log.querySelectorAll('.wisp-alternatives .wisp-alt')].map((li) => [li.querySelector('.wisp-alt-token').textContent, li.querySelector('.wisp-alt-p').textContent, li.classList.contains('chosen')]);
      const open = (i) => { bubble.querySelector(`.wisp-token[data-token="${i}"]`).click(); return rows(); };
      const out = {
        html: bubble.innerHTML,
        text: bubble.textContent,
        strong: bubble.querySelector('strong')?.textContent,
        marks: [...bubble.querySelectorAll('.wisp-mark')].map((m) => [m.dataset.token, m.dataset.glyph, m.getAttribute('aria-label'), m.parentElement.tagName]),
        pieces: [...bubble.querySelectorAll('.wisp-token:not(.wisp-mark)')].map((s) => [s.dataset.token, s.textContent, s.dataset.confidence]),
        first: open(0), second: open(1), fourth: open(3), split: open(6), para: open(4),
      };
      // streamed: rendered after each token (the text so far, a split character held back) into
      // another reply, the words shown first stay the same nodes and the end equals one render
      const streamed = document.createElement('div');
      log.append(streamed);
      const cuts = ['Say', 'Say <b>', 'Say <b>hi', 'Say <b>hi</b>', 'Say <b>hi</b>\n\n', 'Say <b>hi</b>\n\n**', 'Say <b>hi</b>\n\n**it', 'Say <b>hi</b>\n\n**it’s', text];
      let first = null;
      cuts.forEach((t, k) => {
        inspector.render(streamed, t, logprobs.slice(0, k + 1));
        first ??= streamed.querySelector('.wisp-token');
      });
      const whole = document.createElement('div');
      log.append(whole);
      inspector.render(whole, text, logprobs);
      out.kept = first === streamed.querySelector('.wisp-token') && first.isConnected;
      out.same = streamed.innerHTML === whole.innerHTML || [streamed.innerHTML, whole.innerHTML];
      out.elements = [...log.querySelectorAll('img, script, style, b, i')].map((e) => e.tagName);
      out.pwned = window.pwned ?? null;
      inspector.dispose();
      bubble.remove();
      return out;
    });
    assert.deepEqual(got.elements, [], `no element from model text: ${got.html}`);
    assert.ok(got.kept, 'a streamed reply keeps the words already shown');
    assert.equal(got.same, true, 'and ends as one render of the whole reply');
    assert.equal(got.pwned, null);
    assert.equal(got.text, 'Say <b>hi</b>it’s', 'the reply as text (markers add no text)');
    assert.equal(got.strong, 'it’s');
    assert.deepEqual(got.pieces, [['0', 'Say', 'high'], ['1', ' <b>', 'medium'], ['2', 'hi', 'high'], ['3', '</b>', 'low'], ['6', 'it’', 'medium'], ['7', 's', 'medium']]);
    // markup-only tokens: a marker after the token before them, a glyph from CSS, a name for screen readers
    assert.deepEqual(got.marks, [['4', '↵↵', 'paragraph break', 'P'], ['5', '**', '**', 'STRONG'], ['8', '**', '**', 'STRONG']]);
    assert.deepEqual(got.first, [['Say', '90.5%', true], ['<img␣src=x␣onerror="window.pwned=1">', '8.2%', false]]);
    assert.deepEqual(got.second, [['␣<b>', '49.7%', true], ['<script>window.pwned=2</script>', '30.1%', false]]);
    assert.deepEqual(got.fourth, [['<style>*{display:none}</style>', '81.9%', false], ['</i>', '36.8%', false], ['</b>', '5.0%', true]]);
    assert.deepEqual(got.split, [['‹69 74 e2 80›', '67.0%', true]]);
    assert.deepEqual(got.para, [['↵↵', '74.1%', true], ['␣', '22.3%', false]]);
    assert.deepEqual(await p.evaluate(() => window.violations), [], 'CSP violations');
  } catch (e) {
    throw new Error(`${e.message}\npage log:\n${logs.join('\n')}`);
  } finally {
    await p.close();
  }
});
