// The servers a generative run uses, each restartable so faults can strike it: a Temporal dev
// server on a database file, the machine's PostgreSQL for batch modes (databases per case, with
// chosen collations), a private embedded PostgreSQL with wal_level=logical for cdc, and a real
// worker process (`lakebase-worker worker --config <file>`). Commands go through the CLI.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import pg from 'pg';
import { EmbeddedCluster } from '../../src/provision/embeddedPostgres';
import { findTemporalCli } from '../../src/provision/temporal';
import { LAKEBASE_SEARCH_ATTRIBUTES } from '../../src/workflows/searchAttributes';
import { ADMIN_URL } from '../helpers/db';

export const CLI = path.join(__dirname, '..', '..', 'bin', 'lakebase-worker.js');
/** Harness connections carry this name, so pg_terminate_backend faults spare them. */
export const HARNESS_APP = 'lbw-generative';
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ports of this suite's range (24000-24999), checked free. */
async function portInRange(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 24000 + Math.floor(Math.random() * 1000);
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 24000-24999');
}

export interface CliRun {
  code: number;
  out: string;
}

class TemporalServer {
  port = 0;
  private child?: ChildProcess;
  constructor(private readonly dbFile: string) {}

  async start(first: boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOnce(first);
      } catch (err) {
        // Seen once in a while: the dev server exits at start (a port taken meanwhile); try again, on new ports the first time.
        if (attempt >= 3) throw err;
        if (first) this.port = 0;
        await sleep(1_000);
      }
    }
  }

  private async startOnce(first: boolean): Promise<void> {
    const cli = await findTemporalCli();
    if (!cli) throw new Error('no Temporal CLI (npm test builds it)');
    if (!this.port) this.port = await portInRange();
    const attrs = first ? LAKEBASE_SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${k.type === 'INT' ? 'Int' : 'Keyword'}`]) : [];
    const child = spawn(cli, ['server', 'start-dev', '--headless', '--port', String(this.port), '--http-port', String(await portInRange()), '--metrics-port', String(await portInRange()), '--db-filename', this.dbFile, '--log-level', 'error', ...attrs], { stdio: 'ignore' });
    this.child = child;
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const c = await Connection.connect({ address: `127.0.0.1:${this.port}`, connectTimeout: 1_000 });
        await c.workflowService.getSystemInfo({});
        await c.close();
        return;
      } catch (err) {
        if (Date.now() > deadline || child.exitCode !== null) throw err;
        await sleep(200);
      }
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

export class Harness {
  private dir = '';
  readonly temporal: TemporalServer;
  private cluster?: EmbeddedCluster;
  private worker?: ChildProcess;
  private configFile = '';
  private workerLog = '';
  /** Set when the worker exited without the harness asking. */
  workerExit?: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.temporal = new TemporalServer(path.join(dir, 'temporal.db'));
  }

  static async start(): Promise<Harness> {
    const h = new Harness(await mkdtemp(path.join(os.tmpdir(), 'lbw-generative-')));
    await h.temporal.start(true);
    return h;
  }

  get temporalAddress(): string {
    return `127.0.0.1:${this.temporal.port}`;
  }

  get workDir(): string {
    return this.dir;
  }

  /** The private wal_level=logical server (started on first use). */
  async logicalServer(): Promise<EmbeddedCluster> {
    if (!this.cluster) {
      const c = new EmbeddedCluster({ dataDir: path.join(this.dir, 'pg'), port: await portInRange(), settings: { wal_level: 'logical', max_replication_slots: '40', max_wal_senders: '40' } });
      await c.init();
      await c.start();
      this.cluster = c;
    }
    return this.cluster;
  }

  /** Restarts the private server (a fault): fast shutdown, a second down, start. */
  async restartLogicalServer(): Promise<void> {
    const c = await this.logicalServer();
    // Immediate shutdown (SIGQUIT to the postmaster, as a crash would): a fast one waits for the
    // walsender to hand the stream all WAL, and past stop()'s 10 s its SIGKILL leaves backends behind.
    const pid = Number((await readFile(path.join(c.options.dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
    await c.stop();
    // The postmaster's children may outlive stop() by a moment ("pre-existing shared memory block"): retry the start.
    for (let attempt = 1; ; attempt++) {
      await sleep(1_000);
      try {
        await c.start();
        return;
      } catch (err) {
        if (attempt >= 15) throw err;
      }
    }
  }

  async restartTemporal(): Promise<void> {
    await this.temporal.stop();
    await sleep(1_000);
    await this.temporal.start(false);
  }

  /** A new database: on the machine's server with a chosen collation, or on the private logical server. */
  async database(name: string, where: 'shared' | 'logical', collation: 'default' | 'c' | 'icu' = 'default'): Promise<{ url: string; env: Record<string, unknown>; drop(): Promise<void> }> {
    const adminUrl = where === 'logical' ? (await this.logicalServer()).url : ADMIN_URL;
    const admin = new pg.Client({ connectionString: adminUrl, application_name: HARNESS_APP });
    await admin.connect();
    try {
      const locale = collation === 'c' ? ` TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'` : collation === 'icu' ? ` TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'` : ' TEMPLATE template0';
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.query(`CREATE DATABASE "${name}"${locale}`);
    } finally {
      await admin.end();
    }
    const u = new URL(adminUrl);
    u.pathname = `/${name}`;
    return {
      url: u.toString(),
      env: { host: u.hostname, port: Number(u.port || 5432), database: name, user: decodeURIComponent(u.username) || 'postgres', ssl: { mode: 'disable' }, idleTimeoutMs: 1000 },
      drop: async () => {
        const a = new pg.Client({ connectionString: adminUrl, application_name: HARNESS_APP });
        await a.connect();
        try {
          if (where === 'logical') {
            // The killed worker's walsender may hold the slot a moment longer.
            for (let i = 0; i < 20; i++) {
              await a.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active`, [name]);
              const left = await a.query(`SELECT slot_name, active FROM pg_replication_slots WHERE database = $1`, [name]);
              for (const s of left.rows as { slot_name: string; active: boolean }[]) if (!s.active) await a.query('SELECT pg_drop_replication_slot($1)', [s.slot_name]).catch(() => undefined);
              if (!left.rows.length) break;
              await sleep(250);
            }
          }
          await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        } finally {
          await a.end();
        }
      },
    };
  }

  /** pg_terminate_backend of every connection to these databases but the harness's own (the worker's, the CLI's). */
  async terminateBackends(where: 'shared' | 'logical', databases: string[]): Promise<number> {
    const adminUrl = where === 'logical' ? (await this.logicalServer()).url : ADMIN_URL;
    const a = new pg.Client({ connectionString: adminUrl, application_name: HARNESS_APP });
    await a.connect();
    try {
      const r = await a.query(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = ANY($1) AND pid <> pg_backend_pid() AND application_name <> $2`,
        [databases, HARNESS_APP],
      );
      return r.rows[0].n as number;
    } finally {
      await a.end();
    }
  }

  useConfig(file: string): void {
    this.configFile = file;
  }

  startWorker(): void {
    // LBW_GENERATIVE_WORKER_LOG=<file> keeps the worker's log (at LOG_LEVEL, default warn) past the case.
    if (!this.workerLog) this.workerLog = process.env.LBW_GENERATIVE_WORKER_LOG ?? path.join(this.dir, 'worker.log');
    const log = createWriteStream(this.workerLog, { flags: 'a' });
    const child = spawn(process.execPath, [CLI, 'worker', '--config', this.configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: '1', LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', NODE_TEST_CONTEXT: undefined },
    });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    // A worker that dies by itself leaves every later command waiting: say so in the failure.
    child.once('exit', (code, signal) => {
      if (this.worker === child && !child.killed) this.workerExit = `the worker exited by itself (${signal ?? `code ${code}`}); its log: ${this.workerLog}`;
    });
    this.worker = child;
    this.workerExit = undefined;
  }

  /** SIGKILL of the worker process (a fault), then a new one, as an orchestrator would restart it. */
  async killWorker(restart = true): Promise<void> {
    const child = this.worker;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    this.worker = undefined;
    if (restart) this.startWorker();
  }

  /** Stops the worker gracefully (SIGTERM, SIGKILL after 10 s). */
  async stopWorker(): Promise<void> {
    const child = this.worker;
    this.worker = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** One CLI command as a user runs it, against the case's config file. */
  cli(args: string[], timeoutMs = 300_000): Promise<CliRun> {
    const child = spawn(process.execPath, [CLI, ...args, '--config', this.configFile], {
      env: { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: '1', NODE_TEST_CONTEXT: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    return new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code: code ?? (signal ? 124 : 1), out: `$ lakebase-worker ${args.join(' ')}\n${out.trim()}` });
      }),
    );
  }

  async stop(): Promise<void> {
    await this.stopWorker().catch(() => undefined);
    await this.cluster?.stop().catch(() => undefined);
    await this.temporal.stop().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
