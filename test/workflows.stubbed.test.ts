import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../src/activities';
import type { ChunkResult, JobPlan, LakebaseTokenInfo, SyncChunkInput, SyncPlan } from '../src/activities/types';
import { workflowBundle } from '../src/worker';
import type { DataSyncInput, OperationalJobInput } from '../src/workflows';
import { startTemporal, uniqueQueue } from './helpers/temporal';

// Workflow branches that otherwise need the whole stack and long sleeps, on the real dev server
// with the activities replaced by small functions: the workflow code is the real one.

const token: LakebaseTokenInfo = { profile: 'p', environment: 'e', identity: 'i', expiresAt: new Date(0).toISOString(), fingerprint: 'sha256:x', workerTokenRequests: 1 };
const plan = (over: Partial<SyncPlan> = {}): SyncPlan => ({
  pipeline: 'p', mode: 'upsert', chunkRows: 10, order: ['id'], source: { profile: 'p', environment: 'e', relation: 's' }, target: { profile: 'p', environment: 'e', table: 't' },
  startCursor: null, resumed: false, estimatedRows: 20, initialLoad: false, partitions: [{ partition: 0, cursor: null, done: false }], parallelism: 1, ...over,
});
const chunk = (over: Partial<ChunkResult> = {}): ChunkResult => ({ cursor: ['10'], rowsCopied: 10, rowsWritten: 10, bytes: 100, done: true, alreadyCommitted: false, ...over });

describe('workflow branches with stubbed activities (real Temporal dev server)', () => {
  let env: TestWorkflowEnvironment;

  before(async () => {
    env = await startTemporal();
  });

  after(async () => {
    await env?.teardown();
  });

  async function withStubs<R>(activities: Partial<Activities>, fn: (taskQueue: string) => Promise<R>): Promise<R> {
    const taskQueue = uniqueQueue('stubbed');
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities });
    return worker.runUntil(fn(taskQueue));
  }

  const failureOf = async (p: Promise<unknown>) => {
    const err = await p.then(() => assert.fail('the workflow should fail'), (e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError);
    let cause: unknown = err.cause;
    while (cause instanceof Error && !(cause instanceof ApplicationFailure) && cause.cause) cause = cause.cause;
    assert.ok(cause instanceof ApplicationFailure, String(cause));
    return cause;
  };

  test('TOKEN_EXPIRED with nobody logging in again: the sync waits reloginTimeout, then fails non-retryably with the fix', async () => {
    const failure = await withStubs(
      {
        planSync: async () => plan(),
        acquireLakebaseToken: async () => token,
        syncChunk: async () => {
          throw ApplicationFailure.create({ type: 'LakebaseTokenExpired', nonRetryable: true, message: 'Failed to process token: TOKEN_EXPIRED' });
        },
      },
      async (taskQueue) => {
        const h = await env.client.workflow.start('dataSync', { taskQueue, workflowId: `stub-relogin-${Date.now()}`, args: [{ pipeline: 'p', reloginTimeout: '2 seconds' } satisfies DataSyncInput] });
        for (let p = await h.query<{ waitingForRelogin: boolean }>('progress').catch(() => undefined); !p?.waitingForRelogin; p = await h.query<{ waitingForRelogin: boolean }>('progress').catch(() => undefined))
          await new Promise((r) => setTimeout(r, 50));
        return failureOf(h.result());
      },
    );
    assert.equal(failure.type, 'LakebaseTokenExpired');
    assert.equal(failure.nonRetryable, true);
    assert.match(failure.message, /no fresh IdP token arrived within 2 seconds after TOKEN_EXPIRED; start the sync again after logging in/);
  });

  test('an initial-load conflict in one partition redoes that chunk as a merge; the other partition keeps loading', async () => {
    const calls: SyncChunkInput[] = [];
    const result = await withStubs(
      {
        planSync: async () => plan({ initialLoad: true, parallelism: 2, partitions: [{ partition: 0, cursor: null, done: false }, { partition: 1, cursor: null, done: false }] }),
        acquireLakebaseToken: async () => token,
        syncChunk: async (input: SyncChunkInput) => {
          calls.push(input);
          if (input.partition === 0 && input.initialLoad)
            throw ApplicationFailure.create({ type: 'LakebaseInitialLoadConflict', nonRetryable: true, message: 'a key already exists' });
          return chunk();
        },
        finishSync: async () => ({ rowsInTarget: 20 }),
      },
      async (taskQueue) => (await env.client.workflow.start('dataSync', { taskQueue, workflowId: `stub-conflict-${Date.now()}`, args: [{ pipeline: 'p' } satisfies DataSyncInput] })).result(),
    );
    assert.equal(result.done, true);
    assert.equal(result.rowsCopied, 20);
    const p0 = calls.filter((c) => c.partition === 0).map((c) => c.initialLoad);
    const p1 = calls.filter((c) => c.partition === 1).map((c) => c.initialLoad);
    assert.deepEqual(p0, [true, false], 'partition 0: the conflicting chunk again, as a merge');
    assert.deepEqual(p1, [true], 'partition 1 went on loading directly');
  });

  test('a job nobody approves fails after approvalTimeout as LakebaseJobNotApproved, running no write', async () => {
    let ran = 0;
    const jobPlan: JobPlan = {
      job: 'j', profile: 'p', environment: 'e', params: {}, approval: true,
      units: [{ steps: [{ name: 'write', kind: 'write', timeout: '1 minute', retry: {} }] }],
    };
    const failure = await withStubs(
      {
        planJob: async () => jobPlan,
        runJobUnit: async () => {
          ran++;
          return [];
        },
      },
      async (taskQueue) =>
        failureOf((await env.client.workflow.start('operationalJob', { taskQueue, workflowId: `stub-approval-${Date.now()}`, args: [{ job: 'j', params: {}, approvalTimeout: '2 seconds' } satisfies OperationalJobInput] })).result()),
    );
    assert.equal(failure.type, 'LakebaseJobNotApproved');
    assert.match(failure.message, /no approval within 2 seconds/);
    assert.equal(ran, 0);
  });
});
