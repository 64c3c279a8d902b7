import { Context } from '@temporalio/activity';

/** The running activity's context, or undefined when called directly (tests, tools): no heartbeats, no cancellation. */
export function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}
