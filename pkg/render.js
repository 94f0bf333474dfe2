// Safe rendering of model output, the only place in the package (and in the demo pages) where
// model text becomes DOM: text nodes only (never innerHTML), with a small markdown subset
// (paragraphs, line breaks, **bold**, *italic*, `code`, ``` fenced blocks ```). Anything that
// looks like HTML stays visible text. `streamChat` is the one streaming-chat loop the demo page
// and <wisp-tutor> share.

/** Appends `text` rendered as safe markdown to `parent` (an element or fragment). */
export function renderMarkdown(parent, text) {
  const doc = parent.ownerDocument ?? document;
  const parts = String(text).split(/```/);
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      const pre = doc.createElement('pre');
      const code = doc.createElement('code');
      code.textContent = part.replace(/^[\w+-]*\n/, '');
      pre.append(code);
      parent.append(pre);
      return;
    }
    for (const para of part.split(/\n{2,}/)) {
      if (!para.trim()) continue;
      const p = doc.createElement('p');
      para.split('\n').forEach((line, j) => {
        if (j) p.append(doc.createElement('br'));
        inline(p, line, doc);
      });
      parent.append(p);
    }
  });
  return parent;
}

function inline(parent, line, doc) {
  const re = /(\*\*[^*]+\*\*|`[^`]+`|\*[^*\s][^*]*\*)/g;
  let last = 0;
  for (const m of line.matchAll(re)) {
    parent.append(doc.createTextNode(line.slice(last, m.index)));
    const t = m[0];
    const el = doc.createElement(t.startsWith('**') ? 'strong' : t.startsWith('`') ? 'code' : 'em');
    el.textContent = t.startsWith('**') ? t.slice(2, -2) : t.slice(1, -1);
    parent.append(el);
    last = m.index + t.length;
  }
  parent.append(doc.createTextNode(line.slice(last)));
}

/**
 * Streams a chat completion into `element`: `engine.chat.completions.create({ ...request,
 * stream: true })`, the reply so far rendered as safe markdown after every chunk (`placeholder`
 * while it is empty), `onChunk(chunk, text)` after each render. Never rejects: resolves to
 * `{ text, finishReason, usage, error }` — `error` is the exception that ended it early (an
 * AbortError leaves the partial reply in place; any other error replaces it with
 * "(error: …)"), `finishReason` and `usage` come from the last chunk when the stream completed.
 */
export async function streamChat(engine, request, element, { onChunk, placeholder = '…' } = {}) {
  let text = '';
  let last = null;
  let error = null;
  try {
    const stream = await engine.chat.completions.create({ ...request, stream: true });
    for await (const chunk of stream) {
      text += chunk.choices[0].delta.content ?? '';
      last = chunk;
      element.replaceChildren();
      renderMarkdown(element, text || placeholder);
      onChunk?.(chunk, text);
    }
  } catch (e) {
    error = e;
    if (e?.name !== 'AbortError') {
      element.replaceChildren();
      renderMarkdown(element, `(error: ${e?.message ?? e})`);
    }
  }
  return { text, finishReason: error ? null : last?.choices[0].finish_reason ?? null, usage: error ? null : last?.usage ?? null, error };
}
