import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../src/activities';
import type { CdcStreamResult } from '../src/activities/cdc';
import type { SyncPlan } from '../src/activities/types';
import type { CdcStatus } from '../src/sync/cdc';
import { workflowBundle } from '../src/worker';
import type { CdcProgress, CdcStreamInput } from '../src/workflows/cdcStream';
import { startTemporal, uniqueQueue } from './helpers/temporal';

// The cdcStream workflow (the real one) on a real dev server, its activities replaced by small
// functions: a copy that cannot succeed parks its pipeline instead of failing the slot's workflow.

const status = (pipeline: string): CdcStatus => ({
  pipeline, slot: 's', publication: 'p', phase: 'streaming', slotExists: true, slotActive: true, startLsn: '0/1', appliedLsn: '0/2', confirmedLsn: '0/2', currentLsn: '0/2',
  lagBytes: 0, lagSeconds: 0, retainedWalBytes: 0, rowsApplied: 0, batches: 0, warnings: [],
});
const plan = (pipeline: string): SyncPlan => ({
  pipeline, mode: 'upsert', chunkRows: 10, order: ['id'], source: { profile: 'p', environment: 'e', relation: 's' }, target: { profile: 'p', environment: 'e', table: 't' },
  startCursor: null, resumed: false, estimatedRows: 0, initialLoad: true, partitions: [], parallelism: 1,
});

describe('cdcStream workflow: a copy that cannot succeed parks its pipeline (stubbed activities)', () => {
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await startTemporal();
  });
  after(async () => {
    await env?.teardown();
  });

  test('the failing pipeline is parked (cdcPark with its failure), the other keeps streaming, and stops end the workflow', async () => {
    const parked: { pipeline: string; type: string; reason: string }[] = [];
    let segments = 0;
    const activities: Partial<Activities> = {
      cdcJoin: async ({ pipeline }) => ({ pipeline, slot: 's', publication: 'p', phase: 'snapshot', startLsn: '0/1', createdSlot: false, createdPublication: false }),
      cdcPlanLoad: async ({ pipeline }) => {
        if (pipeline === 'bad') throw ApplicationFailure.create({ type: 'LakebaseDataError', nonRetryable: true, message: 'invalid input syntax for type integer: "w1"' });
        return plan(pipeline);
      },
      cdcFinishLoad: async () => ({ rowsWritten: 0 }) as never,
      cdcLeave: async () => ({ slotDropped: false, stillUsedBy: [] }),
      cdcPark: async (input) => void parked.push(input),
      cdcStream: async ({ pipeline }): Promise<CdcStreamResult> => {
        segments++;
        await new Promise((r) => setTimeout(r, 200));
        return { progress: { appliedLsn: '0/2', confirmedLsn: '0/2', receivedLsn: '0/2', lastCommitTime: null, rowsApplied: 0, changesReceived: 0, batches: 0, rowsPerSecond: 0 }, status: status(pipeline) };
      },
    };
    const taskQueue = uniqueQueue('cdc-park');
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities });
    await worker.runUntil(async () => {
      const h = await env.client.workflow.start('cdcStream', { taskQueue, workflowId: `cdc-park-${Date.now()}`, args: [{ slot: 's', pipelines: ['good', 'bad'], runSeconds: 1 } satisfies CdcStreamInput] });
      const deadline = Date.now() + 30_000;
      let p = await h.query<CdcProgress>('progress');
      while (!(p.pipelines.bad === 'parked' && p.pipelines.good === 'streaming' && p.segments >= 2)) {
        assert.ok(Date.now() < deadline, `still ${JSON.stringify(p.pipelines)} after 30 s`);
        await new Promise((r) => setTimeout(r, 100));
        p = await h.query<CdcProgress>('progress');
      }
      assert.deepEqual(parked, [{ pipeline: 'bad', type: 'LakebaseDataError', reason: 'invalid input syntax for type integer: "w1"' }]);
      assert.ok(segments >= 2);
      await h.signal('cdcStop', { pipeline: 'bad', dropSlot: false });
      await h.signal('cdcStop', { pipeline: 'good', dropSlot: false });
      const done = await h.result();
      assert.equal(done.stopped, true);
    });
  });
});
