// Safe rendering of model output: text nodes only (never innerHTML), with a small markdown subset
// (paragraphs, line breaks, **bold**, *italic*, `code`, ``` fenced blocks ```). Anything that
// looks like HTML stays visible text.

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
