import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { access, constants, mkdir, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { EphemeralServerExecutable } from '@temporalio/testing';
import { devPackage } from './devPackages';

const run = promisify(execFile);

/** The newest Temporal CLI tag that `go install` accepts (later tags carry `replace` directives). */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';

export function cacheDir(): string {
  return process.env.LAKEBASE_WORKER_CACHE ?? path.join(os.homedir(), '.cache', 'lakebase-worker');
}

async function onPath(cmd: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('sh', ['-c', `command -v ${cmd}`]);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

export type Say = (message: string) => void;

/** The host the SDK downloads its dev server from; probed first so a machine without internet gives up in seconds. */
const DOWNLOAD_HOST = 'https://temporal.download/';
const PROBE_MS = 5_000;
/** The download itself (tens of MB) may take this long before the Go build is tried instead. */
const DOWNLOAD_MS = 180_000;

/** A dev-server binary the SDK left in its download directory, if any. */
async function downloaded(dir: string): Promise<string | undefined> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names.filter((n) => /^temporal/.test(n) && !/\.(zip|tar|gz|tmp)$/.test(n)).sort()) {
    const file = path.join(dir, name);
    if (await access(file, constants.X_OK).then(() => true, () => false)) return file;
  }
  return undefined;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${Math.round(ms / 1000)} s`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * The SDK's own dev-server download (seconds on a machine with internet): probe its host within
 * PROBE_MS, then let the SDK fetch it into `dir` (by starting and stopping a dev server once).
 * Returns the binary, or why it could not be had.
 */
async function sdkDownload(dir: string): Promise<{ path: string } | { reason: string }> {
  const host = process.env.LAKEBASE_TEMPORAL_DOWNLOAD_URL ?? DOWNLOAD_HOST;
  const probeMs = Number(process.env.LAKEBASE_TEMPORAL_DOWNLOAD_PROBE_MS) || PROBE_MS;
  try {
    await fetch(host, { method: 'HEAD', signal: AbortSignal.timeout(probeMs) });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${Math.round(probeMs / 1000)} s` : (e.cause?.code ?? e.message);
    return { reason: `${host} cannot be reached (${why})` };
  }
  try {
    await mkdir(dir, { recursive: true });
    const { TestWorkflowEnvironment } = devPackage('@temporalio/testing', 'downloading the Temporal CLI');
    const env = await withTimeout(
      TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'cached-download', downloadDir: dir }, log: { format: 'pretty', level: 'error' } } }),
      DOWNLOAD_MS,
      'the download',
    );
    await env.teardown();
  } catch (err) {
    return { reason: `the SDK's download failed: ${(err as Error).message.split('\n')[0]}` };
  }
  const file = await downloaded(dir);
  return file ? { path: file } : { reason: `the SDK's download left no binary in ${dir}` };
}

/**
 * Finds a Temporal CLI: $TEMPORAL_CLI, the project cache, `temporal` on PATH, a dev server the
 * SDK downloaded before; else tries the SDK's download (seconds, when the machine has internet),
 * and only then builds the pinned version with Go into the cache (minutes, once; outside the clone,
 * so fresh clones reuse it). Says which was used and why. Returns undefined when none can be had.
 */
export async function findTemporalCli(say: Say = () => undefined): Promise<string | undefined> {
  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`TEMPORAL_CLI=${fromEnv} does not exist`);
    return fromEnv;
  }
  const cached = path.join(cacheDir(), 'bin', 'temporal');
  if (existsSync(cached)) return cached;
  const found = await onPath('temporal');
  if (found) return found;
  const downloadDir = path.join(cacheDir(), 'download');
  const before = await downloaded(downloadDir);
  if (before) return before;
  say("Temporal CLI not found: trying the Temporal SDK's dev-server download…");
  const started0 = Date.now();
  const download = await sdkDownload(downloadDir);
  if ('path' in download) {
    say(`Temporal CLI: the SDK's dev-server download, in ${Math.round((Date.now() - started0) / 1000)} s: ${download.path}`);
    return download.path;
  }
  const go = (await onPath('go')) ?? (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) {
    say(`No Temporal CLI: ${download.reason}, and Go is not installed to build one. Install the Temporal CLI (https://docs.temporal.io/cli) or set TEMPORAL_CLI.`);
    return undefined;
  }
  await mkdir(path.dirname(cached), { recursive: true });
  say(`The SDK's download is not available (${download.reason}): building the Temporal CLI ${TEMPORAL_CLI_VERSION} with Go into ${path.dirname(cached)} instead (takes a few minutes, once)…`);
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`], {
      env: { ...process.env, GOBIN: path.dirname(cached) },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`go install of the Temporal CLI exited with ${code}`))));
  });
  say(`Temporal CLI: built with Go in ${Math.round((Date.now() - started) / 1000)} s: ${cached}`);
  return cached;
}

export async function temporalExecutable(say?: Say): Promise<EphemeralServerExecutable> {
  const cli = await findTemporalCli(say);
  return cli ? { type: 'existing-path', path: cli } : { type: 'cached-download', downloadDir: path.join(cacheDir(), 'download') };
}
