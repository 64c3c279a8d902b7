import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Config } from '../src/config/schema';
import type { PoolRegistry } from '../src/db/pools';
import { fingerprintOf, PipelineDriftError, type CallContext, type SyncEngine } from '../src/sync';
import { createTestDatabase, testConfig, type TestDatabase } from './helpers/db';
import { engineFor, runSync } from './helpers/engine';

// A pipeline is resolved once per engine call, and a run's plan carries a fingerprint of the
// config: a chunk or bucket whose worker has another config for the pipeline refuses to run.

describe('a run resolved once, and config drift between plan and steps', () => {
  let db: TestDatabase;
  const pools: PoolRegistry[] = [];
  let ctx: CallContext;
  const local = (table: string) => ({ profile: 'local', environment: 'test', table });
  const pipeline = (more: Record<string, unknown> = {}) => ({ source: local('src'), target: local('dst'), mode: 'upsert', key: ['id'], deletes: 'hard', batchRows: 500, ...more });
  const engines: Record<string, SyncEngine> = {};
  let lookups = 0;

  /** The config with its pipelines behind a proxy that counts reads of pipeline "p": each is one name lookup. */
  function counted(config: Config): Config {
    return { ...config, pipelines: new Proxy(config.pipelines, { get: (o, k) => ((k === 'p' && (lookups += 1)), Reflect.get(o, k)) }) };
  }

  function engine(name: string, more: Record<string, unknown> = {}) {
    const e = engineFor(counted(testConfig(db, { p: pipeline(more) })));
    pools.push(e.pools);
    ctx = e.ctx;
    return (engines[name] = e.engine);
  }

  before(async () => {
    db = await createTestDatabase('resolved');
    await db.client.query(`
      CREATE TABLE src (id int PRIMARY KEY, v text); INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 3000) g;
      CREATE TABLE dst (id int PRIMARY KEY, v text);
    `);
    engine('base');
    engine('tuned', { parallelism: 2, batchRows: 700, verify: 'checksums' });
    engine('drifted', { transform: { columns: { v: `upper(v)` } } });
    await runSync(engines.base!, ctx, 'p', 'first');
    await db.client.query(`UPDATE src SET v = v || '+' WHERE id % 50 = 1; DELETE FROM src WHERE id % 300 = 2`);
  });

  after(async () => {
    for (const p of pools) await p.end();
    await db.close();
  });

  test('a step given the resolved run looks nothing up; one given a name looks it up once', async () => {
    const e = engines.base!;
    lookups = 0;
    const run = e.resolve({ pipeline: 'p' });
    assert.equal(lookups, 1);
    const plan = await e.planVerify(ctx, { pipeline: 'p' }, run);
    await e.verifyBucket(ctx, { pipeline: 'p', mode: plan.mode, range: plan.buckets[0]!, leafRows: plan.leafRows, runCursor: plan.runCursor }, run);
    assert.equal(lookups, 1, 'planVerify and verifyBucket with the resolved run: no more lookups');
    await e.planVerify(ctx, { pipeline: 'p' });
    assert.equal(lookups, 2, 'by name: one lookup for the whole call');
  });

  test('the plan carries the fingerprint; tuning settings (parallelism, batchRows, verify) do not change it, a transform does', () => {
    const fp = engines.base!.resolve({ pipeline: 'p' }).fingerprint;
    assert.match(fp, /^[0-9a-f]{16}$/);
    assert.equal(engines.tuned!.resolve({ pipeline: 'p' }).fingerprint, fp);
    assert.notEqual(engines.drifted!.resolve({ pipeline: 'p' }).fingerprint, fp);
    assert.equal(fingerprintOf(engines.base!.resolve({ pipeline: 'p' }).pipeline), fp);
  });

  test('a re-sync bucket, a delete bucket, a chunk and a verify bucket planned under one config refuse to run under another, naming the pipeline', async () => {
    const drift = (err: unknown) => {
      assert.ok(err instanceof PipelineDriftError, String(err));
      assert.equal(err.type, 'LakebaseConfigError');
      assert.match(err.message, /^pipelines\.p: its config changed since this run was planned \(fingerprint [0-9a-f]{16} then, [0-9a-f]{16} on this worker\)/);
      return true;
    };
    // verify plans only between runs: first.
    const v = await engines.base!.planVerify(ctx, { pipeline: 'p' });
    await assert.rejects(engines.drifted!.verifyBucket(ctx, { pipeline: 'p', mode: v.mode, range: v.buckets[0]!, leafRows: v.leafRows, runCursor: v.runCursor, fingerprint: v.fingerprint }), drift);
    const plan = await engines.base!.plan(ctx, { pipeline: 'p', runId: 'drift', partitioned: true, compare: true });
    assert.equal(plan.resync?.method, 'compare');
    assert.equal(plan.fingerprint, engines.base!.resolve({ pipeline: 'p' }).fingerprint);
    const { leafRows, digests, groupRows } = plan.resync!;
    const bucket = { pipeline: 'p', runId: 'drift', bucket: 0, leafRows, digests, groupRows, fingerprint: plan.fingerprint };
    await assert.rejects(engines.drifted!.resyncBucket(ctx, bucket), drift);
    // Nothing was written by the refused bucket; the same bucket under a tuned config goes on.
    assert.equal((await engines.tuned!.resyncBucket(ctx, bucket)).alreadyCommitted, false);
    await assert.rejects(engines.drifted!.chunk(ctx, { pipeline: 'p', runId: 'drift', after: null, partition: 0, fingerprint: plan.fingerprint }), drift);
    await assert.rejects(engines.drifted!.deleteBucket(ctx, { pipeline: 'p', runId: 'drift', bucket: 0, leafRows, fingerprint: plan.fingerprint }), drift);
    await assert.rejects(engines.drifted!.planDeletes(ctx, { pipeline: 'p', runId: 'drift', fingerprint: plan.fingerprint }), drift);
    await assert.rejects(engines.drifted!.finish(ctx, { pipeline: 'p', runId: 'drift', fingerprint: plan.fingerprint }), drift);
    // A run continued as new re-plans: under another config it stops there too.
    await assert.rejects(engines.drifted!.plan(ctx, { pipeline: 'p', runId: 'drift', partitioned: true, compare: true, continuing: true, fingerprint: plan.fingerprint }), drift);
    // A step without a fingerprint (planned by an older worker) goes on.
    for (const b of plan.resync!.buckets.slice(1)) await engines.drifted!.resyncBucket(ctx, { ...bucket, bucket: b.bucket, fingerprint: undefined });
  });
});
