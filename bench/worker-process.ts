// The real worker (`lakebase-worker worker`, i.e. src/worker.ts) in a child process of its own, so
// its peak memory is its own and two of them are two Temporal identities on one task queue.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

const ROOT = path.join(__dirname, '..');

/** VmHWM (peak resident set since start) of a process, in MB; null once it is gone. */
export async function peakRssMb(pid: number): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  return kb ? Math.round(Number(kb) / 1024) : null;
}

/** CPU seconds (user + system) a process has used so far; null once it is gone. */
export async function cpuSeconds(pid: number): Promise<number | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th, in clock ticks.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [utime, stime] = [Number(fields[11]), Number(fields[12])];
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / CLOCK_TICKS : null;
}

/** sysconf(_SC_CLK_TCK): 100 on Linux builds for every common architecture. */
const CLOCK_TICKS = 100;

export interface WorkerProcess {
  pid: number;
  /** The Temporal worker identity (the SDK's default: pid@host). */
  identity: string;
  /** VmHWM when it started polling (start-up, loading the workflow bundle). */
  startupPeakRssMb: number | null;
  /** Highest VmHWM sampled so far. */
  peakRssMb(): number | null;
  /** CPU seconds used so far (start-up included: take differences). */
  cpuSeconds(): Promise<number | null>;
  stop(): Promise<void>;
}

async function polling(client: Client, taskQueue: string, identity: string): Promise<boolean> {
  for (const taskQueueType of [temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY]) {
    const d = await client.workflowService.describeTaskQueue({ namespace: client.options.namespace, taskQueue: { name: taskQueue }, taskQueueType });
    // The worker's identity is the SDK's `<pid>@<host>` plus the config it runs (src/worker.ts workerIdentity).
    if (!(d.pollers ?? []).some((p) => p.identity === identity || p.identity?.startsWith(`${identity} `))) return false;
  }
  return true;
}

/** The node flags the image's entry point runs bin/ with (the Dockerfile's last ENTRYPOINT): the bench runs the worker as it ships. */
export function imageNodeFlags(): string[] {
  const entries = [...readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').matchAll(/^ENTRYPOINT\s+(\[.*\])\s*$/gm)];
  const entry = JSON.parse(entries.at(-1)?.[1] ?? '[]') as string[];
  return entry[0] === 'node' ? entry.slice(1, entry.indexOf('bin/lakebase-worker.js')) : [];
}

/**
 * The worker's node flags: the image's, or BENCH_WORKER_NODE_FLAGS (space-separated; empty for
 * Node's defaults) to measure another setting.
 */
export function workerNodeFlags(): string[] {
  const own = process.env.BENCH_WORKER_NODE_FLAGS;
  return own === undefined ? imageNodeFlags() : own.split(/\s+/).filter(Boolean);
}

/** Starts `lakebase-worker worker --config <file>` and resolves once it polls both queues of `taskQueue`. */
export async function startWorkerProcess(client: Client, configFile: string, taskQueue: string, startTimeoutMs = 120_000): Promise<WorkerProcess> {
  const child: ChildProcess = spawn(process.execPath, [...workerNodeFlags(), path.join(ROOT, 'bin', 'lakebase-worker.js'), 'worker', '--config', configFile], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, LOG_LEVEL: process.env.BENCH_WORKER_LOG_LEVEL ?? 'warn' },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the worker process');
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const identity = `${pid}@${os.hostname()}`;
  const deadline = Date.now() + startTimeoutMs;
  while (!(await polling(client, taskQueue, identity))) {
    if (gone) throw new Error(`the worker process exited with ${await exited} before it polled ${taskQueue}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the worker process did not poll ${taskQueue} within ${startTimeoutMs / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const startupPeakRssMb = await peakRssMb(pid);
  let peak = startupPeakRssMb;
  // VmHWM only grows; sampling keeps the last value seen even if the process dies mid-run.
  const sampler = setInterval(() => void peakRssMb(pid).then((mb) => mb !== null && (peak = Math.max(peak ?? 0, mb))), 100);
  return {
    pid,
    identity,
    startupPeakRssMb,
    peakRssMb: () => peak,
    cpuSeconds: () => cpuSeconds(pid),
    async stop() {
      const last = await peakRssMb(pid);
      if (last !== null) peak = Math.max(peak ?? 0, last);
      clearInterval(sampler);
      if (!gone) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
