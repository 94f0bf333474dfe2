// `npm pack` of pkg/ gives a tarball with the wrapper, the types, the worker and the built wasm,
// and its package.json points `exports`/`types` at files that are in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { root } from './harness.mjs';

test('npm pack contains every file the package.json exports', () => {
  const dir = path.join(root, 'pkg');
  const [info] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--silent'], { cwd: dir, encoding: 'utf8' }));
  const files = info.files.map((f) => f.path);
  const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const wanted = [pj.types, pj.main, ...Object.values(pj.exports).flatMap((v) => (typeof v === 'string' ? [v] : Object.values(v)))]
    .map((f) => f.replace(/^\.\//, ''));
  const builds = ['generated/wisp.js', 'generated/wisp_bg.wasm', 'generated/relaxed/wisp.js', 'generated/relaxed/wisp_bg.wasm'];
  for (const f of [...wanted, ...builds, 'worker-client.js']) {
    assert.ok(files.includes(f), `${f} missing from the tarball (has ${files.join(', ')})`);
  }
  // every relative import of the shipped JS resolves inside the tarball
  for (const f of files.filter((x) => x.endsWith('.js') && !x.startsWith('generated/'))) {
    const src = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const [, spec] of src.matchAll(/(?:from |import\()'(\.[^']+)'/g)) {
      const target = path.normalize(path.join(path.dirname(f), spec));
      assert.ok(files.includes(target), `${f} imports ${spec}, not in the tarball`);
    }
  }
});
