import pg from 'pg';
import { accessKey, type CredentialProvider, type ReadOnlyAccess, type Session } from '../auth/credentials';
import { normalTables } from '../auth/databricks';
import { LakebaseReadOnlyCredentialError } from '../auth/errors';
import { lookupEnvironment } from '../config/lookup';
import type { Config, EnvironmentConfig } from '../config/schema';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import { connectWhileWaking } from './computeWake';
import { classifySqlError } from './errors';
import { quoteIdent } from './identifiers';
import { tlsOptionsFor } from './ssl';

export interface PoolRegistryOptions {
  config: Config;
  credentials: CredentialProvider;
  logger: Logger;
  /** Counts logins the server refused (lakebase_login_refusals_total). */
  metrics?: Metrics;
  /**
   * A per-person pool (login-idp) unused this long, with nothing checked out, is closed and its
   * session (the IdP token) forgotten. Default 10 minutes.
   */
  idlePoolEvictMs?: number;
}

/** Connections of one (profile, environment) on this worker, summed over its identities. */
export interface PoolStats {
  profile: string;
  environment: string;
  /** Open connections (in use + idle). */
  open: number;
  idle: number;
  /** Callers waiting for a connection. */
  waiting: number;
  /** The environment's maxConnections (per identity: one pool each). */
  max: number;
}

export interface PoolRegistry {
  /** `access`: a pool of its own whose logins use a READ_ONLY credential and read-only sessions. */
  get(profile: string, environment: string, session?: Session, access?: ReadOnlyAccess): pg.Pool;
  /**
   * A client from the pool. A login refused with 28P01/28000 (token expired or revoked) drops the
   * cached token and logs in once more with a fresh one before giving up. With `access` (a side
   * that only reads: a sync's or cdc load's source, verify, test-connection), the login uses a
   * READ_ONLY database credential for those tables, the session is `default_transaction_read_only`,
   * and a write fails as LakebaseReadOnlyCredentialError.
   */
  connect(profile: string, environment: string, session?: Session, access?: ReadOnlyAccess): Promise<pg.PoolClient>;
  environment(profile: string, environment: string): EnvironmentConfig;
  /** `select 1` on every pool in use, each within `timeoutMs` (readiness). */
  ping(timeoutMs: number): Promise<{ pool: string; ok: boolean; error?: string }[]>;
  /** Connection counts per environment in use (the connection-budget metrics). */
  stats(): PoolStats[];
  end(): Promise<void>;
}

/** One pg.Pool per (profile, environment, identity), created on first use. */
export function createPoolRegistry({ config, credentials, logger, metrics, idlePoolEvictMs = 10 * 60_000 }: PoolRegistryOptions): PoolRegistry {
  const pools = new Map<string, pg.Pool>();
  // Last use of each per-person pool: one pool per IdP token would otherwise pile up for ever.
  const lastUsed = new Map<string, number>();
  const evictor = setInterval(() => {
    const cutoff = Date.now() - idlePoolEvictMs;
    for (const [id, at] of lastUsed) {
      const pool = pools.get(id);
      if (!pool || at > cutoff || pool.totalCount !== pool.idleCount || pool.waitingCount > 0) continue;
      // The person's OAuth token and database credential leave this worker's memory with the pool.
      const m = meta.get(id);
      if (m) credentials.invalidate(m.profile, m.env, sessions.get(id), m.access);
      pools.delete(id);
      sessions.delete(id);
      meta.delete(id);
      lastUsed.delete(id);
      void pool.end().catch(() => undefined);
      logger.info({ pool: id.split('/').slice(0, 2).join('/') }, 'idle per-user pool closed');
    }
  }, Math.max(50, Math.min(60_000, Math.floor(idlePoolEvictMs / 2))));
  evictor.unref();
  // What each pool logs in as, for dropping its cached credentials when it is evicted.
  const meta = new Map<string, { profile: string; env: string; access?: ReadOnlyAccess }>();
  // The newest session per pool: a refreshed IdP token replaces the old one for future logins.
  const sessions = new Map<string, Session | undefined>();
  // Hosts of Autoscaling environments, looked up by connect() before the pool is made.
  const hosts = new Map<string, string>();

  function environment(profile: string, env: string): EnvironmentConfig {
    return lookupEnvironment(config, profile, env);
  }

  const readOnlySql = 'SET default_transaction_read_only = on';
  const poolId = (profile: string, env: string, session?: Session, access?: ReadOnlyAccess) =>
    `${profile}/${env}/${credentials.identityKey(profile, session)}${access ? `/${accessKey(access)}` : ''}`;

  /** Read-only pools: the same identity's second door to an environment, not more capacity (stats). */
  const readOnlyPools = new Set<string>();

  function get(profile: string, env: string, session?: Session, access?: ReadOnlyAccess): pg.Pool {
    const id = poolId(profile, env, session, access);
    if (access) readOnlyPools.add(id);
    if (session) sessions.set(id, session);
    if (session?.idpToken) {
      lastUsed.set(id, Date.now());
      meta.set(id, { profile, env, ...(access && { access }) });
    }
    const existing = pools.get(id);
    if (existing) return existing;
    const e = environment(profile, env);
    const host = e.host ?? hosts.get(`${profile}/${env}`);
    if (!host) throw new Error(`${profile}/${env}: the endpoint host is not looked up yet (use connect())`);
    const pool = new pg.Pool({
      host,
      port: e.port,
      database: e.database,
      user: e.user,
      // Lakebase checks the token only at login, so every new connection asks the cache.
      password: async () => {
        const { token } = await credentials.acquire(profile, env, sessions.get(id), access);
        // pg asks only when the server does; method none (the one empty credential) has nothing to send.
        if (token === '')
          throw new Error(`${profile}/${env}: the server asked for a password, but profiles.${profile}.auth is method none (for trust or peer auth): use { method: password, password: \${PGPASSWORD} }`);
        return token;
      },
      ssl: tlsOptionsFor(e.ssl),
      max: e.maxConnections,
      statement_timeout: e.statementTimeoutMs,
      idleTimeoutMillis: e.idleTimeoutMs,
      // Retire connections before Lakebase's documented 3-day maximum connection life.
      maxLifetimeSeconds: Math.max(1, Math.floor(e.maxConnectionLifetimeMs / 1000)),
      connectionTimeoutMillis: 15_000,
      application_name: 'lakebase-worker',
    });
    if (access) {
      // Besides the credential: Lakebase documents claims as grants the token adds, so the session
      // itself is made read-only too (the emulator's READ_ONLY login cannot write even without this).
      pool.on('connect', (client) => {
        client.query(readOnlySql).catch((err: Error) => logger.warn({ err: err.message, pool: `${profile}/${env}` }, 'could not make the session read-only'));
      });
    }
    if (e.defaultSchema) {
      const setPath = `SET search_path TO ${quoteIdent(e.defaultSchema, 'defaultSchema')}, public`;
      pool.on('connect', (client) => {
        client.query(setPath).catch((err: Error) => logger.warn({ err: err.message, pool: `${profile}/${env}` }, 'could not set search_path'));
      });
    }
    // The server may close idle connections at any time: report, never crash.
    pool.on('error', (err) => logger.warn({ pool: `${profile}/${env}`, err: err.message }, 'idle database connection closed'));
    pools.set(id, pool);
    return pool;
  }

  // A checked-out client whose connection dies emits 'error' besides failing its query; without a
  // listener that event would crash the worker (seen with a network reset mid-COPY).
  const guarded = new WeakSet<pg.PoolClient>();
  const guard = (client: pg.PoolClient, id: string) => {
    if (guarded.has(client)) return client;
    guarded.add(client);
    client.on('error', (err) => logger.warn({ pool: id, err: err.message }, 'database connection failed while in use'));
    return client;
  };

  /** On a read-only pool, a refused write names the credential (the cause keeps the server's error). */
  const typedWrites = new WeakSet<pg.PoolClient>();
  function readOnlyErrors(client: pg.PoolClient, name: string, access: ReadOnlyAccess): pg.PoolClient {
    if (typedWrites.has(client)) return client;
    typedWrites.add(client);
    const tables = normalTables(access.tables);
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    const retype = (err: unknown) => {
      const code = (err as { code?: string }).code;
      throw code === '25006' || code === '42501' ? new LakebaseReadOnlyCredentialError(name, tables, err as Error) : err;
    };
    (client as { query: unknown }).query = (...args: unknown[]) => {
      const r = query(...args);
      // Only the promise form (streams such as COPY report their own errors).
      return r && typeof (r as Promise<unknown>).then === 'function' && typeof (r as { submit?: unknown }).submit !== 'function' ? (r as Promise<unknown>).catch(retype) : r;
    };
    return client;
  }

  async function connect(profile: string, env: string, session?: Session, access?: ReadOnlyAccess): Promise<pg.PoolClient> {
    const id = `${profile}/${env}`;
    if (!environment(profile, env).host && !hosts.has(id)) hosts.set(id, await credentials.host(profile, env, session));
    const pool = get(profile, env, session, access);
    const typed = (client: pg.PoolClient) => (access ? readOnlyErrors(client, id, access) : client);
    const wake = {
      maxWaitMs: environment(profile, env).computeWakeTimeoutMs,
      onWaiting: (attempt: number, err: unknown) =>
        logger.warn({ pool: id, attempt, err: (err as Error).message }, 'compute not accepting connections yet (scale to zero?); retrying'),
    };
    const open = () => connectWhileWaking(id, () => pool.connect(), wake);
    try {
      return typed(guard(await open(), id));
    } catch (err) {
      if (classifySqlError(err).kind !== 'auth') throw err;
      metrics?.loginRefusals.inc({ profile, environment: env });
      logger.warn({ pool: id, sqlState: (err as { code?: string }).code }, 'login refused; refreshing the token and retrying once');
      credentials.invalidate(profile, env, session, access);
      return typed(guard(await open(), id));
    }
  }

  return {
    get,
    connect,
    environment,
    ping: (timeoutMs) =>
      Promise.all(
        [...pools.entries()].map(async ([id, pool]) => {
          const name = id.split('/').slice(0, 2).join('/');
          try {
            await Promise.race([pool.query('select 1'), new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), timeoutMs).unref())]);
            return { pool: name, ok: true };
          } catch (err) {
            return { pool: name, ok: false, error: (err as Error).message };
          }
        }),
      ),
    stats() {
      const byEnv = new Map<string, PoolStats>();
      for (const [id, pool] of pools) {
        const [profile = '', environment = ''] = id.split('/');
        const s = byEnv.get(`${profile}/${environment}`) ?? { profile, environment, open: 0, idle: 0, waiting: 0, max: 0 };
        s.open += pool.totalCount;
        s.idle += pool.idleCount;
        s.waiting += pool.waitingCount;
        if (!readOnlyPools.has(id)) s.max += pool.options.max ?? 0;
        byEnv.set(`${profile}/${environment}`, s);
      }
      return [...byEnv.values()];
    },
    async end() {
      clearInterval(evictor);
      await Promise.all([...pools.values()].map((p) => p.end()));
      pools.clear();
      lastUsed.clear();
      meta.clear();
    },
  };
}
