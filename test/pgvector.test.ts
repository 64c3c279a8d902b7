import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createJobActivities } from '../src/activities/jobs';
import { createSyncEngine } from '../src/sync';
import { parseConfig } from '../src/config/load';
import { createLogger } from '../src/logger';
import { freePort } from '../src/provision/postgres';
import { buildDeps } from '../src/worker';

// pgvector for tests: Debian bookworm has no pgvector package for PostgreSQL 15, so this runs the
// real engine PGlite (PostgreSQL compiled to WASM, with the pgvector extension) served over the
// wire protocol by @electric-sql/pglite-socket. It accepts one connection at a time, so pools use one.
describe('pgvector: a job step runs a nearest-neighbour query (PGlite with the vector extension)', () => {
  const stops: (() => Promise<void>)[] = [];
  let port: number;
  /** A second, empty engine: the target of a sync whose table does not exist yet. */
  let emptyPort: number;
  let empty: { exec(sql: string): Promise<unknown>; query<T>(sql: string): Promise<{ rows: T[] }> };
  const logger = createLogger({ level: 'silent' });

  before(async () => {
    const { PGlite } = await import('@electric-sql/pglite');
    const { vector } = await import('@electric-sql/pglite-pgvector');
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
    const serve = async (db: Awaited<ReturnType<typeof PGlite.create>>) => {
      const p = await freePort();
      const server = new PGLiteSocketServer({ db, port: p, host: '127.0.0.1' });
      await server.start();
      stops.push(async () => {
        await server.stop();
        await db.close();
      });
      return p;
    };
    const db = await PGlite.create({ extensions: { vector } });
    await db.exec(`
      CREATE EXTENSION vector;
      CREATE TABLE docs (id int PRIMARY KEY, title text, embedding vector(3));
      INSERT INTO docs SELECT g, 'doc ' || g, ('[' || cos(g) || ',' || sin(g) || ',' || (g / 100.0) || ']')::vector FROM generate_series(1, 100) g;
    `);
    port = await serve(db);
    const second = await PGlite.create({ extensions: { vector } });
    empty = second;
    emptyPort = await serve(second);
  });

  after(async () => {
    for (const stop of stops) await stop();
  });

  const at = (p: number) => ({ host: '127.0.0.1', port: p, database: 'postgres', user: 'postgres', ssl: { mode: 'disable' }, poolMax: 1 });
  const config = () =>
    parseConfig({
      profiles: { vec: { auth: { method: 'pat', token: 'unused' }, environments: { local: at(port), empty: at(emptyPort) } } },
      pipelines: { embeddings: { source: { profile: 'vec', environment: 'local', table: 'docs' }, target: { profile: 'vec', environment: 'empty', table: 'search.docs' }, key: ['id'] } },
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

  // A vector *sync* cannot run here: COPY over pglite-socket loses protocol sync. Planning reads
  // no rows, so the dry run shows the CREATE statements, which must then build vector(3) there.
  test('a missing target with a vector(3) column: the plan creates the extension and vector(3) in the other database', async () => {
    const cfg = config();
    const deps = buildDeps({ config: cfg, logger });
    try {
      const engine = createSyncEngine({ config: cfg });
      const plan = await engine.plan({ connect: (profile, environment) => deps.pools.connect(profile, environment) }, { pipeline: 'embeddings', runId: 'vec-1', partitioned: true, dryRun: true });
      const statements = plan.dryRun!.statements;
      assert.deepEqual(statements.slice(0, 2), ['CREATE SCHEMA IF NOT EXISTS "search"', 'CREATE EXTENSION IF NOT EXISTS "vector" SCHEMA "public"']);
      assert.match(statements[2]!, /"embedding" "public"\."vector"\(3\),/);
      const extensions = async () => (await empty.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'vector'`)).rows[0]!.n;
      assert.equal(await extensions(), 0, 'the dry run created nothing');
      await deps.pools.end(); // PGlite serves one connection: hand it to the statements
      for (const sql of statements) await empty.exec(sql);
      const { rows } = await empty.query<{ type: string }>(`SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = 'search.docs'::regclass AND attname = 'embedding'`);
      assert.deepEqual(rows, [{ type: 'vector(3)' }]);
    } finally {
      await deps.pools.end();
    }
  });
});
