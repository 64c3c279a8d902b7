import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';

const run = promisify(execFile);

test('the demo runs on a machine with nothing but Node: embedded PostgreSQL, emulator, dev server; checksums equal', async () => {
  const cli = path.join(__dirname, '..', 'bin', 'lakebase-worker.js');
  const { stdout } = await run(process.execPath, [cli, 'demo', '--exit', '--embedded-postgres', '--rows', '5000'], { timeout: 300_000 });
  assert.match(stdout, /PostgreSQL: embedded/);
  assert.match(stdout, /Synced 5,000 rows/);
  assert.match(stdout, /Token economy: 1 OAuth token request\(s\)/);
  const source = /^source: (\d+) rows, checksum ([0-9a-f]{32})$/m.exec(stdout);
  const target = /^target: (\d+) rows, checksum ([0-9a-f]{32})$/m.exec(stdout);
  assert.ok(source && target, stdout);
  assert.deepEqual(target.slice(1), source.slice(1));
  assert.equal(source[1], '5000');
  assert.match(stdout, /Temporal UI: http:\/\/localhost:\d+\/namespaces\/default\/workflows\/sync%3Aorders-to-reporting/);
});
