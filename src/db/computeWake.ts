import { setTimeout as sleep } from 'node:timers/promises';
import { RETRYABLE_FAILURES } from '../failureTypes';

/**
 * Scale to zero (docs: Lakebase "Scale to zero"): a suspended compute wakes on the next connection,
 * documented as within a few hundred milliseconds. While it wakes a login can be refused
 * (ECONNREFUSED), time out, or be answered 57P03 (cannot_connect_now). Those are retried here with
 * a short backoff instead of being reported as a broken connection; past a bounded wait the
 * failure is LakebaseComputeWaking (retryable) with what to check.
 */

const WAKING_CODES = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'ECONNRESET', '57P03']);

export function isComputeWaking(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (e?.code && WAKING_CODES.has(e.code)) return true;
  // pg's own connect timeout has no code.
  return /timeout expired|Connection terminated due to connection timeout/i.test(e?.message ?? '');
}

export class LakebaseComputeWaking extends Error {
  override name = 'LakebaseComputeWaking';
  readonly type = RETRYABLE_FAILURES.computeWaking;
  readonly retryable = true;
  readonly fix: string;
  constructor(where: string, waitedMs: number, attempts: number, last: string) {
    const fix =
      `the compute did not accept connections within ${waitedMs} ms (${attempts} attempts). A scale-to-zero compute normally ` +
      'wakes in a few hundred milliseconds: check in the Lakebase console that the endpoint is not disabled and that its branch exists, ' +
      "or raise the environment's computeWakeTimeoutMs if waking takes longer";
    super(`${where}: ${fix}; last error: ${last}`);
    this.fix = fix;
  }
}

export interface WakeOptions {
  /** Give up after this long in total. */
  maxWaitMs: number;
  /** Called before each retry (logs, heartbeats). */
  onWaiting?: (attempt: number, err: unknown) => void;
  firstDelayMs?: number;
  maxDelayMs?: number;
}

/** Runs `connect`, retrying while the compute looks like it is waking. */
export async function connectWhileWaking<T>(where: string, connect: () => Promise<T>, opts: WakeOptions): Promise<T> {
  const started = Date.now();
  let delay = opts.firstDelayMs ?? 100;
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect();
    } catch (err) {
      if (!isComputeWaking(err)) throw err;
      const waited = Date.now() - started;
      if (waited + delay > opts.maxWaitMs) throw new LakebaseComputeWaking(where, waited, attempt, (err as Error).message);
      opts.onWaiting?.(attempt, err);
      await sleep(delay);
      delay = Math.min(delay * 2, opts.maxDelayMs ?? 1000);
    }
  }
}
