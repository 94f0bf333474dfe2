// <wisp-tutor>: a tutor chat widget a teacher embeds with one script tag and one element:
//   <script type="module" src="https://example.org/wisp/tutor.js"></script>
//   <wisp-tutor model="/models/default.gguf" subject="fractions" greeting="Hi! Ask me anything."></wisp-tutor>
// or, in a page that installed the package, `import 'wisp-llm/tutor';` (importing defines the element).
// Attributes: model (GGUF URL, relative to the page; default ./models/default.gguf), subject,
// system-prompt, greeting, backend (auto|webgpu|cpu), temperature (default 0.3; 0 = greedy),
// show-alternatives (off unless present: each word of a reply opens the alternatives the model
// weighed, with their probabilities; a number from 1 to 20 sets how many, default 5). The model
// runs in a Web Worker on the reader's machine; replies render as text (safe markdown,
// render.js). Without show-alternatives no log-probabilities are asked of the engine.

import { createWorkerEngine } from './index.js';
import { TokenInspector, renderMarkdown, streamChat } from './render.js';

const STYLE = `
:host { display: block; font: 15px/1.45 system-ui, sans-serif; max-width: 42rem; border: 1px solid #ccd; border-radius: 10px; overflow: hidden; }
.log { height: 22rem; overflow-y: auto; padding: .75rem; background: #fafbff; }
.msg { margin: .4rem 0; padding: .5rem .75rem; border-radius: 8px; white-space: normal; }
.msg p { margin: .2rem 0; } .msg pre { background: #eef; padding: .4rem; overflow-x: auto; }
.user { background: #dfe8ff; margin-left: 3rem; } .assistant { background: #fff; border: 1px solid #e4e6f0; margin-right: 3rem; }
.status { font-size: 12px; color: #667; padding: .25rem .75rem; border-top: 1px solid #eee; }
.log { position: relative; }
.wisp-token { cursor: pointer; border-radius: 3px; box-shadow: inset 0 -1px #c9cde0; }
.wisp-token[data-confidence="medium"] { background: #fff7de; } .wisp-token[data-confidence="low"] { background: #ffe4de; }
.wisp-token:hover, .wisp-token.open { background: #dfe8ff; box-shadow: inset 0 -2px #4c6ef5; }
.wisp-token:focus-visible { outline: 2px solid #3b5bdb; outline-offset: 1px; }
.wisp-mark::before { content: attr(data-glyph); color: #8a90a8; font-size: 80%; }
.wisp-alternatives { position: absolute; z-index: 5; min-width: 13rem; max-width: min(22rem, 92%); background: #fff; border: 1px solid #c7cbe0; border-radius: 8px; box-shadow: 0 4px 16px rgba(20, 30, 80, .18); padding: .4rem .5rem; font-size: 13px; }
.wisp-alternatives[hidden] { display: none; }
.wisp-alt-head { font-size: 11px; color: #5a6070; margin-bottom: .25rem; }
.wisp-alt-list { list-style: none; margin: 0; padding: 0; }
.wisp-alt { display: grid; grid-template-columns: minmax(3.5rem, max-content) minmax(3rem, 1fr) 3.6rem; gap: .5rem; align-items: center; padding: .1rem .25rem; border-radius: 4px; }
.wisp-alt.chosen { background: #edf1ff; font-weight: 600; }
.wisp-alt-token { font-family: ui-monospace, monospace; white-space: pre; overflow: hidden; text-overflow: ellipsis; max-width: 11rem; }
.wisp-alt-bar { height: 6px; background: #e9ebf5; border-radius: 3px; overflow: hidden; } .wisp-alt-bar > span { display: block; height: 100%; background: #5c7cfa; }
.wisp-alt-p { text-align: right; font-variant-numeric: tabular-nums; }
.wisp-alt-note { grid-column: 1 / -1; font-size: 10px; font-weight: normal; color: #5a6070; margin-top: -.15rem; }
form { display: flex; gap: .5rem; padding: .5rem; border-top: 1px solid #ddd; }
input { flex: 1; padding: .45rem; font: inherit; } button { font: inherit; padding: .4rem .8rem; }`;

let shared = null;
function sheet() {
  if (!shared) {
    shared = new CSSStyleSheet();
    shared.replaceSync(STYLE);
  }
  return shared;
}

export class WispTutor extends HTMLElement {
  #engine = null;
  #loading = null;
  #messages = [];
  #abort = null;
  #inspector = null;

  static observedAttributes = ['show-alternatives'];

  attributeChangedCallback() {
    if (this.log) this.#alternatives();
  }

  /** The inspector, created, enabled or disabled as the show-alternatives attribute says. */
  #alternatives() {
    const on = this.hasAttribute('show-alternatives');
    if (on && !this.#inspector) this.#inspector = new TokenInspector(this.log, { topLogprobs: 5 });
    if (this.#inspector) {
      this.#inspector.enabled = on;
      const n = Number(this.getAttribute('show-alternatives'));
      this.#inspector.topLogprobs = Number.isInteger(n) && n >= 1 && n <= 20 ? n : 5;
    }
    return on ? this.#inspector : null;
  }

  connectedCallback() {
    if (this.shadowRoot) return;
    const root = this.attachShadow({ mode: 'open' });
    // a constructed stylesheet, not a <style> element: pages with a strict CSP (no
    // 'unsafe-inline' styles) still style the widget
    root.adoptedStyleSheets = [sheet()];
    root.innerHTML = `<div class="log" part="log"></div><div class="status" part="status"></div>
      <form part="form"><input name="q" autocomplete="off" placeholder="Ask a question…" aria-label="Question">
      <button type="submit">Ask</button><button type="button" class="stop" disabled>Stop</button></form>`;
    this.log = root.querySelector('.log');
    this.status = root.querySelector('.status');
    const form = root.querySelector('form');
    this.stopButton = root.querySelector('.stop');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const q = form.q.value.trim();
      if (q) { form.q.value = ''; this.ask(q); }
    });
    this.stopButton.addEventListener('click', () => this.#abort?.abort());
    this.#alternatives();
    const greeting = this.getAttribute('greeting');
    if (greeting) this.#append('assistant', greeting);
    this.#load().catch(() => {});
  }

  disconnectedCallback() {
    this.#abort?.abort();
    this.#inspector?.close();
    this.#engine?.dispose();
    this.#engine = null;
  }

  #systemPrompt() {
    const custom = this.getAttribute('system-prompt');
    if (custom) return custom;
    const subject = this.getAttribute('subject');
    return `You are a patient, encouraging tutor${subject ? ` for ${subject}` : ''}. Explain step by step, briefly, and check understanding.`;
  }

  #load() {
    this.#loading ??= (async () => {
      const model = new URL(this.getAttribute('model') ?? './models/default.gguf', document.baseURI).href;
      this.status.textContent = 'Loading the model…';
      try {
        this.#engine = await createWorkerEngine(model, {
          backend: this.getAttribute('backend') ?? 'auto',
          onProgress: (p) => {
            if (p.total) this.status.textContent = `Loading the model… ${Math.round((100 * p.loaded) / p.total)}%`;
          },
        });
        this.status.textContent = `Ready (${this.#engine.info.backend}). Everything runs on this device.` +
          (this.#inspector?.enabled ? ' Click a word of a reply to see the alternatives the model weighed.' : '');
      } catch (e) {
        this.status.textContent = `Could not load the model: ${e.message}`;
        this.#loading = null;
        throw e;
      }
    })();
    return this.#loading;
  }

  #append(role, text) {
    const div = document.createElement('div');
    div.className = `msg ${role}`;
    div.setAttribute('part', `message ${role}`);
    renderMarkdown(div, text);
    this.log.append(div);
    this.log.scrollTop = this.log.scrollHeight;
    return div;
  }

  /** Asks `question`; resolves to the reply text once it is complete. */
  async ask(question) {
    await this.#load();
    this.#abort?.abort();
    this.#append('user', question);
    this.#messages.push({ role: 'user', content: question });
    const bubble = this.#append('assistant', '…');
    const abort = (this.#abort = new AbortController());
    this.stopButton.disabled = false;
    const raw = this.getAttribute('temperature');
    const t = raw?.trim() ? Number(raw) : NaN;
    const { text: reply } = await streamChat(this.#engine, {
      messages: [{ role: 'system', content: this.#systemPrompt() }, ...this.#messages],
      temperature: Number.isFinite(t) && t >= 0 ? t : 0.3, max_tokens: 384, signal: abort.signal, context_overflow: 'drop-oldest',
    }, bubble, {
      // without show-alternatives there is no inspector, and streamChat asks for no log-probabilities
      inspector: this.#alternatives(),
      onChunk: () => { this.log.scrollTop = this.log.scrollHeight; },
    });
    if (this.#abort === abort) {
      this.#abort = null;
      this.stopButton.disabled = true;
    }
    this.#messages.push({ role: 'assistant', content: reply });
    this.dispatchEvent(new CustomEvent('reply', { detail: { text: reply } }));
    return reply;
  }
}

if (!customElements.get('wisp-tutor')) customElements.define('wisp-tutor', WispTutor);
