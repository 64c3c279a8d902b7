import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../src/worker';

// Workflows are long-lived: runs started by an earlier release must replay on this code. The
// histories were recorded from each release by scripts/record-histories.ts; a workflow change
// that alters their commands without patched() fails here with a nondeterminism error.

const ROOT = path.join(__dirname, 'replay', 'histories');

async function recorded(): Promise<{ release: string; name: string; file: string }[]> {
  const out: { release: string; name: string; file: string }[] = [];
  for (const release of (await readdir(ROOT)).sort())
    for (const f of (await readdir(path.join(ROOT, release))).filter((x) => x.endsWith('.json')).sort())
      out.push({ release, name: f.replace(/\.json$/, ''), file: path.join(ROOT, release, f) });
  return out;
}

describe('replay of histories recorded from earlier releases', () => {
  test('every recorded history replays on the current workflow code', async () => {
    const files = await recorded();
    assert.ok(files.length >= 10, `found ${files.length} recorded histories`);
    // v4: recorded after workflows became named steps over one run state (issue 20).
    // v5: LakebaseRowsWritten kept by compare-then-copy and delete buckets too (FIGURES_PATCH, issue 26).
    for (const release of ['v1', 'v2', 'v3', 'v4', 'v5']) assert.ok(files.some((f) => f.release === release), `no histories of ${release}`);
    // The kinds the issue asks for are there: continue-as-new, a sync group, a job awaiting approval.
    // v7: a join that ends a running cdc segment (patch cdc-join-ends-segment).
    for (const kind of ['dataSync-continue-as-new-run1', 'syncGroup', 'operationalJob-awaiting-approval', 'cdcStream-run1', 'cdcStream-join-ends-segment'])
      assert.ok(files.some((f) => f.name === kind), `missing ${kind}`);
    // Read with @temporalio/proto's own classes (the files are their JSON form): historyFromJSON
    // trips over the second protobufjs copy that @temporalio/common carries in this install.
    const histories = await Promise.all(
      files.map(async (f) => {
        const { workflowId, history } = JSON.parse(await readFile(f.file, 'utf8')) as { workflowId: string; history: object };
        return { workflowId, history: temporal.api.history.v1.History.fromObject(history) };
      }),
    );
    const bundle = await workflowBundle();
    const failures: string[] = [];
    let replayed = 0;
    for await (const r of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'release-replay' }, histories)) {
      replayed++;
      if (r.error) failures.push(`${r.workflowId}: ${r.error.name}: ${r.error.message}`);
    }
    assert.equal(replayed, histories.length);
    assert.deepEqual(failures, []);
  });
});
