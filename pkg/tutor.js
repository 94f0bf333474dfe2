// <wisp-tutor>: a tutor chat widget a teacher embeds with one script tag and one element:
//   <script type="module" src="https://example.org/wisp/tutor.js"></script>
//   <wisp-tutor model="/models/default.gguf" subject="fractions" greeting="Hi! Ask me anything."></wisp-tutor>
// or, in a page that installed the package, `import 'wisp-llm/tutor';` (importing defines the element).
// Attributes: model (GGUF URL, relative to the page; default ./models/default.gguf), subject,
// system-prompt, greeting, backend (auto|webgpu|cpu). The model runs in a Web Worker on the
// reader's machine; replies render as text (safe markdown, render.js).

import { createWorkerEngine } from './index.js';
import { renderMarkdown, streamChat } from './render.js';

const STYLE = `
:host { display: block; font: 15px/1.45 system-ui, sans-serif; max-width: 42rem; border: 1px solid #ccd; border-radius: 10px; overflow: hidden; }
.log { height: 22rem; overflow-y: auto; padding: .75rem; background: #fafbff; }
.msg { margin: .4rem 0; padding: .5rem .75rem; border-radius: 8px; white-space: normal; }
.msg p { margin: .2rem 0; } .msg pre { background: #eef; padding: .4rem; overflow-x: auto; }
.user { background: #dfe8ff; margin-left: 3rem; } .assistant { background: #fff; border: 1px solid #e4e6f0; margin-right: 3rem; }
.status { font-size: 12px; color: #667; padding: .25rem .75rem; border-top: 1px solid #eee; }
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
    const greeting = this.getAttribute('greeting');
    if (greeting) this.#append('assistant', greeting);
    this.#load().catch(() => {});
  }

  disconnectedCallback() {
    this.#abort?.abort();
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
        this.status.textContent = `Ready (${this.#engine.info.backend}). Everything runs on this device.`;
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
    const { text: reply } = await streamChat(this.#engine, {
      messages: [{ role: 'system', content: this.#systemPrompt() }, ...this.#messages],
      temperature: 0.3, max_tokens: 384, signal: abort.signal, context_overflow: 'drop-oldest',
    }, bubble, { onChunk: () => { this.log.scrollTop = this.log.scrollHeight; } });
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
