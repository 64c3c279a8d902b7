import { ApplicationFailure, setCurrentDetails } from '@temporalio/workflow';
import type { JobAuth } from '../activities/types';
import { WORKFLOW_FAILURES } from '../failureTypes';
import { testConnection as check } from './activityCalls';


export interface TestConnectionInput {
  profile: string;
  environment: string;
  auth?: JobAuth;
  /** A cdc pipeline whose source this is: its cdc checks too (cdc start --dry-run). */
  pipeline?: string;
}

/** Test Connection runnable from the Temporal UI or a client; fails with the failing step and its fix. */
export async function testConnection(input: TestConnectionInput) {
  const report = await check(input);
  setCurrentDetails(
    report.steps.map((s) => `${s.skipped ? '·' : s.ok ? '✓' : '✗'} **${s.step}** ${s.skipped ? '' : `(${s.ms} ms)`} ${s.detail}${s.fix ? ` — fix: ${s.fix}` : ''}`).join('\n\n'),
  );
  const failed = report.steps.find((s) => !s.ok && !s.skipped);
  if (failed) {
    throw ApplicationFailure.create({
      type: WORKFLOW_FAILURES.connectionTestFailed,
      nonRetryable: true,
      message: `${input.profile}/${input.environment}: ${failed.step} failed: ${failed.detail}${failed.fix ? ` — fix: ${failed.fix}` : ''}`,
      details: [report],
    });
  }
  return report;
}
