import { activityContext } from './context';
import { callFailure, type CallLabel } from './failures';

/**
 * The one way an activity runs: resolve what it needs and run it (both in `run`), then map any
 * failure to a typed ApplicationFailure, or to a CancelledFailure when the call was cancelled
 * (activities/failures.ts decides which). The label is read only on failure, so it may name the
 * step a multi-step call had reached.
 */
export async function runActivity<R>(label: CallLabel | (() => CallLabel), run: () => Promise<R>): Promise<R> {
  try {
    return await run();
  } catch (err) {
    throw callFailure(err, typeof label === 'function' ? label() : label, activityContext()?.cancellationSignal.aborted ?? false);
  }
}
