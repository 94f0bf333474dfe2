// `npm pack` of pkg/ gives a tarball with the wrapper, the types, the worker, the tutor widget
// with its renderer and types, and the built wasm; its package.json points `exports`/`types` at
// files that are in it, and installed from the tarball, `wisp-llm` and `wisp-llm/tutor` resolve.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { root, installPacked } from './harness.mjs';

test('npm pack contains every file the package.json exports', () => {
  const dir = path.join(root, 'pkg');
  const [info] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--silent'], { cwd: dir, encoding: 'utf8' }));
  const files = info.files.map((f) => f.path);
  const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const wanted = [pj.types, pj.main, ...Object.values(pj.exports).flatMap((v) => (typeof v === 'string' ? [v] : Object.values(v)))]
    .map((f) => f.replace(/^\.\//, ''));
  const builds = ['generated/wisp.js', 'generated/wisp_bg.wasm', 'generated/relaxed/wisp.js', 'generated/relaxed/wisp_bg.wasm',
    'generated/threads/wisp.js', 'generated/threads/wisp_bg.wasm', 'thread.js'];
  const widget = ['tutor.js', 'tutor.d.ts', 'render.js', 'render.d.ts'];
  for (const f of [...wanted, ...builds, ...widget, 'worker-client.js']) {
    assert.ok(files.includes(f), `${f} missing from the tarball (has ${files.join(', ')})`);
  }
  // the tutor and its renderer are exported, with their types
  assert.deepEqual(pj.exports['./tutor'], { types: './tutor.d.ts', default: './tutor.js' });
  assert.deepEqual(pj.exports['./render'], { types: './render.d.ts', default: './render.js' });
  // importing the tutor defines <wisp-tutor>: a bundler must not drop `import 'wisp-llm/tutor'`
  assert.ok(Array.isArray(pj.sideEffects) && pj.sideEffects.includes('./tutor.js'), `sideEffects: ${JSON.stringify(pj.sideEffects)}`);
  // every relative import of the shipped JS and types resolves inside the tarball
  for (const f of files.filter((x) => /\.(js|d\.ts)$/.test(x) && !x.startsWith('generated/'))) {
    const src = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const [, spec] of src.matchAll(/(?:from |import\()'(\.[^']+)'/g)) {
      const target = path.normalize(path.join(path.dirname(f), spec));
      assert.ok(files.includes(target), `${f} imports ${spec}, not in the tarball`);
    }
  }
});

test("installed from the tarball, 'wisp-llm', 'wisp-llm/tutor' and 'wisp-llm/render' resolve to the shipped files", () => {
  const pack = installPacked();
  try {
    // resolved from inside the installing project, as its code (or a bundler following Node's
    // rules) would: the `exports` map, the default and the types conditions
    const resolver = path.join(pack.project, 'resolve.mjs');
    fs.writeFileSync(resolver, `console.log(JSON.stringify(['wisp-llm', 'wisp-llm/tutor', 'wisp-llm/render', 'wisp-llm/worker.js']
      .map((s) => import.meta.resolve(s))));`);
    const urls = JSON.parse(execFileSync(process.execPath, [resolver], { cwd: pack.project, encoding: 'utf8' }));
    const real = (f) => fs.realpathSync(path.join(pack.installed, f));
    assert.deepEqual(urls.map((u) => fs.realpathSync(new URL(u))), ['index.js', 'tutor.js', 'render.js', 'worker.js'].map(real));
    // TypeScript's resolution under "moduleResolution": "bundler" reads the types condition
    const pj = JSON.parse(fs.readFileSync(path.join(pack.installed, 'package.json'), 'utf8'));
    for (const [sub, types] of [['./tutor', 'tutor.d.ts'], ['./render', 'render.d.ts'], ['.', 'index.d.ts']]) {
      assert.equal(pj.exports[sub].types, `./${types}`);
      assert.ok(fs.statSync(path.join(pack.installed, types)).size > 0, `${types} installed`);
    }
    // the tutor's module is the widget, importing the package's own engine and renderer
    const tutor = fs.readFileSync(real('tutor.js'), 'utf8');
    assert.match(tutor, /customElements\.define\('wisp-tutor'/);
    assert.match(tutor, /from '\.\/index\.js'/);
    assert.match(tutor, /from '\.\/render\.js'/);
    assert.match(fs.readFileSync(real('tutor.d.ts'), 'utf8'), /'wisp-tutor': WispTutor/);
  } finally {
    pack.cleanup();
  }
});
