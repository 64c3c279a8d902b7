#!/usr/bin/env node
'use strict';
// The package's `prepare` script (npm ci and npm install run it): compiles src/ to dist/ so the
// CLI starts without compiling TypeScript on every call. Plain JavaScript on purpose: it runs
// before anything is built. Without TypeScript (a production install) or on a type error the CLI
// still works, from the sources through tsx, so neither fails the install.
const { spawnSync } = require('node:child_process');
const { rmSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist');
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
} catch {
  console.log('lakebase-worker: TypeScript is not installed; the CLI will run from src/ through tsx.');
  process.exit(0);
}
rmSync(dist, { recursive: true, force: true });
const started = Date.now();
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
if (r.status !== 0) {
  rmSync(dist, { recursive: true, force: true });
  console.warn('lakebase-worker: compiling src/ failed (above); the CLI will run from src/ through tsx.');
  process.exit(0);
}
// The CLI compares this stamp with the sources' times: an edited checkout falls back to tsx.
writeFileSync(path.join(dist, '.built'), new Date().toISOString() + '\n');
console.log(`lakebase-worker: compiled src/ to dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
