import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createJobActivities } from '../src/activities/jobs';
import { parseConfig } from '../src/config/load';
import { createLogger } from '../src/logger';
import { freePort } from '../src/provision/postgres';
import { buildDeps } from '../src/worker';

// pgvector for tests: Debian bookworm has no pgvector package for PostgreSQL 15, so this runs the
// real engine PGlite (PostgreSQL compiled to WASM, with the pgvector extension) served over the
// wire protocol by @electric-sql/pglite-socket. It accepts one connection at a time, so pools use one.
describe('pgvector: a job step runs a nearest-neighbour query (PGlite with the vector extension)', () => {
  let stop: () => Promise<void>;
  let port: number;
  const logger = createLogger({ level: 'silent' });

  before(async () => {
    const { PGlite } = await import('@electric-sql/pglite');
    const { vector } = await import('@electric-sql/pglite-pgvector');
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
    const db = await PGlite.create({ extensions: { vector } });
    await db.exec(`
      CREATE EXTENSION vector;
      CREATE TABLE docs (id int PRIMARY KEY, title text, embedding vector(3));
      INSERT INTO docs SELECT g, 'doc ' || g, ('[' || cos(g) || ',' || sin(g) || ',' || (g / 100.0) || ']')::vector FROM generate_series(1, 100) g;
    `);
    port = await freePort();
    const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1' });
    await server.start();
    stop = async () => {
      await server.stop();
      await db.close();
    };
  });

  after(async () => stop?.());

  const config = () =>
    parseConfig({
      profiles: { vec: { auth: { method: 'pat', token: 'unused' }, environments: { local: { host: '127.0.0.1', port, database: 'postgres', user: 'postgres', ssl: { mode: 'disable' }, poolMax: 1 } } } },
      jobs: {
        similar: {
          profile: 'vec',
          environment: 'local',
          params: { q: { type: 'text', pattern: '\\[[-0-9., e]+\\]' }, k: { type: 'integer', min: 1, max: 50 } },
          steps: [{ name: 'nearest', kind: 'read', sql: 'SELECT id, title, round((embedding <-> :q::vector)::numeric, 4) AS distance FROM docs ORDER BY embedding <-> :q::vector LIMIT :k::int' }],
        },
      },
    }, {});

  test('ORDER BY embedding <-> $1 LIMIT k returns the nearest rows, parameters bound', async () => {
    const cfg = config();
    const deps = buildDeps({ config: cfg, logger });
    try {
      const jobs = createJobActivities(deps);
      const plan = await jobs.planJob({ job: 'similar', params: { q: `[${Math.cos(42)},${Math.sin(42)},0.42]`, k: 3 } });
      const [out] = await jobs.runJobUnit({ job: 'similar', environment: 'local', params: plan.params, steps: ['nearest'], outputs: {} });
      assert.equal(out!.rows![0]!.id, '42');
      assert.equal(out!.rows![0]!.distance, '0.0000');
      assert.equal(out!.rows!.length, 3);
    } finally {
      await deps.pools.end();
    }
  });
});
