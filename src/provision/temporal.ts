import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { EphemeralServerExecutable } from '@temporalio/testing';

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

/**
 * Finds a Temporal CLI: $TEMPORAL_CLI, `temporal` on PATH, the project cache, or builds the pinned
 * version with Go into the cache (outside the clone, so fresh clones reuse it). Returns undefined
 * when none can be had, so the SDK downloads its own dev server.
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
  const go = (await onPath('go')) ?? (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) {
    say('Temporal CLI not found and Go is not installed: the Temporal SDK will download its dev server.');
    return undefined;
  }
  await mkdir(path.dirname(cached), { recursive: true });
  say(`Building the Temporal CLI ${TEMPORAL_CLI_VERSION} with Go into ${path.dirname(cached)} (takes a few minutes, once)…`);
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`], {
      env: { ...process.env, GOBIN: path.dirname(cached) },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`go install of the Temporal CLI exited with ${code}`))));
  });
  say(`Temporal CLI built in ${Math.round((Date.now() - started) / 1000)} s: ${cached}`);
  return cached;
}

export async function temporalExecutable(say?: Say): Promise<EphemeralServerExecutable> {
  const cli = await findTemporalCli(say);
  return cli ? { type: 'existing-path', path: cli } : { type: 'cached-download', downloadDir: path.join(cacheDir(), 'download') };
}
