import type { Context } from '@temporalio/activity';
import { activityContext } from './context';
import { callFailure, type CallLabel } from './failures';

/**
 * The one way an activity runs: resolve what it needs and run it (both in `run`), then map any
 * failure to a typed ApplicationFailure, or to a CancelledFailure when the call was cancelled
 * (activities/failures.ts decides which). The label is read only on failure, so it may name the
 * step a multi-step call had reached.
 */
export async function runActivity<R>(label: CallLabel | (() => CallLabel), run: () => Promise<R>): Promise<R> {
  const stopBeating = beatUntilOwnHeartbeat(activityContext());
  try {
    return await run();
  } catch (err) {
    throw callFailure(err, typeof label === 'function' ? label() : label, activityContext()?.cancellationSignal.aborted ?? false);
  } finally {
    stopBeating();
  }
}

/** How often to heartbeat against a heartbeat timeout: a third of it, between 0.1 and 5 s. */
export const heartbeatEvery = (timeoutMs: number): number => Math.min(5_000, Math.max(100, timeoutMs / 3));

/**
 * Heartbeats on a timer (a third of the heartbeat timeout, at most 5 s) until the activity sends a
 * heartbeat of its own. A step that streams nothing (a plan, a swap and its index builds, a join's
 * wait) is then seen alive, and a dead worker's step is retried within the heartbeat timeout
 * instead of its start-to-close (10 minutes: seen stalling a sync whose worker was killed in
 * finishSync). Activities that heartbeat their progress keep their own stall detection: the timer
 * stops at their first beat.
 */
export function beatUntilOwnHeartbeat(ctx: Context | undefined): () => void {
  const timeoutMs = ctx?.info.heartbeatTimeoutMs;
  if (!ctx || !timeoutMs || ctx.info.isLocal) return () => undefined;
  const own = ctx.heartbeat;
  const writable = ctx as { heartbeat: (details?: unknown) => void };
  const stop = () => {
    clearInterval(timer);
    if (writable.heartbeat === mine) writable.heartbeat = own;
  };
  const mine = (details?: unknown) => {
    stop();
    own(details);
  };
  const timer = setInterval(() => own(), heartbeatEvery(timeoutMs));
  writable.heartbeat = mine;
  own();
  return stop;
}
