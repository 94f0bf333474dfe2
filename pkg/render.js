// Safe rendering of model output, the only place in the package (and in the demo pages) where
// model text becomes DOM: text nodes only (never innerHTML), with a small markdown subset
// (paragraphs, line breaks, **bold**, *italic*, `code`, ``` fenced blocks ```). Anything that
// looks like HTML stays visible text. `streamChat` is the one streaming-chat loop the demo page
// and <wisp-tutor> share; `TokenInspector` lets a reader open any word of a reply and see the
// alternatives the model weighed (token log-probabilities), in both. `renderQuiz` lays out a
// multiple-choice quiz (<wisp-tutor mode="quiz">), its questions and choices as plain text.
//
// How tokens coexist with markdown: the reply is rendered by the same markdown renderer, with
// every text node cut at token boundaries. Each piece of reply text that markdown keeps is a
// contiguous slice of the reply, so a token's visible characters land in one or more
// `<span class="wisp-token" data-token="i">` (a token may straddle markup: " **Paris" is a space
// in the paragraph and "Paris" in <strong>), while the markup itself (`**`, backticks, the line
// breaks that become <br> or paragraphs) is not text. A token made only of markup or line breaks
// gets an empty marker span instead, placed after the token before it, whose glyph comes from
// CSS (`content: attr(data-glyph)`), so it stays out of the reply's text. Tokens are matched to
// the reply by their bytes (a token may hold part of a UTF-8 character: the character belongs
// to the token its first byte is in), so text the engine held back (stop strings) and tokens
// past the end of the text so far simply have no span yet. The view is rendered afresh from the
// text and the tokens on every chunk, exactly as the plain markdown is, so it is never out of
// step with the stream, and merged into the reply keeping the nodes that did not change, so the
// words already shown stay the same elements (clickable, focused, with their list open) while
// the rest arrives.

/**
 * Appends `text` rendered as safe markdown to `parent` (an element or fragment). With
 * `logprobs` (OpenAI's `choices[0].logprobs.content` entries for this text), each token's
 * visible text is wrapped in `<span class="wisp-token" data-token="i" data-confidence="…">`.
 */
export function renderMarkdown(parent, text, { logprobs } = {}) {
  text = String(text);
  const doc = parent.ownerDocument ?? document;
  const out = new Writer(doc, text, logprobs?.length ? logprobs : null);
  let at = 0;
  text.split(/```/).forEach((part, i) => {
    const start = at;
    at += part.length + 3;
    if (i % 2 === 1) {
      const pre = doc.createElement('pre');
      const code = doc.createElement('code');
      const lang = /^[\w+-]*\n/.exec(part)?.[0].length ?? 0; // the fence's language line
      out.text(code, start + lang, start + part.length);
      pre.append(code);
      parent.append(pre);
      return;
    }
    for (const [ps, pe] of pieces(part, /\n{2,}/g, start)) {
      if (!text.slice(ps, pe).trim()) continue;
      const p = doc.createElement('p');
      pieces(text.slice(ps, pe), /\n/g, ps).forEach(([ls, le], j) => {
        if (j) p.append(doc.createElement('br'));
        inline(p, ls, le, text, doc, out);
      });
      parent.append(p);
    }
  });
  out.markers();
  return parent;
}

/** `str.split(re)` as [start, end) offsets, shifted by `offset`. */
function pieces(str, re, offset) {
  const out = [];
  let last = 0;
  for (const m of str.matchAll(re)) {
    out.push([offset + last, offset + m.index]);
    last = m.index + m[0].length;
  }
  out.push([offset + last, offset + str.length]);
  return out;
}

function inline(parent, start, end, text, doc, out) {
  const line = text.slice(start, end);
  const re = /(\*\*[^*]+\*\*|`[^`]+`|\*[^*\s][^*]*\*)/g;
  let last = 0;
  for (const m of line.matchAll(re)) {
    out.text(parent, start + last, start + m.index);
    const t = m[0];
    const el = doc.createElement(t.startsWith('**') ? 'strong' : t.startsWith('`') ? 'code' : 'em');
    const mark = t.startsWith('**') ? 2 : 1;
    out.text(el, start + m.index + mark, start + m.index + t.length - mark);
    parent.append(el);
    last = m.index + t.length;
  }
  out.text(parent, start + last, end);
}

/** Appends slices of the reply as text nodes, cut into token spans when there are tokens. */
class Writer {
  constructor(doc, text, logprobs) {
    this.doc = doc;
    this.source = text;
    this.logprobs = logprobs;
    this.ranges = logprobs ? tokenRanges(text, logprobs) : null;
    this.spans = logprobs ? logprobs.map(() => []) : null;
    this.k = 0;
  }

  text(el, s, e) {
    const doc = this.doc;
    if (!this.ranges) {
      el.append(doc.createTextNode(this.source.slice(s, e)));
      return;
    }
    const r = this.ranges;
    while (s < e) {
      while (this.k < r.length && (r[this.k].end <= s || r[this.k].start === r[this.k].end)) this.k++;
      const t = r[this.k];
      if (!t || t.start >= e) {
        el.append(doc.createTextNode(this.source.slice(s, e)));
        return;
      }
      if (t.start > s) {
        el.append(doc.createTextNode(this.source.slice(s, t.start)));
        s = t.start;
      }
      const to = Math.min(e, t.end);
      const span = this.span(this.k);
      span.append(doc.createTextNode(this.source.slice(s, to)));
      el.append(span);
      s = to;
    }
  }

  span(i) {
    const span = this.doc.createElement('span');
    span.className = 'wisp-token';
    span.dataset.token = String(i);
    span.dataset.confidence = confidence(this.logprobs[i].logprob);
    this.spans[i].push(span);
    return span;
  }

  /**
   * A marker for each token with text but nothing visible (markup, line breaks): in a run of
   * them between two visible tokens, those up to the last line break go after the token before
   * ("bold**↵↵"), the rest before the token after ("**bold").
   */
  markers() {
    if (!this.ranges) return;
    let prev = null; // the last piece of the last visible token
    let run = [];
    const flush = (next) => {
      let cut = next ? run.findLastIndex((i) => /^\s+$/.test(this.logprobs[i].token)) + 1 : run.length;
      if (!prev) cut = 0;
      let at = prev;
      run.forEach((i, j) => {
        if (j < cut) {
          const m = this.marker(i);
          at.after(m);
          at = m;
        } else if (next) next.before(this.marker(i));
      });
      run = [];
    };
    this.ranges.forEach((t, i) => {
      const shown = this.spans[i];
      if (shown.length) {
        flush(shown[0]);
        prev = shown.at(-1);
      } else if (t.start < t.end) run.push(i);
    });
    flush(null);
  }

  marker(i) {
    const m = this.span(i);
    m.classList.add('wisp-mark');
    m.dataset.glyph = visibleToken(this.logprobs[i].token, this.logprobs[i].bytes);
    return m;
  }
}

/**
 * Each token's [start, end) in `text` (UTF-16 offsets), matched by bytes: a character belongs
 * to the token holding its first byte. Tokens past the end of `text` get empty ranges; from the
 * first token whose bytes disagree with the text on, nothing is matched.
 */
function tokenRanges(text, logprobs) {
  const enc = new TextEncoder();
  const bytes = enc.encode(text);
  const startOf = new Int32Array(bytes.length + 1).fill(-1); // byte offset → UTF-16 index of the character starting there
  for (let i = 0, b = 0; i < text.length;) {
    const cp = text.codePointAt(i);
    startOf[b] = i;
    b += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    i += cp > 0xffff ? 2 : 1;
  }
  startOf[bytes.length] = text.length;
  const charFrom = (p) => {
    while (startOf[p] < 0) p++;
    return startOf[p];
  };
  let pos = 0;
  let lost = false;
  return logprobs.map((e, k) => {
    let tb = e.bytes ?? enc.encode(e.token ?? '');
    // a reply whose first token's leading space was dropped (SentencePiece's space prefix)
    if (k === 0 && tb[0] === 0x20 && bytes.length && bytes[0] !== 0x20) tb = tb.slice(1);
    let m = 0;
    if (!lost) while (m < tb.length && pos + m < bytes.length && bytes[pos + m] === tb[m]) m++;
    if (m < tb.length && pos + m < bytes.length) lost = true;
    const range = { start: charFrom(pos), end: charFrom(pos + m) };
    pos += m;
    return range;
  });
}

function confidence(logprob) {
  const p = Math.exp(logprob);
  return p >= 0.8 ? 'high' : p >= 0.4 ? 'medium' : 'low';
}

const GLYPHS = { ' ': '␣', '\n': '↵', '\t': '⇥', '\r': '↵' };

/**
 * A token's text as the list of alternatives shows it: spaces, line breaks and tabs as visible
 * glyphs (" Paris" → "␣Paris"), and a token that is not whole UTF-8 (part of a character) as its
 * bytes in hex ("‹e2 80›").
 */
export function visibleToken(text, bytes) {
  if (bytes?.length) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
    } catch {
      return `‹${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ')}›`;
    }
  }
  const t = String(text ?? '');
  return t ? t.replace(/[ \n\t\r]/g, (c) => GLYPHS[c]) : '∅';
}

/** A natural-log probability as the list shows it: "92.4%", "<0.1%", ">99.9%". */
export function formatProbability(logprob) {
  const v = (Math.exp(logprob) * 100).toFixed(1);
  if (logprob >= 0) return '100%';
  if (v === '100.0') return '>99.9%';
  if (v === '0.0') return '<0.1%';
  return `${v}%`;
}

/** What a screen reader says for a token that has no visible text. */
function describeToken(text) {
  if (/^\n\n+$/.test(text)) return 'paragraph break';
  if (/^\n$/.test(text)) return 'line break';
  return visibleToken(text);
}

let inspectors = 0;

/**
 * Makes the replies in `container` inspectable: `render(element, text, logprobs)` renders a
 * reply as markdown with its tokens as buttons; clicking one (or focusing it and pressing Enter
 * or Space) opens a list of the alternatives the model weighed at that point, with their
 * probabilities. One tab stop per reply; ←/→ (Home/End) move between its tokens, the list
 * following; Escape, a click elsewhere or leaving the log closes it. The list is a polite live
 * region (a toggletip), positioned in `container` (give it `position: relative`). With
 * `enabled` false, replies render as plain markdown (toggle it to re-render them all).
 */
export class TokenInspector {
  #container;
  #enabled;
  #replies = new Map(); // reply element → { text, logprobs }
  #current = new WeakMap(); // reply element → the token index holding its tab stop
  #open = null; // { element, index }
  #popover = null;
  #id;
  #onPointer;

  constructor(container, { enabled = true, topLogprobs = 5 } = {}) {
    this.#container = container;
    this.#enabled = Boolean(enabled);
    this.topLogprobs = topLogprobs;
    this.#id = `wisp-alternatives-${++inspectors}`;
    container.addEventListener('click', (e) => this.#click(e));
    container.addEventListener('keydown', (e) => this.#key(e));
    container.addEventListener('focusout', (e) => {
      if (e.relatedTarget && !container.contains(e.relatedTarget)) this.close();
    });
    // a press anywhere but on the list or a token closes it (listened for only while it is open)
    this.#onPointer = (e) => {
      const path = e.composedPath();
      if (path.includes(this.#popover) || path.some((n) => n.dataset?.token !== undefined && this.#replyOf(n))) return;
      this.close();
    };
  }

  get enabled() {
    return this.#enabled;
  }

  /** Turning it on or off re-renders every reply it has rendered. */
  set enabled(on) {
    on = Boolean(on);
    if (on === this.#enabled) return;
    this.#enabled = on;
    this.close();
    for (const [el, { text, logprobs }] of [...this.#replies]) {
      if (el.isConnected) this.render(el, text, logprobs);
      else this.#replies.delete(el);
    }
  }

  /**
   * Renders `text` into `element` with `logprobs` (OpenAI's entries) inspectable. The new
   * rendering is merged into what is there (morph): nodes that did not change are kept, so while
   * a reply streams the words already shown stay the same elements — a click in progress lands,
   * the focus and an open list stay put, and a screen reader is not handed a new reply per chunk.
   */
  render(element, text, logprobs) {
    for (const el of this.#replies.keys()) if (!el.isConnected && el !== element) this.#replies.delete(el);
    this.#replies.set(element, { text, logprobs });
    const inspect = this.#enabled && logprobs?.length > 0;
    const frag = (element.ownerDocument ?? document).createDocumentFragment();
    renderMarkdown(frag, text, inspect ? { logprobs } : {});
    const open = this.#open?.element === element ? this.#open.index : null;
    if (inspect) {
      for (const a of this.#anchors(frag)) {
        const i = Number(a.dataset.token);
        a.setAttribute('role', 'button');
        a.tabIndex = -1;
        a.setAttribute('aria-expanded', String(i === open));
        a.setAttribute('aria-controls', this.#id);
        if (a.classList.contains('wisp-mark')) a.setAttribute('aria-label', describeToken(logprobs[i].token));
      }
      if (open !== null) for (const s of frag.querySelectorAll(`.wisp-token[data-token="${open}"]`)) s.classList.add('open');
      this.#setTabStop(frag, this.#current.get(element) ?? 0, element);
    }
    const root = element.getRootNode?.();
    const active = root?.activeElement;
    const focused = active && element.contains(active) && active.dataset?.token !== undefined ? Number(active.dataset.token) : null;
    morph(element, frag);
    if (focused !== null && !element.contains(root.activeElement)) this.#anchor(element, focused)?.focus({ preventScroll: true });
    if (open !== null) {
      const anchor = inspect && this.#anchor(element, open);
      if (anchor) this.#place(anchor, this.#popover);
      else this.close();
    }
    return element;
  }

  /** Stops tracking `element` (e.g. when it now shows an error instead of a reply). */
  forget(element) {
    if (this.#open?.element === element) this.close();
    this.#replies.delete(element);
  }

  /** Closes the list of alternatives, if open. */
  close() {
    if (!this.#open) return;
    for (const s of this.#open.element.querySelectorAll('.wisp-token.open')) s.classList.remove('open');
    this.#anchor(this.#open.element, this.#open.index)?.setAttribute('aria-expanded', 'false');
    this.#open = null;
    (this.#container.ownerDocument ?? document).removeEventListener('pointerdown', this.#onPointer, true);
    if (this.#popover) {
      this.#popover.hidden = true;
      this.#popover.replaceChildren();
    }
  }

  /** Closes and removes the list, and forgets the replies. */
  dispose() {
    this.close();
    this.#popover?.remove();
    this.#replies.clear();
  }

  #anchors(element) {
    const seen = new Set();
    return [...element.querySelectorAll('.wisp-token')].filter((s) => !seen.has(s.dataset.token) && seen.add(s.dataset.token))
      .sort((a, b) => Number(a.dataset.token) - Number(b.dataset.token));
  }

  #anchor(element, index) {
    return element.querySelector(`.wisp-token[data-token="${Number(index)}"]`);
  }

  #replyOf(node) {
    for (let n = node; n && n !== this.#container; n = n.parentNode) if (this.#replies.has(n)) return n;
    return null;
  }

  /** The one tab stop of a reply (`root`: the reply or its new rendering) at token `index` or the next one shown. */
  #setTabStop(root, index, element = root) {
    const anchors = this.#anchors(root);
    const stop = anchors.find((a) => Number(a.dataset.token) >= index) ?? anchors.at(-1);
    for (const a of anchors) a.tabIndex = a === stop ? 0 : -1;
    if (stop) this.#current.set(element, Number(stop.dataset.token));
    return stop;
  }

  #click(e) {
    const token = e.target.closest?.('.wisp-token');
    const element = token && this.#replyOf(token);
    if (!element || !this.#enabled) return;
    const sel = this.#container.getRootNode().getSelection?.() ?? document.getSelection();
    if (sel && !sel.isCollapsed && sel.toString()) return; // selecting text, not opening a word
    const index = Number(token.dataset.token);
    const anchor = this.#setTabStop(element, index);
    anchor?.focus({ preventScroll: true });
    if (this.#open?.element === element && this.#open.index === index) this.close();
    else this.#show(element, index, true);
  }

  #key(e) {
    const token = e.target.closest?.('.wisp-token[role="button"]');
    const element = token && this.#replyOf(token);
    if (!element) return;
    const index = Number(token.dataset.token);
    const anchors = this.#anchors(element);
    const at = anchors.indexOf(token);
    let to = null;
    switch (e.key) {
      case 'Enter':
      case ' ':
        if (this.#open?.element === element && this.#open.index === index) this.close();
        else this.#show(element, index, true);
        break;
      case 'Escape':
        if (!this.#open) return;
        this.close();
        break;
      case 'ArrowRight': to = anchors[at + 1]; break;
      case 'ArrowLeft': to = anchors[at - 1]; break;
      case 'Home': to = anchors[0]; break;
      case 'End': to = anchors.at(-1); break;
      default: return;
    }
    e.preventDefault();
    e.stopPropagation();
    if (!to) return;
    const next = Number(to.dataset.token);
    this.#setTabStop(element, next);
    to.focus();
    if (this.#open) this.#show(element, next, true);
  }

  /** Opens the list for token `index` of `element` (`reveal`: scroll it into view). */
  #show(element, index, reveal) {
    if (this.#open && (this.#open.element !== element || this.#open.index !== index)) this.close();
    const pop = this.#list();
    if (!this.#open) (this.#container.ownerDocument ?? document).addEventListener('pointerdown', this.#onPointer, true);
    this.#open = { element, index };
    this.#fill(pop, this.#replies.get(element).logprobs[index], index);
    this.#mark();
    if (reveal) pop.scrollIntoView?.({ block: 'nearest', inline: 'nearest' });
  }

  /** The open token's spans marked and the list placed under it (again, after a re-render). */
  #mark() {
    const { element, index } = this.#open;
    for (const s of element.querySelectorAll(`.wisp-token[data-token="${index}"]`)) s.classList.add('open');
    const anchor = this.#anchor(element, index);
    anchor?.setAttribute('aria-expanded', 'true');
    this.#popover.hidden = false;
    this.#place(anchor, this.#popover);
  }

  #list() {
    let pop = this.#popover;
    if (!pop) {
      pop = this.#popover = (this.#container.ownerDocument ?? document).createElement('div');
      pop.id = this.#id;
      pop.className = 'wisp-alternatives';
      pop.setAttribute('role', 'status'); // a toggletip: its content is announced when it opens
      pop.setAttribute('aria-label', 'Alternatives');
      pop.hidden = true;
    }
    if (pop.parentNode !== this.#container) this.#container.append(pop);
    return pop;
  }

  /** The chosen token and the alternatives, most likely first; model text as text only. */
  #fill(pop, entry, index) {
    const doc = pop.ownerDocument;
    const head = doc.createElement('div');
    head.className = 'wisp-alt-head';
    head.textContent = `Alternatives the model weighed (token ${index + 1})`;
    const list = doc.createElement('ol');
    list.className = 'wisp-alt-list';
    const row = (alt, chosen) => {
      const li = doc.createElement('li');
      li.className = chosen ? 'wisp-alt chosen' : 'wisp-alt';
      li.dataset.logprob = String(alt.logprob);
      if (chosen) li.setAttribute('aria-current', 'true');
      const tok = doc.createElement('span');
      tok.className = 'wisp-alt-token';
      tok.textContent = visibleToken(alt.token, alt.bytes);
      const bar = doc.createElement('span');
      bar.className = 'wisp-alt-bar';
      bar.setAttribute('aria-hidden', 'true');
      const fill = doc.createElement('span');
      fill.style.width = `${Math.min(100, Math.exp(alt.logprob) * 100).toFixed(2)}%`; // CSSOM: allowed under a strict CSP
      bar.append(fill);
      const p = doc.createElement('span');
      p.className = 'wisp-alt-p';
      p.textContent = formatProbability(alt.logprob);
      li.append(tok, bar, p);
      if (chosen) {
        const note = doc.createElement('span');
        note.className = 'wisp-alt-note';
        note.textContent = 'chosen';
        li.append(note);
      }
      return li;
    };
    const top = entry.top_logprobs ?? [];
    let found = false;
    for (const alt of top) {
      const chosen = !found && alt.token === entry.token && String(alt.bytes) === String(entry.bytes);
      found ||= chosen;
      list.append(row(alt, chosen));
    }
    if (!found) list.append(row(entry, true)); // sampled from outside the top few
    pop.replaceChildren(head, list);
  }

  #place(anchor, pop) {
    if (!anchor) return;
    const ref = pop.offsetParent ?? this.#container;
    const a = anchor.getBoundingClientRect();
    const r = ref.getBoundingClientRect();
    const top = a.bottom - r.top - ref.clientTop + ref.scrollTop + 4;
    let left = a.left - r.left - ref.clientLeft + ref.scrollLeft;
    const max = ref.scrollLeft + ref.clientWidth - pop.offsetWidth - 4;
    left = Math.max(ref.scrollLeft + 4, Math.min(left, max));
    pop.style.top = `${Math.round(top)}px`;
    pop.style.left = `${Math.round(left)}px`;
  }
}

/**
 * Makes `into`'s children equal to `from`'s (which it takes), keeping the nodes that are already
 * the same: matched in order by kind, tag and token index, their text and attributes updated.
 */
function morph(into, from) {
  let o = into.firstChild;
  for (let n = from.firstChild; n;) {
    const next = n.nextSibling;
    if (o && o.nodeType === n.nodeType && o.nodeName === n.nodeName && (o.nodeType !== 1 || o.dataset.token === n.dataset.token)) {
      if (o.nodeType === 1) {
        for (const { name } of [...o.attributes]) if (!n.hasAttribute(name)) o.removeAttribute(name);
        for (const { name, value } of n.attributes) if (o.getAttribute(name) !== value) o.setAttribute(name, value);
        morph(o, n);
      } else if (o.data !== n.data) o.data = n.data;
      o = o.nextSibling;
    } else into.insertBefore(n, o);
    n = next;
  }
  while (o) {
    const next = o.nextSibling;
    o.remove();
    o = next;
  }
}

/**
 * Streams a chat completion into `element`: `engine.chat.completions.create({ ...request,
 * stream: true })`, the reply so far rendered as safe markdown after every chunk (`placeholder`
 * while it is empty), `onChunk(chunk, text)` after each render. With `inspector` (a
 * TokenInspector), the request asks for log-probabilities (`logprobs: true`, `top_logprobs`:
 * the inspector's `topLogprobs`, unless the request sets them) and each token of the reply
 * becomes inspectable as it arrives; without one, nothing extra is asked for. Never rejects:
 * resolves to `{ text, logprobs, finishReason, usage, error }` — `logprobs` the reply's entries
 * (null without an inspector), `error` the exception that ended it early (an AbortError leaves
 * the partial reply in place; any other error replaces it with "(error: …)"), `finishReason`
 * and `usage` from the last chunk when the stream completed.
 */
export async function streamChat(engine, request, element, { onChunk, placeholder = '…', inspector = null } = {}) {
  let text = '';
  let last = null;
  let error = null;
  const logprobs = inspector ? [] : null;
  const req = inspector ? { logprobs: true, top_logprobs: inspector.topLogprobs, ...request, stream: true } : { ...request, stream: true };
  try {
    const stream = await engine.chat.completions.create(req);
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      text += choice.delta.content ?? '';
      if (logprobs && choice.logprobs?.content) logprobs.push(...choice.logprobs.content);
      last = chunk;
      if (inspector && text) inspector.render(element, text, logprobs);
      else {
        element.replaceChildren();
        renderMarkdown(element, text || placeholder);
      }
      onChunk?.(chunk, text);
    }
  } catch (e) {
    error = e;
    if (e?.name !== 'AbortError') {
      inspector?.forget(element);
      element.replaceChildren();
      renderMarkdown(element, `(error: ${e?.message ?? e})`);
    }
  }
  return { text, logprobs, finishReason: error ? null : last?.choices[0].finish_reason ?? null, usage: error ? null : last?.usage ?? null, error };
}

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * Appends a multiple-choice quiz to `parent`, its text as text nodes only (a question or choice
 * that looks like HTML or markdown shows as written): one `<fieldset class="wisp-quiz-item"
 * data-question="i">` per question, whose `<legend>` holds its number
 * (`.wisp-quiz-number`) and its text (`.wisp-quiz-question`), then one `<label
 * class="wisp-quiz-choice" data-choice="j">` per choice: a radio button (name `${name}-${i}`,
 * value `j`), its letter (`.wisp-quiz-letter`, "A.") and its text (`.wisp-quiz-choice-text`),
 * and an empty, hidden `<p class="wisp-quiz-feedback" id="${name}-${i}-feedback">` the fieldset
 * is described by. `questions`: `[{ question, choices: [string] }]`. Returns `parent`.
 */
export function renderQuiz(parent, questions, { name = 'wisp-quiz' } = {}) {
  const doc = parent.ownerDocument ?? document;
  const el = (tag, className, text) => {
    const e = doc.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.append(doc.createTextNode(String(text)));
    return e;
  };
  questions.forEach((q, i) => {
    const item = el('fieldset', 'wisp-quiz-item');
    item.dataset.question = String(i);
    const legend = el('legend');
    legend.append(el('span', 'wisp-quiz-number', `${i + 1}. `), el('span', 'wisp-quiz-question', q.question));
    const choices = el('div', 'wisp-quiz-choices');
    q.choices.forEach((c, j) => {
      const label = el('label', 'wisp-quiz-choice');
      label.dataset.choice = String(j);
      const input = el('input');
      input.type = 'radio';
      input.name = `${name}-${i}`;
      input.value = String(j);
      label.append(input, el('span', 'wisp-quiz-letter', `${LETTERS[j] ?? j + 1}. `), el('span', 'wisp-quiz-choice-text', c));
      choices.append(label);
    });
    const feedback = el('p', 'wisp-quiz-feedback');
    feedback.id = `${name}-${i}-feedback`;
    feedback.hidden = true;
    item.setAttribute('aria-describedby', feedback.id);
    item.append(legend, choices, feedback);
    parent.append(item);
  });
  return parent;
}
