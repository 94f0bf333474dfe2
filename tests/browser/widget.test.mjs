// <wisp-tutor> embedded in a plain page with one script tag and one element, the script being the
// package's own `wisp-llm/tutor` as installed from the npm tarball: it loads the model in a
// worker, answers a question typed into it, and renders model text as text, never HTML.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { serve, launch, open, defaultModel, installPacked, root, here } from './harness.mjs';
import { siteRoots } from '../../scripts/serve.mjs';

test('the tutor widget from the installed package answers a question, and HTML in its text shows as text', async () => {
  const pack = installPacked();
  const site = siteRoots(root, defaultModel());
  site.roots['/pkg/'] = pack.installed; // /pkg/ is node_modules/wisp-llm: the files the tarball ships
  site.files['/embed.html'] = path.join(here, 'embed.html');
  let server, browser;
  try {
    server = await serve(site);
    browser = await launch();
    const { page, logs } = await open(browser.context, server.url + '/embed.html');
    const status = page.locator('wisp-tutor .status');
    await status.filter({ hasText: 'Ready' }).waitFor({ timeout: 120_000 });
    const reply = page.evaluate(() => new Promise((r) => document.querySelector('wisp-tutor').addEventListener('reply', (e) => r(e.detail.text), { once: true })));
    await page.locator('wisp-tutor input').fill('What is the capital of France?');
    await page.locator('wisp-tutor input').press('Enter');
    const text = await reply;
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
      };
    }, text);
    assert.equal(dom.imgs, 0, 'no <img> element');
    assert.equal(dom.pwned, null, 'no handler ran');
    assert.match(dom.greeting, /<img src=x onerror="window.pwned=1"> Hello!/);
    assert.equal(dom.strong, 'Ask', 'markdown bold');
    assert.deepEqual(dom.bubbles, ['msg assistant', 'msg user', 'msg assistant']);
    assert.equal(dom.last, dom.rendered, 'the streamed reply is rendered by the package renderer');
    assert.equal(dom.defined, 'WispTutor');
    // the widget, its renderer and its engine came from the installed package
    for (const f of ['/pkg/tutor.js', '/pkg/render.js', '/pkg/index.js', '/pkg/worker.js']) {
      assert.ok(server.state.requests.includes(f), `${f} requested (got ${server.state.requests.join(', ')})`);
    }
    assert.ok(!server.state.requests.includes('/tutor.js'), 'nothing from www/');
    assert.deepEqual(browser.offsite, []);
  } finally {
    await browser?.close();
    await server?.close();
    pack.cleanup();
  }
});
