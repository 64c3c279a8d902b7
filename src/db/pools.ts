import pg from 'pg';
import type { Config, EnvironmentConfig } from '../config/schema';
import type { Logger } from '../logger';
import { quoteIdent } from './identifiers';
import { tlsOptionsFor } from './ssl';

/** Supplies the password for a new connection: a Lakebase OAuth token, fetched per login. */
export type PasswordSource = (profile: string, environment: string) => Promise<string>;

export interface PoolRegistryOptions {
  config: Config;
  password: PasswordSource;
  logger: Logger;
}

export interface PoolRegistry {
  get(profile: string, environment: string): pg.Pool;
  environment(profile: string, environment: string): EnvironmentConfig;
  end(): Promise<void>;
}

/** One pg.Pool per (profile, environment), created on first use. */
export function createPoolRegistry({ config, password, logger }: PoolRegistryOptions): PoolRegistry {
  const pools = new Map<string, pg.Pool>();

  function environment(profile: string, env: string): EnvironmentConfig {
    const e = config.profiles[profile]?.environments[env];
    if (!e) throw new Error(`unknown profile/environment ${profile}/${env}`);
    return e;
  }

  function get(profile: string, env: string): pg.Pool {
    const id = `${profile}/${env}`;
    const existing = pools.get(id);
    if (existing) return existing;
    const e = environment(profile, env);
    const pool = new pg.Pool({
      host: e.host,
      port: e.port,
      database: e.database,
      user: e.user,
      password: () => password(profile, env),
      ssl: tlsOptionsFor(e.ssl),
      max: e.poolMax,
      statement_timeout: e.statementTimeoutMs,
      // Lakebase closes idle connections; keep ours shorter-lived than that and than a token.
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 15_000,
      application_name: 'lakebase-worker',
    });
    if (e.defaultSchema) {
      const setPath = `SET search_path TO ${quoteIdent(e.defaultSchema, 'defaultSchema')}, public`;
      pool.on('connect', (client) => {
        client.query(setPath).catch((err: Error) => logger.warn({ err: err.message, pool: id }, 'could not set search_path'));
      });
    }
    // The server may close idle connections at any time: report, never crash.
    pool.on('error', (err) => logger.warn({ pool: id, err: err.message }, 'idle database connection closed'));
    pools.set(id, pool);
    return pool;
  }

  return {
    get,
    environment,
    async end() {
      await Promise.all([...pools.values()].map((p) => p.end()));
      pools.clear();
    },
  };
}
