import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';

const run = promisify(execFile);

test('the demo runs on a machine with nothing but Node: embedded PostgreSQL, emulator, dev server; a second sync deletes and changes what the source did; verify passes', async () => {
  const cli = path.join(__dirname, '..', 'bin', 'lakebase-worker.js');
  const { stdout } = await run(process.execPath, [cli, 'demo', '--exit', '--embedded-postgres', '--rows', '5000'], { timeout: 300_000 });
  assert.match(stdout, /PostgreSQL: embedded/);
  assert.match(stdout, /Synced 5,000 rows/);
  assert.match(stdout, /Token economy: 1 OAuth token request\(s\)/);
  assert.match(stdout, /verify orders-to-reporting \(checksums\): source and target match — source 5,000 rows, target 5,000/);
  assert.match(stdout, /Deleted 50 and changed 50 source orders/);
  assert.match(stdout, /Second sync by compare-then-copy \(\w+\): 50 rows written \(the rest unchanged\), 50 deleted/);
  assert.match(stdout, /^verify orders-to-reporting \(checksums\): source and target match — source 4,950 rows, target 4,950/m);
  assert.match(stdout, /^verified: target matches source$/m);
  assert.match(stdout, /Temporal UI: http:\/\/localhost:\d+\/namespaces\/default\/workflows\/sync%3Aorders-to-reporting/);
});
