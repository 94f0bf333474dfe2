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
//
// mode="quiz" (mode="chat" is the default): instead of a chat, a multiple-choice quiz on
// `subject` that the student answers and checks, `questions` of them (1 to 10, default 3), each
// with four choices. The model is asked for it under a JSON Schema (chat.completions'
// response_format), so its reply is JSON of that shape; the reply is still parsed defensively and
// checked (the count, four non-empty choices, the answer's index among them) before it is shown,
// as text (render.js's renderQuiz); a question offering the same choice twice is refused too (a
// student could pick the right text and be marked wrong). `temperature` (default 0.3; 0: the
// same quiz every time) applies there too; `system-prompt` replaces the quiz instruction.
// "New quiz" asks again, "Stop" ends a quiz being written, "Check answers" marks each question
// and shows the score, "Try again" clears the answers.

import { createWorkerEngine } from './index.js';
import { TokenInspector, renderMarkdown, renderQuiz, streamChat } from './render.js';

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
input { flex: 1; padding: .45rem; font: inherit; } button { font: inherit; padding: .4rem .8rem; }
.quiz { padding: .75rem; background: #fafbff; max-height: 34rem; overflow-y: auto; }
.quiz form.answers { display: block; padding: 0; border: 0; }
.quiz .intro p { margin: 0 0 .5rem; }
.wisp-quiz-item { margin: 0 0 .75rem; padding: .5rem .75rem .6rem; border: 1px solid #dfe2ef; border-radius: 8px; background: #fff; }
.wisp-quiz-item legend { font-weight: 600; padding: 0 .25rem; }
.wisp-quiz-question, .wisp-quiz-choice-text { white-space: pre-wrap; }
.wisp-quiz-choice { display: flex; align-items: baseline; gap: .4rem; padding: .2rem .35rem; border-radius: 5px; cursor: pointer; }
.wisp-quiz-choice input { flex: none; margin: 0; padding: 0; } .wisp-quiz-letter { flex: none; color: #5a6070; }
.wisp-quiz-choice:hover { background: #f0f3ff; }
.wisp-quiz-choice:has(input:focus-visible) { outline: 2px solid #3b5bdb; outline-offset: 1px; }
.wisp-quiz-choice.answer { background: #e3f6e8; box-shadow: inset 3px 0 #2b8a3e; }
.wisp-quiz-choice.wrong { background: #fde7e7; box-shadow: inset 3px 0 #c92a2a; }
.wisp-quiz-choice.answer::after { content: "✓"; color: #2b8a3e; font-weight: 700; }
.wisp-quiz-choice.wrong::after { content: "✗"; color: #c92a2a; font-weight: 700; }
.wisp-quiz-feedback { margin: .35rem 0 0; font-size: 14px; }
.wisp-quiz-item[data-result="correct"] .wisp-quiz-feedback { color: #2b8a3e; }
.wisp-quiz-item[data-result="incorrect"] .wisp-quiz-feedback, .wisp-quiz-item[data-result="unanswered"] .wisp-quiz-feedback { color: #a61e1e; }
.quiz .score { font-weight: 600; margin: .25rem 0 .5rem; } .quiz .score:empty { display: none; }
.quiz .actions { display: flex; gap: .5rem; }
.quiz .error { background: #fff4f4; border: 1px solid #f0b4b4; border-radius: 8px; padding: .5rem .75rem; color: #8a1c1c; }
.quiz .error pre { white-space: pre-wrap; color: #333; background: #f6f6f9; padding: .4rem; }
.controls { display: flex; align-items: center; gap: .5rem; padding: .5rem; border-top: 1px solid #ddd; }
.controls progress { flex: 1; } .controls progress[hidden] { display: none; }
[hidden] { display: none !important; }`;

let shared = null;
function sheet() {
  if (!shared) {
    shared = new CSSStyleSheet();
    shared.replaceSync(STYLE);
  }
  return shared;
}

const QUIZ_LETTERS = 'ABCD';
/** The most questions a quiz may have (the `questions` attribute), and the default. */
const MAX_QUESTIONS = 10;
const DEFAULT_QUESTIONS = 3;

/**
 * The JSON Schema a quiz of `n` questions is asked under: exactly `n` questions, each a question,
 * exactly four choices and the correct choice's index, in that order (the order the model writes
 * them in). The strings are bounded, so a reply always ends.
 */
export function quizSchema(n) {
  return {
    type: 'object',
    properties: {
      questions: {
        type: 'array',
        minItems: n,
        maxItems: n,
        items: {
          type: 'object',
          properties: {
            question: { type: 'string', minLength: 1, maxLength: 160 },
            choices: { type: 'array', minItems: 4, maxItems: 4, items: { type: 'string', minLength: 1, maxLength: 80 } },
            answer: { type: 'integer', enum: [0, 1, 2, 3] },
          },
          required: ['question', 'choices', 'answer'],
        },
      },
    },
    required: ['questions'],
  };
}

/** The instruction a quiz is asked with (a small model follows an example best). */
function quizInstruction() {
  return 'You write multiple-choice quizzes for students. Each question has exactly four choices, ' +
    'one of them correct; "answer" is the position of the correct choice, counting from 0. ' +
    'Reply with JSON only, like this example of a quiz with one question about colours:\n' +
    '{"questions": [{"question": "Which colour do you get by mixing blue and yellow?", ' +
    '"choices": ["Red", "Purple", "Green", "Orange"], "answer": 2}]}';
}

/** Why a model's reply is not a usable quiz (shown to the reader). */
class QuizError extends Error {
  constructor(message, reply) {
    super(message);
    this.name = 'QuizError';
    this.reply = reply;
  }
}

/**
 * Escapes raw control characters inside JSON strings (wisp's grammar keeps them out, but
 * llama-cpp-python's string rule, or another engine, lets them in; JSON.parse refuses them), so
 * the parsed strings hold exactly the characters the model wrote.
 */
function escapeControls(text) {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') {
        out += c + (text[i + 1] ?? '');
        i++;
        continue;
      }
      if (c === '"') inString = false;
      else if (c < ' ') {
        out += `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
        continue;
      }
    } else if (c === '"') inString = true;
    out += c;
  }
  return out;
}

/**
 * The quiz in a model's reply, checked: `[{ question, choices: [4 strings], answer }]` with
 * exactly `n` questions, or a QuizError saying what is wrong.
 */
function parseQuiz(text, n) {
  let data;
  try {
    data = JSON.parse(escapeControls(text));
  } catch {
    throw new QuizError('The model’s reply is not valid JSON.', text);
  }
  const questions = data?.questions;
  if (!Array.isArray(questions)) throw new QuizError('The model’s reply has no list of questions.', text);
  if (questions.length !== n) throw new QuizError(`The model wrote ${questions.length} question${questions.length === 1 ? '' : 's'}, not ${n}.`, text);
  return questions.map((q, i) => {
    const where = `Question ${i + 1}`;
    if (typeof q?.question !== 'string' || !q.question.trim()) throw new QuizError(`${where} has no text.`, text);
    if (!Array.isArray(q.choices) || q.choices.length !== 4) throw new QuizError(`${where} does not have four choices.`, text);
    if (!q.choices.every((c) => typeof c === 'string' && c.trim())) throw new QuizError(`${where} has an empty choice.`, text);
    const seen = q.choices.map((c) => c.trim().toLowerCase());
    const twice = seen.findIndex((c, j) => seen.indexOf(c) !== j);
    if (twice >= 0) throw new QuizError(`${where} offers the same choice twice (${QUIZ_LETTERS[seen.indexOf(seen[twice])]} and ${QUIZ_LETTERS[twice]}).`, text);
    if (!Number.isInteger(q.answer) || q.answer < 0 || q.answer >= q.choices.length) {
      throw new QuizError(`${where}’s answer (${typeof q.answer === 'number' ? q.answer : typeof q.answer}) is not one of its choices.`, text);
    }
    return { question: q.question, choices: [...q.choices], answer: q.answer };
  });
}

export class WispTutor extends HTMLElement {
  #engine = null;
  #ownEngine = false;
  #loading = null;
  #messages = [];
  #abort = null;
  #inspector = null;
  #mode = null;
  #quiz = null;
  #quizRun = 0;

  static observedAttributes = ['show-alternatives', 'mode'];

  attributeChangedCallback(name) {
    if (name === 'mode') {
      if (this.shadowRoot && this.#modeOf() !== this.#mode) this.#build();
      return;
    }
    if (this.log) this.#alternatives();
  }

  /**
   * The engine the widget runs on: null until its model has loaded. Setting it (any object with
   * `chat.completions.create`, e.g. an engine shared by several widgets) makes the widget use it
   * instead of loading `model`; the widget never disposes an engine it was given.
   */
  get engine() {
    return this.#engine;
  }

  set engine(engine) {
    this.#abort?.abort();
    if (this.#ownEngine) this.#engine?.dispose();
    this.#engine = engine ?? null;
    this.#ownEngine = false;
    this.#loading = engine ? Promise.resolve() : null;
    if (!engine || !this.shadowRoot) return; // connectedCallback lays out the widget with it
    this.status.textContent = this.#readyText();
    if (this.#mode === 'quiz' && this.isConnected) this.newQuiz().catch(() => {});
  }

  #modeOf() {
    return this.getAttribute('mode')?.trim().toLowerCase() === 'quiz' ? 'quiz' : 'chat';
  }

  /** The inspector, created, enabled or disabled as the show-alternatives attribute says. */
  #alternatives() {
    if (!this.log) return null;
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
    // an `engine` set on the element before it was defined shadows the accessor: pass it on
    if (Object.hasOwn(this, 'engine')) {
      const engine = this.engine;
      delete this.engine;
      this.engine = engine;
    }
    if (this.shadowRoot) {
      this.#load().catch(() => {}); // put back after being removed: the model again if it was let go
      return;
    }
    const root = this.attachShadow({ mode: 'open' });
    // a constructed stylesheet, not a <style> element: pages with a strict CSP (no
    // 'unsafe-inline' styles) still style the widget
    root.adoptedStyleSheets = [sheet()];
    this.#build();
    this.#load().catch(() => {});
  }

  /** Lays out the chat or the quiz (the mode attribute), dropping what was there. */
  #build() {
    const root = this.shadowRoot;
    this.#abort?.abort();
    this.#abort = null;
    this.#inspector?.dispose();
    this.#inspector = null;
    this.#messages = [];
    this.#quiz = null;
    this.#quizRun++; // a quiz being written for the layout dropped leaves it alone
    this.log = null;
    this.#mode = this.#modeOf();
    const loading = this.status?.textContent ?? '';
    if (this.#mode === 'quiz') this.#buildQuiz(root);
    else this.#buildChat(root);
    this.status.textContent = this.#engine ? this.#readyText() : loading;
    // a quiz starts once the model is ready (#load starts it when it is still loading)
    if (this.#mode === 'quiz' && this.#engine) this.newQuiz().catch(() => {});
  }

  #buildChat(root) {
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
  }

  #buildQuiz(root) {
    root.innerHTML = `<section class="quiz" part="quiz" aria-label="Quiz">
        <div class="intro" part="greeting"></div>
        <div class="error" part="error" role="alert" hidden></div>
        <form class="answers" part="questions" novalidate>
          <div class="items"></div>
          <p class="score" part="score" role="status"></p>
          <div class="actions"><button type="submit" class="check" disabled>Check answers</button>
          <button type="button" class="retry" hidden>Try again</button></div>
        </form>
      </section>
      <div class="status" part="status" role="status"></div>
      <div class="controls" part="controls"><progress hidden max="${DEFAULT_QUESTIONS}" value="0" aria-label="Quiz being written"></progress>
        <button type="button" class="new">New quiz</button><button type="button" class="stop" disabled>Stop</button></div>`;
    this.status = root.querySelector('.status');
    this.stopButton = root.querySelector('.stop');
    const subject = this.getAttribute('subject')?.trim();
    if (subject) root.querySelector('.quiz').setAttribute('aria-label', `Quiz: ${subject}`);
    const greeting = this.getAttribute('greeting');
    if (greeting) renderMarkdown(root.querySelector('.intro'), greeting);
    root.querySelector('.answers').addEventListener('submit', (e) => {
      e.preventDefault();
      this.checkAnswers();
    });
    root.querySelector('.retry').addEventListener('click', () => this.#resetAnswers());
    root.querySelector('.new').addEventListener('click', () => this.newQuiz().catch(() => {}));
    this.stopButton.addEventListener('click', () => this.#abort?.abort());
  }

  disconnectedCallback() {
    // moved within the page (removed and put back at once, before a microtask): keep everything
    queueMicrotask(() => {
      if (this.isConnected) return;
      this.#abort?.abort();
      this.#inspector?.close();
      if (this.#ownEngine || !this.#engine) {
        // the model this widget loaded (or is loading: #load lets it go) is released
        this.#engine?.dispose();
        this.#engine = null;
        this.#ownEngine = false;
        this.#loading = null;
      }
    });
  }

  #systemPrompt() {
    const custom = this.getAttribute('system-prompt');
    if (custom) return custom;
    const subject = this.getAttribute('subject');
    return `You are a patient, encouraging tutor${subject ? ` for ${subject}` : ''}. Explain step by step, briefly, and check understanding.`;
  }

  #readyText() {
    return `Ready (${this.#engine?.info?.backend ?? 'engine'}). Everything runs on this device.` +
      (this.#inspector?.enabled ? ' Click a word of a reply to see the alternatives the model weighed.' : '');
  }

  #load() {
    if (this.#loading) return this.#loading;
    const loading = (async () => {
      const model = new URL(this.getAttribute('model') ?? './models/default.gguf', document.baseURI).href;
      this.status.textContent = 'Loading the model…';
      let engine;
      try {
        engine = await createWorkerEngine(model, {
          backend: this.getAttribute('backend') ?? 'auto',
          onProgress: (p) => {
            if (p.total && this.#loading === loading) this.status.textContent = `Loading the model… ${Math.round((100 * p.loaded) / p.total)}%`;
          },
        });
      } catch (e) {
        if (this.#loading === loading) {
          this.status.textContent = `Could not load the model: ${e.message}`;
          this.#loading = null;
        }
        throw e;
      }
      // an engine was given meanwhile, or the widget was taken out of the page: not needed
      if (this.#loading !== loading) {
        engine.dispose();
        return;
      }
      this.#engine = engine;
      this.#ownEngine = true;
      this.status.textContent = this.#readyText();
      if (this.#mode === 'quiz' && !this.#quiz) this.newQuiz().catch(() => {});
    })();
    this.#loading = loading;
    return loading;
  }

  #temperature(fallback) {
    const raw = this.getAttribute('temperature');
    const t = raw?.trim() ? Number(raw) : NaN;
    return Number.isFinite(t) && t >= 0 ? t : fallback;
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

  /** Asks `question` (mode="chat"); resolves to the reply text once it is complete. */
  async ask(question) {
    if (this.#mode !== 'chat') throw new Error('wisp-tutor: ask() needs mode="chat"');
    await this.#load();
    this.#abort?.abort();
    this.#append('user', question);
    this.#messages.push({ role: 'user', content: question });
    const bubble = this.#append('assistant', '…');
    const abort = (this.#abort = new AbortController());
    this.stopButton.disabled = false;
    const { text: reply } = await streamChat(this.#engine, {
      messages: [{ role: 'system', content: this.#systemPrompt() }, ...this.#messages],
      temperature: this.#temperature(0.3), max_tokens: 384, signal: abort.signal, context_overflow: 'drop-oldest',
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

  /** The number of questions a quiz has: the `questions` attribute, 1 to 10 (default 3). */
  #questionCount() {
    const n = Number(this.getAttribute('questions'));
    if (!Number.isInteger(n) || n < 1) return DEFAULT_QUESTIONS;
    return Math.min(n, MAX_QUESTIONS);
  }

  /** The chat request a quiz of `n` questions on the `subject` attribute is asked with. */
  #quizRequest(n) {
    const subject = this.getAttribute('subject')?.trim() || 'general knowledge';
    return {
      messages: [
        { role: 'system', content: this.getAttribute('system-prompt') || quizInstruction() },
        { role: 'user', content: n === 1 ? `Write a quiz of 1 question about ${subject}.` : `Write a quiz of ${n} different questions about ${subject}.` },
      ],
      response_format: { type: 'json_schema', json_schema: { name: 'quiz', schema: quizSchema(n), strict: true } },
      temperature: this.#temperature(0.3),
      // the default model repeats its first question without it
      presence_penalty: 0.6,
    };
  }

  /**
   * Asks the model for a new quiz (mode="quiz") and shows it, replacing the one shown; resolves
   * to its questions (`[{ question, choices, answer }]`), or to null when it was stopped or the
   * reply was not a usable quiz (the widget then says why). Fires `quiz` (detail
   * `{ questions, error }`) when done.
   */
  async newQuiz() {
    if (this.#mode !== 'quiz') throw new Error('wisp-tutor: newQuiz() needs mode="quiz"');
    const root = this.shadowRoot;
    const run = ++this.#quizRun;
    this.#abort?.abort();
    const abort = (this.#abort = new AbortController());
    const n = this.#questionCount();
    const items = root.querySelector('.items');
    const progress = root.querySelector('progress');
    const error = root.querySelector('.error');
    const check = root.querySelector('.check');
    this.#quiz = null;
    items.replaceChildren();
    items.setAttribute('aria-busy', 'true');
    error.hidden = true;
    error.replaceChildren();
    root.querySelector('.score').textContent = '';
    root.querySelector('.retry').hidden = true;
    check.disabled = true;
    this.stopButton.disabled = false;
    progress.max = n;
    progress.value = 0;
    progress.hidden = false;
    const current = () => run === this.#quizRun;
    let text = '';
    let questions = null;
    let failure = null;
    try {
      if (!this.#engine) this.status.textContent = 'Loading the model…';
      await this.#load();
      if (!this.#engine) throw new Error('the model is not loaded');
      if (abort.signal.aborted) throw new DOMException('stopped', 'AbortError');
      this.status.textContent = `Writing question 1 of ${n}…`;
      const stream = await this.#engine.chat.completions.create({ ...this.#quizRequest(n), stream: true, signal: abort.signal });
      let finish = null;
      for await (const chunk of stream) {
        if (!current()) break;
        text += chunk.choices?.[0]?.delta?.content ?? '';
        finish = chunk.choices?.[0]?.finish_reason ?? finish;
        // questions whose answer is written (keys are unescaped quotes only outside strings)
        const done = (text.match(/(?<!\\)"answer"\s*:\s*\d/g) ?? []).length;
        progress.value = Math.min(done, n);
        if (done < n) this.status.textContent = `Writing question ${done + 1} of ${n}…`;
      }
      if (!current()) return null;
      if (finish === 'length') throw new QuizError('The model’s reply was cut off before the quiz was complete.', text);
      questions = parseQuiz(text, n);
    } catch (e) {
      failure = e;
    }
    if (!current()) return null;
    const hadFocus = root.activeElement === this.stopButton;
    this.#abort = null;
    this.stopButton.disabled = true;
    progress.hidden = true;
    items.removeAttribute('aria-busy');
    if (failure) {
      if (failure.name === 'AbortError') this.status.textContent = 'Stopped. Press “New quiz” to write another.';
      else {
        this.status.textContent = '';
        this.#showError(failure);
      }
      if (hadFocus) root.querySelector('.new').focus();
      this.dispatchEvent(new CustomEvent('quiz', { detail: { questions: null, error: failure } }));
      return null;
    }
    this.#quiz = { questions, checked: false };
    renderQuiz(items, questions, { name: `wisp-quiz-${run}` });
    check.disabled = false;
    this.status.textContent = this.#quizReadyText(n);
    if (hadFocus) items.querySelector('input')?.focus();
    this.dispatchEvent(new CustomEvent('quiz', { detail: { questions, error: null } }));
    return questions;
  }

  #quizReadyText(n) {
    return `${n} question${n === 1 ? '' : 's'}: choose an answer for each, then “Check answers”.`;
  }

  /** Says why there is no quiz, with the model's reply (as text) when there was one. */
  #showError(e) {
    const box = this.shadowRoot.querySelector('.error');
    const p = document.createElement('p');
    p.textContent = e instanceof QuizError
      ? `Sorry, that quiz could not be used: ${e.message} Press “New quiz” to try again.`
      : `Sorry, the quiz could not be written: ${e?.message ?? e}`;
    box.append(p);
    if (e instanceof QuizError && e.reply) {
      const details = document.createElement('details');
      const summary = document.createElement('summary');
      summary.textContent = 'The model’s reply';
      details.append(summary);
      renderMarkdown(details, `\`\`\`\n${e.reply}\n\`\`\``);
      box.append(details);
    }
    box.hidden = false;
  }

  /**
   * Marks the quiz shown (mode="quiz"): each question correct, incorrect or not answered, the
   * correct choice shown, and the score. Returns `{ score, total, answers }` (each question's
   * chosen index, or null), or null without a quiz. Fires `score` with the same detail.
   */
  checkAnswers() {
    const quiz = this.#quiz;
    if (!quiz) return null;
    const root = this.shadowRoot;
    // the focus is on what is about to be disabled (Check answers, or a choice when Enter checked)
    const focusIn = root.querySelector('.answers').contains(root.activeElement);
    const items = [...root.querySelectorAll('.wisp-quiz-item')];
    const answers = items.map((item) => {
      const chosen = item.querySelector('input:checked');
      return chosen ? Number(chosen.value) : null;
    });
    let score = 0;
    items.forEach((item, i) => {
      const right = quiz.questions[i].answer;
      const chosen = answers[i];
      const result = chosen === null ? 'unanswered' : chosen === right ? 'correct' : 'incorrect';
      if (result === 'correct') score++;
      item.dataset.result = result;
      for (const label of item.querySelectorAll('.wisp-quiz-choice')) {
        const j = Number(label.dataset.choice);
        label.classList.toggle('answer', j === right);
        label.classList.toggle('wrong', j === chosen && j !== right);
        label.querySelector('input').disabled = true;
      }
      const feedback = item.querySelector('.wisp-quiz-feedback');
      const letter = QUIZ_LETTERS[right];
      feedback.textContent = result === 'correct' ? `Correct: ${letter}.`
        : result === 'incorrect' ? `Not quite: you chose ${QUIZ_LETTERS[chosen]}; the answer is ${letter}.`
          : `Not answered: the answer is ${letter}.`;
      feedback.hidden = false;
    });
    quiz.checked = true;
    const total = items.length;
    root.querySelector('.score').textContent = `Score: ${score} of ${total}.`;
    this.status.textContent = '“Try again” clears the answers; “New quiz” writes another quiz.';
    root.querySelector('.check').disabled = true;
    const retry = root.querySelector('.retry');
    retry.hidden = false;
    if (focusIn) retry.focus();
    const detail = { score, total, answers };
    this.dispatchEvent(new CustomEvent('score', { detail }));
    return detail;
  }

  /** Clears the answers and the marks, to answer the same quiz again. */
  #resetAnswers() {
    if (!this.#quiz) return;
    const root = this.shadowRoot;
    this.#quiz.checked = false;
    for (const item of root.querySelectorAll('.wisp-quiz-item')) {
      delete item.dataset.result;
      const feedback = item.querySelector('.wisp-quiz-feedback');
      feedback.textContent = '';
      feedback.hidden = true;
      for (const label of item.querySelectorAll('.wisp-quiz-choice')) {
        label.classList.remove('answer', 'wrong');
        const input = label.querySelector('input');
        input.disabled = false;
        input.checked = false;
      }
    }
    root.querySelector('.score').textContent = '';
    root.querySelector('.retry').hidden = true;
    root.querySelector('.check').disabled = false;
    this.status.textContent = this.#quizReadyText(this.#quiz.questions.length);
    root.querySelector('.wisp-quiz-item input')?.focus();
  }
}

if (!customElements.get('wisp-tutor')) customElements.define('wisp-tutor', WispTutor);
