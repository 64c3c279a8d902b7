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

/** Database collations for collation tests: libc `C` (byte order) or ICU `en-US` (case-insensitive first, accents folded). */
export type TestCollation = 'c' | 'icu';

/**
 * createTestDatabase with a chosen default collation, from template0 (which has no sessions, so
 * CREATE DATABASE … TEMPLATE never waits on one).
 */
export async function createCollatedDatabase(prefix: string, collation: TestCollation): Promise<TestDatabase> {
  const name = `lbw_${prefix}_${collation}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    const locale = collation === 'c' ? `LOCALE 'C'` : `LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`;
    await admin.query(`CREATE DATABASE "${name}" TEMPLATE template0 ENCODING 'UTF8' ${locale}`);
  } finally {
    await admin.end();
  }
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    url,
    name,
    client,
    environment: { host: u.hostname, port: Number(u.port || 5432), database: name, user: decodeURIComponent(u.username) || 'postgres', ssl: { mode: 'disable' } },
    async close() {
      await client.end();
      const a = new pg.Client({ connectionString: ADMIN_URL });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await a.end();
    },
  };
}

/** A config with one profile `local` whose environments are the given databases, plus the given pipelines. */
export function multiDatabaseConfig(dbs: Record<string, TestDatabase>, pipelines: Record<string, unknown>, taskQueue = 'test'): Config {
  const environments = Object.fromEntries(Object.entries(dbs).map(([k, db]) => [k, db.environment]));
  return parseConfig({ temporal: { taskQueue }, profiles: { local: { auth: { method: 'pat', token: 'trust-auth-ignores-this' }, environments } }, pipelines });
}
