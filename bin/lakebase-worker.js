#!/usr/bin/env node
'use strict';
// Runs the compiled CLI (dist/, built by `npm ci` through the prepare script) when it is at least
// as new as every source file; otherwise the TypeScript sources through tsx, so an edited checkout
// never runs stale code. LAKEBASE_WORKER_FROM_SOURCE=1 forces the sources, =0 the compiled code when
// it exists (a compiled worker's bundling child must bundle the code its parent runs).
const { readdirSync, statSync } = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const ENTRY = 'cli/main';

function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function compiledIsFresh() {
  if (process.env.LAKEBASE_WORKER_FROM_SOURCE === '1') return false;
  try {
    if (process.env.LAKEBASE_WORKER_FROM_SOURCE === '0') return statSync(path.join(ROOT, 'dist', `${ENTRY}.js`)).isFile();
    return statSync(path.join(ROOT, 'dist', '.built')).mtimeMs >= newestSource(path.join(ROOT, 'src'));
  } catch {
    return false;
  }
}

const compiled = compiledIsFresh();
// Node 22+ keeps V8's compiled code of every loaded module between runs: a command then skips
// compiling the Temporal SDK and its protobufs again. Where the directory cannot be written (the
// image's read-only root; it is filled when the image is built) Node just runs without it.
const { enableCompileCache } = require('node:module');
if (compiled && typeof enableCompileCache === 'function' && process.env.NODE_COMPILE_CACHE === undefined) {
  const cache = process.env.LAKEBASE_WORKER_CACHE || path.join(require('node:os').homedir(), '.cache', 'lakebase-worker');
  enableCompileCache(path.join(cache, 'node-compile-cache'));
}
if (process.env.LAKEBASE_WORKER_TRACE_ENTRY === '1') console.error(`lakebase-worker: running ${compiled ? 'dist' : 'src'}/${ENTRY}`);
if (compiled) require(path.join(ROOT, 'dist', `${ENTRY}.js`));
else {
  require('tsx/cjs');
  require(path.join(ROOT, 'src', `${ENTRY}.ts`));
}
