// <wisp-tutor mode="quiz"> from the installed package: it asks the model for a multiple-choice
// quiz on its subject under a JSON Schema (chat.completions' response_format) and shows it as a
// quiz the student answers. With the default model (CPU, greedy) the questions and choices shown
// are those of the JSON chat.completions returns for the same request in the page, and checking
// answers chosen by mouse and keyboard marks them and scores them by the reply's `answer` indices;
// "Stop" ends a quiz being written. With a fake engine (deterministic replies): model text that
// looks like HTML stays text, replies that are not a usable quiz are refused, saying why, and the
// `questions` attribute sets the schema's count. The pages are served under a strict CSP (no
// inline scripts or styles), which the quiz must not violate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { serve, launch, open, defaultModel, installPacked, root } from './harness.mjs';
import { siteRoots } from '../../scripts/serve.mjs';

/** The schema a quiz of `n` questions must be asked under (written out here, not imported). */
function expectedSchema(n) {
  return {
    type: 'object',
    properties: {
      questions: {
        type: 'array', minItems: n, maxItems: n,
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

let pack, server, browser;
before(async () => {
  pack = installPacked();
  const site = siteRoots(root, defaultModel());
  site.roots['/pkg/'] = pack.installed; // /pkg/ is node_modules/wisp-llm: the files the tarball ships
  const page = (name, body) => {
    const file = path.join(pack.project, name);
    fs.writeFileSync(file, `<!doctype html>\n<meta charset="utf-8">\n<title>${name}</title>\n${body}`);
    site.files[`/${name}`] = file;
  };
  page('quiz.html', `<p>Homework:</p>
<script type="module" src="/pkg/tutor.js"></script>
<wisp-tutor model="/models/default.gguf" backend="cpu" mode="quiz" subject="geography" temperature="0"
  greeting="Test yourself <img src=x onerror=&quot;window.pwned=1&quot;>"></wisp-tutor>`);
  page('blank.html', '<p>The widget is imported by the test.</p>');
  server = await serve({ ...site, csp: "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'" });
  browser = await launch({ webgpu: false });
  // every chat request a page posts to its engine's worker
  await browser.context.addInitScript(() => {
    window.posted = [];
    window.violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.violations.push(`${e.violatedDirective} ${e.blockedURI}`));
    const post = Worker.prototype.postMessage;
    Worker.prototype.postMessage = function (msg, ...rest) {
      if (msg?.type === 'stream' && msg.chat) window.posted.push(structuredClone(msg.req));
      return post.call(this, msg, ...rest);
    };
  });
});
after(async () => {
  await browser?.close();
  await server?.close();
  pack?.cleanup();
  assert.deepEqual(browser?.offsite ?? [], [], 'requests left 127.0.0.1');
});

/** What the widget shows: each question's text, choices, radios, marks and feedback. */
function view(page) {
  return page.evaluate(() => {
    const root = document.querySelector('wisp-tutor').shadowRoot;
    return {
      items: [...root.querySelectorAll('fieldset.wisp-quiz-item')].map((f) => ({
        legend: f.querySelector('legend').textContent,
        question: f.querySelector('legend .wisp-quiz-question').textContent,
        choices: [...f.querySelectorAll('.wisp-quiz-choice-text')].map((s) => s.textContent),
        radios: [...f.querySelectorAll('input[type="radio"]')].map((r) => ({ name: r.name, value: r.value, checked: r.checked, disabled: r.disabled, labelled: r.closest('label') !== null })),
        result: f.dataset.result ?? null,
        answerMarked: [...f.querySelectorAll('.wisp-quiz-choice.answer')].map((l) => Number(l.dataset.choice)),
        wrongMarked: [...f.querySelectorAll('.wisp-quiz-choice.wrong')].map((l) => Number(l.dataset.choice)),
        feedback: f.querySelector('.wisp-quiz-feedback').hidden ? null : f.querySelector('.wisp-quiz-feedback').textContent,
        describedBy: root.getElementById(f.getAttribute('aria-describedby')) === f.querySelector('.wisp-quiz-feedback'),
      })),
      score: root.querySelector('.score').textContent,
      status: root.querySelector('.status').textContent,
      error: root.querySelector('.error').hidden ? null : root.querySelector('.error').textContent,
      check: root.querySelector('.check').disabled,
      retry: root.querySelector('.retry').hidden,
      stop: root.querySelector('.stop').disabled,
      progress: root.querySelector('progress').hidden ? null : { value: root.querySelector('progress').value, max: root.querySelector('progress').max },
      imgs: root.querySelectorAll('img').length + document.querySelectorAll('img').length,
      pwned: window.pwned ?? null,
      violations: window.violations,
      active: root.activeElement ? (root.activeElement.className || `${root.activeElement.name}=${root.activeElement.value}`) : null,
    };
  });
}

test('mode="quiz" with the default model: the quiz shown is the JSON chat.completions returns for the same request; answers by mouse and keyboard are marked and scored by its answer indices; Stop ends a new quiz', async () => {
  const { page, logs } = await open(browser.context, server.url + '/quiz.html');
  try {
    await page.evaluate(() => {
      window.quizzes = [];
      window.scores = [];
      const t = document.querySelector('wisp-tutor');
      t.addEventListener('quiz', (e) => window.quizzes.push({ questions: e.detail.questions, error: e.detail.error ? String(e.detail.error) : null }));
      t.addEventListener('score', (e) => window.scores.push(e.detail));
    });
    await page.waitForFunction(() => window.quizzes?.length > 0, null, { timeout: 600_000 });
    const [quiz] = await page.evaluate(() => window.quizzes);
    assert.equal(quiz.error, null, `the quiz failed: ${quiz.error}`);

    // the request: the widget's messages, greedy, under the quiz schema for 3 questions
    const posted = await page.evaluate(() => window.posted);
    assert.equal(posted.length, 1, 'one request');
    const req = posted[0];
    assert.deepEqual(req.response_format, { type: 'json_schema', json_schema: { name: 'quiz', schema: expectedSchema(3), strict: true } });
    assert.equal(req.temperature, 0);
    assert.equal(req.messages.length, 2);
    assert.equal(req.messages[0].role, 'system');
    assert.match(req.messages[0].content, /four choices/);
    assert.deepEqual(req.messages[1], { role: 'user', content: 'Write a quiz of 3 different questions about geography.' });
    assert.equal(req.presence_penalty, 0.6);

    // the reference: the same request through the engine API in the page
    const ref = await page.evaluate(async (req) => {
      const { Engine } = await import('/pkg/index.js');
      const e = await Engine.load('/models/default.gguf', { backend: 'cpu' });
      const r = await e.chat.completions.create({ ...req, stream: false });
      await e.dispose();
      return { content: r.choices[0].message.content, finish: r.choices[0].finish_reason };
    }, req);
    assert.equal(ref.finish, 'stop', `reply: ${ref.content}`);
    const json = JSON.parse(ref.content.replace(/[\u0000-\u001f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
    console.log(`# the default model's quiz: ${ref.content}`);
    assert.equal(json.questions.length, 3);
    for (const q of json.questions) {
      assert.deepEqual(Object.keys(q), ['question', 'choices', 'answer'], 'the schema\'s order');
      assert.equal(q.choices.length, 4);
      assert.ok(Number.isInteger(q.answer) && q.answer >= 0 && q.answer <= 3);
    }
    assert.deepEqual(quiz.questions, json.questions, 'the quiz event carries the reply\'s questions');

    let got = await view(page);
    assert.equal(got.items.length, 3, 'three questions');
    got.items.forEach((item, i) => {
      const q = json.questions[i];
      assert.equal(item.question, q.question, `question ${i + 1}'s text`);
      assert.equal(item.legend, `${i + 1}. ${q.question}`);
      assert.deepEqual(item.choices, q.choices, `question ${i + 1}'s choices`);
      assert.equal(item.radios.length, 4);
      assert.ok(item.radios.every((r, j) => r.value === String(j) && r.name === item.radios[0].name && !r.checked && !r.disabled && r.labelled));
      assert.equal(item.result, null);
      assert.equal(item.feedback, null);
      assert.ok(item.describedBy, 'each fieldset is described by its feedback');
    });
    assert.equal(new Set(got.items.map((it) => it.radios[0].name)).size, 3, 'one radio group per question');
    assert.equal(got.imgs, 0, 'the greeting\'s HTML stays text');
    assert.equal(got.pwned, null);
    assert.equal(got.check, false, 'Check answers is enabled');
    assert.equal(got.stop, true, 'Stop is disabled once written');
    assert.equal(got.progress, null, 'no progress bar once written');
    assert.match(got.status, /3 questions/);

    // question 1: the right choice, by mouse; question 2: its second choice, by keyboard (Tab
    // into its group, Space, ↓); question 3: unanswered; then Enter on "Check answers"
    const answers = json.questions.map((q) => q.answer);
    await page.locator(`wisp-tutor fieldset[data-question="0"] label[data-choice="${answers[0]}"]`).click();
    await page.keyboard.press('Tab');
    await page.keyboard.press('Space');
    await page.keyboard.press('ArrowDown');
    got = await view(page);
    assert.deepEqual(got.items.map((it) => it.radios.findIndex((r) => r.checked)), [answers[0], 1, -1], 'the choices made');
    await page.locator('wisp-tutor button.check').press('Enter');
    got = await view(page);
    const second = answers[1] === 1;
    const score = 1 + (second ? 1 : 0);
    assert.equal(got.score, `Score: ${score} of 3.`);
    assert.deepEqual(await page.evaluate(() => window.scores), [{ score, total: 3, answers: [answers[0], 1, null] }]);
    assert.deepEqual(got.items.map((it) => it.result), ['correct', second ? 'correct' : 'incorrect', 'unanswered']);
    assert.deepEqual(got.items.map((it) => it.answerMarked), answers.map((a) => [a]), 'the right choice is marked in each question');
    assert.deepEqual(got.items.map((it) => it.wrongMarked), [[], second ? [] : [1], []]);
    const letter = (j) => 'ABCD'[j];
    assert.equal(got.items[0].feedback, `Correct: ${letter(answers[0])}.`);
    assert.equal(got.items[1].feedback, second ? 'Correct: B.' : `Not quite: you chose B; the answer is ${letter(answers[1])}.`);
    assert.equal(got.items[2].feedback, `Not answered: the answer is ${letter(answers[2])}.`);
    assert.ok(got.items.every((it) => it.radios.every((r) => r.disabled)), 'answers are locked once checked');
    assert.equal(got.check, true);
    assert.equal(got.retry, false, 'Try again is offered');
    assert.equal(got.active, 'retry', 'the focus moves to Try again');

    // Try again clears the marks and the answers
    await page.keyboard.press('Enter');
    got = await view(page);
    assert.equal(got.score, '');
    assert.ok(got.items.every((it) => it.result === null && it.feedback === null && !it.answerMarked.length && it.radios.every((r) => !r.checked && !r.disabled)));
    assert.equal(got.check, false);

    // New quiz, stopped while it is being written
    await page.locator('wisp-tutor button.new').click();
    await page.locator('wisp-tutor .status').filter({ hasText: 'Writing question 1 of 3' }).waitFor({ timeout: 60_000 });
    got = await view(page);
    assert.equal(got.items.length, 0, 'the old quiz is gone');
    assert.deepEqual(got.progress, { value: 0, max: 3 });
    assert.equal(got.stop, false);
    assert.equal(got.check, true);
    await page.locator('wisp-tutor button.stop').click();
    await page.waitForFunction(() => window.quizzes.length === 2, null, { timeout: 60_000 });
    const stopped = (await page.evaluate(() => window.quizzes))[1];
    assert.equal(stopped.questions, null);
    assert.match(stopped.error, /AbortError/);
    got = await view(page);
    assert.match(got.status, /Stopped/);
    assert.equal(got.items.length, 0);
    assert.equal(got.error, null, 'stopping is not an error');
    assert.equal(got.progress, null);
    assert.equal(got.stop, true);
    assert.equal(got.active, 'new', 'the focus moves from Stop to New quiz');
    assert.equal((await page.evaluate(() => window.posted)).length, 2);
    assert.deepEqual(got.violations, [], 'CSP violations');
  } catch (e) {
    throw new Error(`${e.message}\npage log:\n${logs.join('\n')}`);
  } finally {
    await page.close();
  }
});

test('mode="quiz" with a fake engine: HTML in questions and choices stays text, unusable replies are refused saying why, the questions attribute sets the schema', async () => {
  const { page, logs } = await open(browser.context, server.url + '/blank.html');
  try {
    await page.evaluate(() => {
      // a widget set up before the element is defined: the engine set on it carries over
      const early = document.createElement('wisp-tutor');
      early.setAttribute('mode', 'quiz');
      window.calls = [];
      window.replies = [];
      window.fake = {
        info: { backend: 'fake' },
        chat: {
          completions: {
            async create(req) {
              const { signal, ...rest } = req;
              window.calls.push(JSON.parse(JSON.stringify(rest)));
              const r = window.replies.shift();
              if (r instanceof Error) throw r;
              return (async function* () {
                for (const piece of r.pieces) {
                  await new Promise((ok) => setTimeout(ok, r.delay ?? 0));
                  if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
                  yield { choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] };
                }
                yield { choices: [{ index: 0, delta: {}, finish_reason: r.finish ?? 'stop' }] };
              })();
            },
          },
        },
      };
      early.engine = window.fake;
      window.early = early;
    });
    // one reply: HTML and markdown in every string, a raw line break in a choice, in small pieces
    const hostile = {
      questions: [
        { question: '<img src=x onerror="window.pwned=1"> Which <b>tag</b> is **bold**?', choices: ['<b>', '<script>window.pwned=2</script>', 'a &amp; b', 'line one\nline two'], answer: 0 },
        { question: 'Is 2 * 3 * 4 = 24?', choices: ['yes', 'no', '`maybe`', '<!-- x -->'], answer: 3 },
      ],
    };
    const text = JSON.stringify(hostile).replace('line one\\nline two', 'line one\nline two'); // a raw control character, as the grammar allows
    const shown = await page.evaluate(async (text) => {
      window.replies.push({ pieces: text.match(/[\s\S]{1,7}/g) });
      const got = new Promise((r) => window.early.addEventListener('quiz', (e) => r(e.detail), { once: true }));
      window.early.setAttribute('questions', '2');
      document.body.append(window.early);
      await import('/pkg/tutor.js');
      const detail = await got;
      return { questions: detail.questions, error: detail.error ? String(detail.error) : null, engine: window.early.engine === window.fake };
    }, text);
    assert.equal(shown.error, null);
    assert.ok(shown.engine, 'the engine set before the element was defined is used');
    assert.deepEqual(shown.questions, hostile.questions);
    let got = await view(page);
    assert.deepEqual(got.items.map((it) => it.question), hostile.questions.map((q) => q.question));
    assert.deepEqual(got.items.map((it) => it.choices), hostile.questions.map((q) => q.choices));
    assert.equal(got.imgs, 0, 'no <img> element');
    assert.equal(got.pwned, null, 'no handler or script ran');
    const elements = await page.evaluate(() => {
      const root = document.querySelector('wisp-tutor').shadowRoot;
      return [...root.querySelectorAll('.items *')].map((e) => e.localName).filter((n) => !['fieldset', 'legend', 'span', 'div', 'label', 'input', 'p'].includes(n));
    });
    assert.deepEqual(elements, [], 'no element from model text');
    let calls = await page.evaluate(() => window.calls);
    assert.deepEqual(calls[0].response_format.json_schema.schema, expectedSchema(2));
    assert.equal(calls[0].messages[1].content, 'Write a quiz of 2 different questions about general knowledge.');
    assert.equal(calls[0].temperature, 0.3, 'the default temperature');
    assert.equal(calls[0].stream, true);

    // Check answers with nothing chosen: every question unanswered, score 0
    await page.locator('wisp-tutor button.check').click();
    got = await view(page);
    assert.equal(got.score, 'Score: 0 of 2.');
    assert.deepEqual(got.items.map((it) => it.result), ['unanswered', 'unanswered']);
    assert.deepEqual(got.items.map((it) => it.answerMarked), [[0], [3]]);

    // replies that are not a usable quiz, each refused with its reason (and the reply, as text)
    const good = JSON.stringify({ questions: [{ question: 'q', choices: ['a', 'b', 'c', 'd'], answer: 1 }, { question: 'r', choices: ['a', 'b', 'c', 'd'], answer: 2 }] });
    const bad = [
      [{ pieces: [good.replace('"answer":2', '"answer":4')] }, /Question 2’s answer \(4\) is not one of its choices/],
      [{ pieces: [good.replace('"answer":1', '"answer":1.5')] }, /Question 1’s answer \(1\.5\) is not one of its choices/],
      [{ pieces: [good.slice(0, 40)], finish: 'length' }, /cut off before the quiz was complete/],
      [{ pieces: ['Sure! Here is a quiz: <img src=x onerror="window.pwned=3">'] }, /not valid JSON/],
      [{ pieces: [JSON.stringify({ questions: [{ question: 'q', choices: ['a', 'b', 'c', 'd'], answer: 1 }] })] }, /wrote 1 question, not 2/],
      [{ pieces: [good.replace('["a","b","c","d"]', '["a","b","c"]')] }, /Question 1 does not have four choices/],
      [{ pieces: [good.replace('"a","b","c","d"]', '"a","  ","c","d"]')] }, /Question 1 has an empty choice/],
      [{ pieces: [good.replace('"a","b","c","d"],"answer":2', '"a","b","c"," B "],"answer":2')] }, /Question 2 offers the same choice twice \(B and D\)/],
      [{ pieces: ['{"quiz": []}'] }, /has no list of questions/],
      [new Error('the engine broke'), /the quiz could not be written: the engine broke/],
    ];
    for (const [reply, why] of bad) {
      const detail = await page.evaluate(async (reply) => {
        window.replies.push(reply.message ? new Error(reply.message) : reply);
        const got = new Promise((r) => window.early.addEventListener('quiz', (e) => r(e.detail), { once: true }));
        window.early.shadowRoot.querySelector('button.new').click();
        const d = await got;
        return { questions: d.questions, error: String(d.error) };
      }, reply instanceof Error ? { message: reply.message } : reply);
      assert.equal(detail.questions, null);
      got = await view(page);
      assert.match(got.error, why, `${JSON.stringify(reply)} → ${got.error}`);
      assert.match(got.error, /Sorry/);
      assert.equal(got.items.length, 0, 'no quiz shown');
      assert.equal(got.check, true, 'nothing to check');
      assert.equal(got.imgs, 0);
      assert.equal(got.pwned, null);
      assert.equal(got.score, '');
    }
    // the error's alert role, and the model's reply shown as text in it
    const alert = await page.evaluate(() => {
      const box = document.querySelector('wisp-tutor').shadowRoot.querySelector('.error');
      return { role: box.getAttribute('role'), reply: box.querySelector('details') !== null };
    });
    assert.deepEqual(alert, { role: 'alert', reply: false }, 'an engine error has no reply to show');

    // the questions attribute: out of range is clamped to 10, not a number is the default 3
    for (const [attr, n] of [['25', 10], ['abc', 3], ['0', 3], ['1', 1]]) {
      await page.evaluate(async (attr) => {
        window.replies.push({ pieces: ['{"questions": []}'] });
        const got = new Promise((r) => window.early.addEventListener('quiz', (e) => r(e.detail), { once: true }));
        window.early.setAttribute('questions', attr);
        window.early.setAttribute('subject', 'fractions');
        window.early.setAttribute('temperature', '0.2');
        await window.early.newQuiz();
        await got;
      }, attr);
      calls = await page.evaluate(() => window.calls);
      const last = calls.at(-1);
      assert.deepEqual(last.response_format.json_schema.schema, expectedSchema(n), `questions="${attr}"`);
      assert.equal(last.messages[1].content, n === 1 ? 'Write a quiz of 1 question about fractions.' : `Write a quiz of ${n} different questions about fractions.`);
      assert.equal(last.temperature, 0.2);
    }

    // switching to mode="chat" lays out the chat, with no quiz
    const chat = await page.evaluate(() => {
      window.early.setAttribute('mode', 'chat');
      const root = window.early.shadowRoot;
      return { log: root.querySelectorAll('.log').length, quiz: root.querySelectorAll('.quiz').length, input: root.querySelector('input[name="q"]') !== null };
    });
    assert.deepEqual(chat, { log: 1, quiz: 0, input: true });

    // back to a quiz, and to the chat while it is being written: the chat is left alone
    const switched = await page.evaluate(async (good) => {
      window.replies.push({ pieces: good.match(/[\s\S]{1,3}/g), delay: 20 });
      const t = window.early;
      const root = t.shadowRoot;
      t.setAttribute('mode', 'quiz');
      await new Promise((ok) => setTimeout(ok, 200));
      const writing = root.querySelector('.status').textContent;
      const progress = root.querySelector('progress').hidden;
      t.setAttribute('mode', 'chat');
      await new Promise((ok) => setTimeout(ok, 1000));
      return { writing, progress, status: root.querySelector('.status').textContent, stop: root.querySelector('.stop').disabled, quiz: root.querySelectorAll('.quiz').length };
    }, good);
    assert.deepEqual(switched, { writing: 'Writing question 1 of 1…', progress: false, status: 'Ready (fake). Everything runs on this device.', stop: true, quiz: 0 });
    assert.deepEqual(await page.evaluate(() => window.violations), [], 'CSP violations');
  } catch (e) {
    throw new Error(`${e.message}\npage log:\n${logs.join('\n')}`);
  } finally {
    await page.close();
  }
});
