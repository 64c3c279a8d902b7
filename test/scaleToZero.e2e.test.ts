import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCredentialProvider } from '../src/auth/credentials';
import { toActivityFailure } from '../src/activities/failures';
import { parseConfig } from '../src/config/load';
import { LakebaseComputeWaking } from '../src/db/computeWake';
import { createPoolRegistry } from '../src/db/pools';
import { LakebaseEmulator } from '../src/emulator';
import { createLogger } from '../src/logger';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';
import { cleanUp } from './helpers/cleanup';

const logger = createLogger({ level: 'silent' });

describe('scale to zero: a suspended compute woken by the first connection (emulator in front of PostgreSQL)', () => {
  let db: TestDatabase;
  const emulators: LakebaseEmulator[] = [];

  before(async () => {
    db = await createTestDatabase('s2z');
  });
  after(() =>
    cleanUp(
      () => Promise.all(emulators.map((e) => e.stop())),
      () => db?.close(),
    ),
  );

  async function setup(wakeDelayMs: number, computeWakeTimeoutMs: number) {
    const emu = await new LakebaseEmulator({ upstream: ADMIN_URL, passwordRoles: [{ role: 'app', password: 'pw' }], scaleToZero: { wakeDelayMs } }).start();
    emulators.push(emu);
    const config = parseConfig({
      profiles: {
        p: {
          auth: { method: 'password', password: 'pw' },
          environments: { test: { host: emu.postgres.host, port: emu.postgres.port, database: db.name, user: 'app', ssl: { mode: 'disable' }, computeWakeTimeoutMs } },
        },
      },
    }, {});
    return { emu, pools: createPoolRegistry({ config, credentials: createCredentialProvider({ config, logger }), logger }) };
  }

  test('the first connect meets 57P03 while the compute wakes, retries with short backoff and gets in', async () => {
    const { emu, pools } = await setup(400, 10_000);
    try {
      assert.equal(emu.compute.state, 'suspended');
      const t0 = Date.now();
      const c = await pools.connect('p', 'test');
      try {
        assert.equal((await c.query('SELECT current_database() AS d')).rows[0].d, db.name);
      } finally {
        c.release();
      }
      const took = Date.now() - t0;
      assert.ok(took >= 400 && took < 3000, `woke in ${took} ms`);
      assert.equal(emu.compute.wakes, 1);
      assert.ok(emu.compute.refusedWhileWaking >= 2, 'several attempts met the waking compute');

      // Suspended again (idle timeout): the next connection wakes it again.
      emu.suspendCompute();
      await sleep(100); // let the pool notice its idle connection was closed
      const c2 = await pools.connect('p', 'test');
      c2.release();
      assert.equal(emu.compute.wakes, 2);
    } finally {
      await pools.end();
    }
  });

  test('a compute that does not wake within computeWakeTimeoutMs: LakebaseComputeWaking, retryable, with the fix', async () => {
    const { emu, pools } = await setup(60_000, 700);
    try {
      const t0 = Date.now();
      const err = await pools.connect('p', 'test').then(() => assert.fail('connected to a suspended compute'), (e: unknown) => e);
      assert.ok(err instanceof LakebaseComputeWaking, String(err));
      assert.ok(Date.now() - t0 < 2000, 'the wait is bounded');
      assert.match(err.message, /^p\/test: the compute did not accept connections within \d+ ms \(\d+ attempts\).*computeWakeTimeoutMs.*; last error: .*starting up/);
      const failure = toActivityFailure(err, 'connect');
      assert.equal(failure.type, 'LakebaseComputeWaking');
      assert.equal(failure.nonRetryable, false);
      assert.equal(emu.compute.state, 'waking');
    } finally {
      await pools.end();
    }
  });
});
