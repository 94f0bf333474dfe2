// <wisp-tutor> embedded in a plain page with one script tag and one element: it loads the model
// in a worker, answers a question typed into it, and renders model text as text, never HTML.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { serve, launch, open, defaultModel, root, here } from './harness.mjs';
import { siteRoots } from '../../scripts/serve.mjs';

test('the tutor widget answers a question, and HTML in its text shows as text', async () => {
  const site = siteRoots(root, defaultModel());
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
    const dom = await page.evaluate(() => {
      const root = document.querySelector('wisp-tutor').shadowRoot;
      return {
        imgs: root.querySelectorAll('img').length,
        greeting: root.querySelector('.msg.assistant').textContent,
        strong: root.querySelector('.msg.assistant strong')?.textContent,
        bubbles: [...root.querySelectorAll('.msg')].map((m) => m.className),
        pwned: window.pwned ?? null,
      };
    });
    assert.equal(dom.imgs, 0, 'no <img> element');
    assert.equal(dom.pwned, null, 'no handler ran');
    assert.match(dom.greeting, /<img src=x onerror="window.pwned=1"> Hello!/);
    assert.equal(dom.strong, 'Ask', 'markdown bold');
    assert.deepEqual(dom.bubbles, ['msg assistant', 'msg user', 'msg assistant']);
    assert.deepEqual(browser.offsite, []);
  } finally {
    await browser?.close();
    await server?.close();
  }
});
