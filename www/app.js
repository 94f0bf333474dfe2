// The demo chat page: load a model (URL, cached after the first visit, or a local file) with
// progress and cancel, then chat with streaming output (pkg/render.js's streamChat, the loop the
// tutor widget uses too), a temperature (0 = greedy), a stop button and tokens/s. The engine runs
// in a Web Worker; the service worker keeps this page available offline. Every reply is asked for
// its tokens' log-probabilities (5 alternatives each: a cheap by-product of the step); "Show
// alternatives" turns the replies' words into buttons that open the alternatives the model
// weighed (render.js's TokenInspector), and off again. It starts off, so a reply reads as plain
// prose (for screen readers too) until the reader asks.
import { createWorkerEngine } from './pkg/index.js';
import { TokenInspector, renderMarkdown, streamChat } from './pkg/render.js';

const $ = (id) => document.getElementById(id);
let engine = null;
let messages = [];
let generating = null;
let loading = null;
const inspector = new TokenInspector($('log'), { enabled: $('alternatives').checked, topLogprobs: 5 });
$('alternatives').addEventListener('change', () => { inspector.enabled = $('alternatives').checked; });

if ('serviceWorker' in navigator) navigator.serviceWorker.register('./sw.js').catch(() => {});

function append(role, text) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  renderMarkdown(div, text);
  $('log').append(div);
  div.scrollIntoView({ block: 'end' });
  return div;
}

function setChatEnabled(on) {
  for (const id of ['input', 'send', 'newChat']) $(id).disabled = !on;
}

$('loadBtn').addEventListener('click', async () => {
  const file = $('file').files[0];
  const source = file ?? $('url').value.trim();
  if (!source) return;
  loading?.abort();
  loading = new AbortController();
  $('cancelLoad').disabled = false;
  $('progress').hidden = false;
  setChatEnabled(false);
  await engine?.dispose();
  engine = null;
  const t0 = performance.now();
  try {
    engine = await createWorkerEngine(source, {
      backend: $('backend').value, signal: loading.signal,
      onProgress: (p) => {
        if (p.total) $('progress').value = p.loaded / p.total;
        $('loadStatus').textContent = `${p.phase} ${(p.loaded / 1e6).toFixed(1)} MB${p.cached ? ' (cached)' : ''}`;
      },
    });
    const i = engine.info;
    $('loadStatus').textContent = `${i.architecture}, ${(i.parameters / 1e6).toFixed(0)}M parameters, ${i.quantization}, ` +
      `${i.backend}${i.adapter ? ` (${i.adapter})` : ''}${i.backend === 'cpu' ? `, ${i.threads} thread${i.threads === 1 ? '' : 's'}` : ''}${i.fallback ? ` — ${i.fallback}` : ''}; loaded${i.cached ? ' from the cache' : ''} in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
    messages = [];
    setChatEnabled(true);
  } catch (e) {
    $('loadStatus').textContent = e.name === 'AbortError' ? 'Load cancelled.' : `Could not load: ${e.message}`;
  } finally {
    $('cancelLoad').disabled = true;
    $('progress').hidden = true;
  }
});

$('cancelLoad').addEventListener('click', () => loading?.abort());

$('input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('chat').requestSubmit(); }
});

$('chat').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('input').value.trim();
  if (!text || !engine || generating) return;
  $('input').value = '';
  append('user', text);
  const conversation = messages; // "New chat" while this reply streams starts another array
  conversation.push({ role: 'user', content: text });
  const bubble = append('assistant', '…');
  generating = new AbortController();
  $('stop').disabled = false;
  $('send').disabled = true;
  const temperature = Number($('temperature').value);
  const { text: reply } = await streamChat(engine, {
    messages: conversation, temperature: Number.isFinite(temperature) && temperature >= 0 ? temperature : 0.7, max_tokens: 512,
    signal: generating.signal, context_overflow: 'drop-oldest',
  }, bubble, {
    inspector,
    onChunk: (chunk) => {
      if (!chunk.usage) return;
      const t = chunk.usage.timings;
      $('stats').textContent = `prefill ${t.prefillTokensPerSecond.toFixed(1)} tok/s · decode ${t.decodeTokensPerSecond.toFixed(1)} tok/s · ` +
        `${chunk.usage.completion_tokens} tokens (${chunk.usage.prompt_tokens_details.cached_tokens} prompt tokens reused)`;
    },
  });
  conversation.push({ role: 'assistant', content: reply });
  generating = null;
  $('stop').disabled = true;
  $('send').disabled = false;
});

$('stop').addEventListener('click', () => generating?.abort());
$('newChat').addEventListener('click', async () => {
  generating?.abort();
  messages = [];
  inspector.close();
  $('log').replaceChildren();
  await engine?.reset();
});
