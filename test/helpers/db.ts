import pg from 'pg';
import { freshDatabase, LOCAL_POSTGRES_URL } from '../../src/provision/postgres';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';

export const ADMIN_URL = process.env.DATABASE_URL ?? LOCAL_POSTGRES_URL;

export interface TestDatabase {
  url: string;
  name: string;
  client: pg.Client;
  /** A profile/environment block pointing at this database, for test configs. */
  environment: { host: string; port: number; database: string; user: string; ssl: { mode: 'disable' } };
  close(): Promise<void>;
}

/** A new, empty database on the real server, dropped on close. */
export async function createTestDatabase(prefix: string): Promise<TestDatabase> {
  const name = `lbw_${prefix}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const url = await freshDatabase(ADMIN_URL, name);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const u = new URL(url);
  return {
    url,
    name,
    client,
    environment: { host: u.hostname, port: Number(u.port || 5432), database: name, user: decodeURIComponent(u.username) || 'postgres', ssl: { mode: 'disable' } },
    async close() {
      await client.end();
      const admin = new pg.Client({ connectionString: ADMIN_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    },
  };
}

/** A config with one profile `local` (environment `test`) on the given database plus the given pipelines (and other sections). */
export function testConfig(db: TestDatabase, pipelines: Record<string, unknown>, taskQueue = 'test', more: Record<string, unknown> = {}): Config {
  return parseConfig({
    temporal: { taskQueue },
    profiles: { local: { auth: { method: 'pat', token: 'trust-auth-ignores-this' }, environments: { test: db.environment } } },
    pipelines,
    ...more,
  });
}
