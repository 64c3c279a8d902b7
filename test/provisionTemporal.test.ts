// The Temporal CLI's provisioning order: the SDK's download first (bounded), then the Go build.
// Here the download cannot answer (its host is pointed at a closed port, as on a machine without
// internet), so the Go build must follow within seconds. A stand-in `go` on PATH records its call
// and writes a script where `go install` would put the CLI: nothing is really built.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../src/provision/postgres';
import { findTemporalCli, TEMPORAL_CLI_VERSION } from '../src/provision/temporal';

describe('findTemporalCli: the SDK download first, then the Go build', () => {
  let dir: string;
  const saved = { ...process.env };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-provision-'));
    await writeFile(
      path.join(dir, 'go'),
      '#!/bin/sh\necho "$@" > "$GO_CALLS"\nprintf \'#!/bin/sh\\necho stand-in temporal\\n\' > "$GOBIN/temporal"\nchmod +x "$GOBIN/temporal"\n',
    );
    await chmod(path.join(dir, 'go'), 0o755);
  });

  after(async () => {
    process.env = saved;
    await rm(dir, { recursive: true, force: true });
  });

  test('the download cannot answer: it gives up in seconds, says why, and the pinned CLI is built with Go into the cache', { timeout: 60_000 }, async () => {
    delete process.env.TEMPORAL_CLI;
    process.env.LAKEBASE_WORKER_CACHE = path.join(dir, 'cache');
    process.env.LAKEBASE_TEMPORAL_DOWNLOAD_URL = `http://127.0.0.1:${await freePort()}/`;
    process.env.GO_CALLS = path.join(dir, 'go-calls');
    // No `temporal` on PATH; the stand-in `go` comes first.
    process.env.PATH = `${dir}:/usr/bin:/bin`;
    const said: string[] = [];
    const t0 = Date.now();
    const cli = await findTemporalCli((m) => said.push(m));
    assert.ok(Date.now() - t0 < 15_000, `gave up on the download in seconds (${Date.now() - t0} ms)`);
    assert.equal(cli, path.join(dir, 'cache', 'bin', 'temporal'));
    assert.equal((await readFile(process.env.GO_CALLS, 'utf8')).trim(), `install github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`);
    const text = said.join('\n');
    assert.match(text, /trying the Temporal SDK's dev-server download/);
    assert.match(text, /The SDK's download is not available \(http:\/\/127\.0\.0\.1:\d+\/ cannot be reached \(ECONNREFUSED\)\): building the Temporal CLI v[\d.]+ with Go/);
    assert.match(text, /Temporal CLI: built with Go in \d+ s: .*cache\/bin\/temporal/);
    // Once built, the cache answers without another download attempt or build.
    said.length = 0;
    await rm(process.env.GO_CALLS);
    assert.equal(await findTemporalCli((m) => said.push(m)), cli);
    assert.deepEqual(said, []);
  });
});
