import { lookup } from 'node:dns/promises';
import net from 'node:net';
import tls from 'node:tls';
import pg from 'pg';
import { endpointName, type CredentialProvider, type Session } from '../auth/credentials';
import type { Config } from '../config/schema';
import { classifySqlError, describeTlsProblem } from './errors';
import { quoteLiteral } from './identifiers';
import { tlsOptionsFor } from './ssl';

export interface CheckStep {
  step: string;
  ok: boolean;
  /** Skipped because an earlier step failed. */
  skipped?: boolean;
  ms: number;
  detail: string;
  /** What to change, for a failed step. */
  fix?: string;
}

export interface ConnectionReport {
  profile: string;
  environment: string;
  ok: boolean;
  steps: CheckStep[];
}

const STEPS = ['config', 'endpoint', 'dns', 'tcp', 'tls', 'token', 'login', 'version', 'schema', 'permissions', 'extensions'] as const;

class StepFailure extends Error {
  constructor(message: string, readonly fix?: string) {
    super(message);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new StepFailure(`${what} timed out after ${ms} ms`)), ms).unref())]);
}

/** Opens TCP, asks for TLS the way PostgreSQL does (SSLRequest), and completes the handshake to read the certificate. */
async function tlsHandshake(host: string, port: number, options: tls.ConnectionOptions): Promise<tls.PeerCertificate> {
  const socket = net.connect(port, host);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const request = Buffer.alloc(8);
  request.writeInt32BE(8, 0);
  request.writeInt32BE(80877103, 4);
  socket.write(request);
  const answer = await new Promise<string>((resolve, reject) => {
    socket.once('data', (b) => resolve(String.fromCharCode(b[0]!)));
    socket.once('error', reject);
  });
  if (answer !== 'S') {
    socket.destroy();
    throw Object.assign(new Error('The server does not support SSL connections'), { code: 'NO_SSL' });
  }
  // `host` keeps the identity check right for IP addresses, where SNI must stay unset (as pg does).
  const secure = tls.connect({ ...options, socket, host, servername: net.isIP(host) ? undefined : host });
  try {
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    return secure.getPeerCertificate();
  } finally {
    secure.destroy();
  }
}

/**
 * Test Connection: each step with timing and outcome, stopping at the first failure, which carries
 * the fix. Never reports a secret (the token appears only as a fingerprint).
 */
export async function diagnoseConnection(opts: {
  config: Config;
  credentials: CredentialProvider;
  profile: string;
  environment: string;
  session?: Session;
}): Promise<ConnectionReport> {
  const { config, credentials, profile, environment, session } = opts;
  const steps: CheckStep[] = [];
  let failed = false;
  let client: pg.Client | undefined;
  const run = async (step: (typeof STEPS)[number], fn: () => Promise<string>) => {
    if (failed) return void steps.push({ step, ok: false, skipped: true, ms: 0, detail: 'skipped' });
    const t0 = performance.now();
    try {
      const detail = await fn();
      steps.push({ step, ok: true, ms: Math.round(performance.now() - t0), detail });
    } catch (err) {
      failed = true;
      const e = err as Error & { fix?: string };
      steps.push({ step, ok: false, ms: Math.round(performance.now() - t0), detail: e.message, fix: e.fix });
    }
  };

  const env = config.profiles[profile]?.environments[environment];
  const auth = config.profiles[profile]?.auth;
  try {
    await run('config', async () => {
      if (!auth) throw new StepFailure(`no profile "${profile}"`, `define profiles.${profile}; defined: ${Object.keys(config.profiles).join(', ') || '(none)'}`);
      if (!env) throw new StepFailure(`profile "${profile}" has no environment "${environment}"`, `defined environments: ${Object.keys(config.profiles[profile]!.environments).join(', ')}`);
      return `${auth.method} auth; ${env.user}@${env.host ?? endpointName(env)}:${env.port}/${env.database}; ssl ${env.ssl.mode}${env.defaultSchema ? `; schema ${env.defaultSchema}` : ''}`;
    });
    // Autoscaling environments only: the host comes from the Postgres API (Get Endpoint).
    let host = env?.host ?? '';
    const endpoint = env ? endpointName(env) : undefined;
    if (endpoint) {
      await run('endpoint', async () => {
        try {
          host = await credentials.host(profile, environment, session);
        } catch (err) {
          throw new StepFailure((err as Error).message, 'check project, branch and endpoint (Lakebase console → Connect) and that this identity may read the project');
        }
        return `${endpoint} → host ${host}`;
      });
    }
    const e = { ...env!, host };
    let address = e.host;
    await run('dns', async () => {
      if (net.isIP(e.host)) return `${e.host} is an IP address`;
      try {
        const r = await withTimeout(lookup(e.host), 5000, 'DNS lookup');
        address = r.address;
        return `${e.host} → ${r.address}`;
      } catch (err) {
        throw new StepFailure(`cannot resolve ${e.host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'check the host name (the instance DNS name from the Lakebase console) and this machine\'s DNS');
      }
    });
    await run('tcp', async () => {
      const s = net.connect(e.port, address);
      try {
        await withTimeout(new Promise<void>((resolve, reject) => (s.once('connect', resolve), s.once('error', reject))), 5000, 'TCP connect');
      } catch (err) {
        throw new StepFailure(`cannot reach ${address}:${e.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'check the port, firewalls and IP access lists between this worker and the instance');
      } finally {
        s.destroy();
      }
      return `connected to ${address}:${e.port}`;
    });
    await run('tls', async () => {
      const options = tlsOptionsFor(e.ssl);
      if (options === false) return 'ssl.mode disable: no TLS (Lakebase requires TLS in production)';
      try {
        const cert = await withTimeout(tlsHandshake(e.host, e.port, options), 10_000, 'TLS handshake');
        const subject = cert.subject ? Object.entries(cert.subject).map(([k, v]) => `${k}=${String(v)}`).join(', ') : '(no certificate)';
        return `${e.ssl.mode}: server certificate ${subject}; valid until ${cert.valid_to ?? '?'}${e.ssl.mode === 'require' && !(e.ssl.ca || e.ssl.caFile) ? ' (NOT verified: anyone on the path can pose as this server and collect the token; use verify-full)' : ' (verified)'}`;
      } catch (err) {
        throw new StepFailure(describeTlsProblem(err, e.host) ?? `TLS handshake failed: ${(err as Error).message}`);
      }
    });
    let password = '';
    await run('token', async () => {
      const t = await credentials.acquire(profile, environment, session);
      password = t.token;
      return `${auth!.method}: token for ${t.identity}, ${t.fingerprint}, expires ${new Date(t.expiresAt).toISOString()}`;
    });
    await run('login', async () => {
      client = new pg.Client({ host: e.host, port: e.port, database: e.database, user: e.user, password, ssl: tlsOptionsFor(e.ssl), connectionTimeoutMillis: 10_000, application_name: 'lakebase-worker test-connection' });
      client.on('error', () => undefined);
      try {
        await client.connect();
      } catch (err) {
        const tlsProblem = describeTlsProblem(err, e.host);
        if (tlsProblem) throw new StepFailure(tlsProblem);
        const cls = classifySqlError(err);
        throw new StepFailure(
          `login as ${e.user} refused: ${(err as Error).message}`,
          cls.kind === 'auth' ? `the token was refused: check that user "${e.user}" is the identity the token belongs to and has a Postgres role on the instance` : undefined,
        );
      }
      return `logged in as ${e.user}`;
    });
    await run('version', async () => (await client!.query<{ v: string }>('select version() AS v')).rows[0]!.v);
    await run('schema', async () => {
      if (e.defaultSchema) await client!.query(`SET search_path TO "${e.defaultSchema.replace(/"/g, '""')}", public`);
      const r = (await client!.query<{ s: string | null }>('select current_schema() AS s')).rows[0]!;
      if (!r.s) throw new StepFailure(`no current schema: ${e.defaultSchema ?? 'search_path'} does not exist or is not visible`, 'create the schema, or fix defaultSchema');
      return `current_schema() = ${r.s}`;
    });
    await run('permissions', async () => {
      const schema = e.defaultSchema ?? (await client!.query<{ s: string }>('select current_schema() AS s')).rows[0]!.s;
      const r = (await client!.query<{ usage: boolean; create: boolean }>(
        `select has_schema_privilege(current_user, ${quoteLiteral(schema)}, 'USAGE') AS usage, has_schema_privilege(current_user, ${quoteLiteral(schema)}, 'CREATE') AS create`,
      )).rows[0]!;
      if (!r.usage) throw new StepFailure(`no USAGE on schema ${schema}`, `GRANT USAGE ON SCHEMA ${schema} TO "${e.user}"`);
      return `schema ${schema}: USAGE yes, CREATE ${r.create ? 'yes' : 'no'}`;
    });
    await run('extensions', async () => {
      const r = await client!.query<{ name: string; installed: string | null }>(
        `select name, installed_version AS installed from pg_available_extensions where name in ('postgis', 'vector') order by name`,
      );
      const state = (n: string) => {
        const x = r.rows.find((row) => row.name === n);
        return x ? (x.installed ? `${n} ${x.installed} installed` : `${n} available, not installed`) : `${n} not available`;
      };
      return `${state('postgis')}; ${state('vector')}`;
    });
  } finally {
    await client?.end().catch(() => undefined);
  }
  return { profile, environment, ok: !failed, steps };
}

export function formatReport(r: ConnectionReport): string {
  const lines = [`Test connection: profile ${r.profile}, environment ${r.environment}`];
  for (const s of r.steps) {
    const mark = s.skipped ? '·' : s.ok ? '✓' : '✗';
    lines.push(`  ${mark} ${s.step.padEnd(12)} ${s.skipped ? '' : `${String(s.ms).padStart(5)} ms  `}${s.detail}`);
    if (s.fix) lines.push(`      fix: ${s.fix}`);
  }
  lines.push(r.ok ? 'OK' : 'FAILED');
  return lines.join('\n');
}
