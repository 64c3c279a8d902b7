import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startJob, startSync } from '../src/client';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import type { ConnectionReport } from '../src/db/diagnose';
import { createLogger } from '../src/logger';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, startTemporal, uniqueQueue } from './helpers/temporal';
import { cleanUp } from './helpers/cleanup';

describe('environments, Test Connection as a workflow, and PostGIS (real Temporal dev server, real PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let prod: TestDatabase;
  let staging: TestDatabase;
  let config: Config;
  let taskQueue: string;
  let stop: () => Promise<void>;
  let postgis = false;

  before(async () => {
    [env, prod, staging] = await Promise.all([startTemporal(), createTestDatabase('prod'), createTestDatabase('staging')]);
    for (const [db, n] of [[prod, 300], [staging, 30]] as const) {
      await db.client.query(`CREATE TABLE src (id int PRIMARY KEY, origin text); INSERT INTO src SELECT g, '${db === prod ? 'prod' : 'staging'}' FROM generate_series(1, ${n}) g; CREATE TABLE dst (LIKE src INCLUDING ALL);`);
    }
    postgis = (await prod.client.query(`SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'postgis'`)).rows[0].n > 0;
    if (postgis) {
      await prod.client.query(`
        CREATE EXTENSION postgis;
        CREATE TABLE places (id int PRIMARY KEY, name text, pt geometry(Point, 4326), area geometry(Polygon, 3857), route geography(LineString, 4326));
        INSERT INTO places SELECT g, 'place ' || g,
          ST_SetSRID(ST_MakePoint(-122.4 + g * 0.001, 37.7 + g * 0.0005), 4326),
          ST_Transform(ST_Buffer(ST_SetSRID(ST_MakePoint(2.35, 48.85 + g * 0.01), 4326)::geography, 100 + g)::geometry, 3857),
          ST_GeogFromText('SRID=4326;LINESTRING(' || (g * 0.01) || ' 0, ' || (g * 0.01 + 1) || ' 1)')
        FROM generate_series(1, 200) g;
        CREATE TABLE places_copy (LIKE places INCLUDING ALL);
      `);
    }
    taskQueue = uniqueQueue('profiles');
    config = parseConfig({
      temporal: { taskQueue },
      profiles: {
        local: { auth: { method: 'pat', token: 'trust' }, environments: { prod: prod.environment, staging: staging.environment, broken: { ...prod.environment, port: 1 } } },
      },
      pipelines: {
        copy: { source: { profile: 'local', environment: 'prod', table: 'src' }, target: { profile: 'local', environment: 'prod', table: 'dst' }, key: ['id'] },
        places: {
          source: { profile: 'local', environment: 'prod', table: 'places' },
          target: { profile: 'local', environment: 'prod', table: 'places_copy' },
          key: ['id'],
          // A pushed-down PostGIS transform: move every point 1 m east (in a metric projection).
          transform: { columns: { pt: 'ST_Transform(ST_Translate(ST_Transform(pt, 3857), 1, 0), 4326)' } },
        },
      },
      jobs: {
        nearest: {
          profile: 'local',
          environment: 'prod',
          params: { lon: { type: 'number' }, lat: { type: 'number' }, k: { type: 'integer', min: 1, max: 100 } },
          steps: [
            { name: 'near', kind: 'read', sql: 'SELECT id, name FROM places ORDER BY pt <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) LIMIT :k::int' },
          ],
        },
      },
    }, {});
    ({ stop } = await runWorkerInBackground({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue }));
  });

  after(() =>
    cleanUp(
      () => stop?.(),
      () => env?.teardown(),
      () => prod?.close(),
      () => staging?.close(),
    ),
  );

  test('the same sync against staging and against prod hits the two databases', async () => {
    const rProd = await (await startSync(env.client, { pipeline: 'copy', taskQueue, config })).result();
    const rStaging = await (await startSync(env.client, { pipeline: 'copy', taskQueue, config, environment: 'staging' })).result();
    assert.equal(rProd.rowsWritten, 300);
    assert.equal(rStaging.rowsWritten, 30);
    assert.deepEqual((await prod.client.query(`SELECT origin, count(*)::int AS n FROM dst GROUP BY 1`)).rows, [{ origin: 'prod', n: 300 }]);
    assert.deepEqual((await staging.client.query(`SELECT origin, count(*)::int AS n FROM dst GROUP BY 1`)).rows, [{ origin: 'staging', n: 30 }]);
  });

  test('the testConnection workflow reports each step, and fails with the failing step and its fix', async () => {
    const ok = (await (await env.client.workflow.start('testConnection', { taskQueue, workflowId: `tc-ok-${Date.now()}`, args: [{ profile: 'local', environment: 'prod' }] })).result()) as ConnectionReport;
    assert.equal(ok.ok, true);
    assert.equal(ok.steps.find((s) => s.step === 'version')!.ok, true);
    const err = await (await env.client.workflow.start('testConnection', { taskQueue, workflowId: `tc-bad-${Date.now()}`, args: [{ profile: 'local', environment: 'broken' }] }))
      .result()
      .then(() => assert.fail('should fail'), (e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, 'LakebaseConnectionTestFailed');
    assert.match(err.cause.message, /local\/broken: tcp failed: cannot reach 127\.0\.0\.1:1: ECONNREFUSED — fix: check the port/);
  });

  test('PostGIS geometry and geography columns survive the sync; a pushed-down spatial transform applies', async (t) => {
    if (!postgis) return t.skip('postgis is not installed (.ci/run installs postgresql-15-postgis-3)');
    const r = await (await startSync(env.client, { pipeline: 'places', taskQueue, config })).result();
    assert.equal(r.rowsWritten, 200);
    const { rows } = await prod.client.query(`
      SELECT count(*) FILTER (WHERE ST_Equals(a.area, b.area)) AS areas,
             count(*) FILTER (WHERE ST_AsText(a.route) = ST_AsText(b.route) AND a.route::text = b.route::text) AS routes,
             count(*) FILTER (WHERE ST_Equals(b.pt, ST_Transform(ST_Translate(ST_Transform(a.pt, 3857), 1, 0), 4326)) AND NOT ST_Equals(a.pt, b.pt)) AS moved,
             count(*) FILTER (WHERE ST_SRID(b.pt) = 4326 AND ST_SRID(b.area) = 3857) AS srids
      FROM places a JOIN places_copy b USING (id)`);
    assert.deepEqual(rows[0], { areas: '200', routes: '200', moved: '200', srids: '200' });
  });

  test('a job step runs a nearest-neighbour query with bound parameters', async (t) => {
    if (!postgis) return t.skip('postgis is not installed');
    const r = await (await startJob(env.client, { job: 'nearest', params: { lon: -122.3, lat: 37.75, k: 3 }, taskQueue, config })).result();
    const ids = r.steps[0]!.rows!.map((x) => x.id);
    assert.equal(ids[0], '100', 'the point at (-122.3, 37.75) is place 100');
    assert.deepEqual([...ids].sort(), ['100', '101', '99']);
  });
});
