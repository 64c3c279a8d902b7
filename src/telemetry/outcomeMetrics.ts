// Worker side of src/telemetry/workflowOutcomes.ts: the sink that counts outcomes.
import type { InjectedSinks } from '@temporalio/worker';
import type { Metrics } from '../metrics';
import type { OutcomeSinks } from './workflowOutcomes';

export function outcomeSinks(metrics: Metrics): InjectedSinks<OutcomeSinks> {
  return {
    lakebaseOutcomes: {
      finished: {
        fn: (_info, o) => metrics.workflowOutcomes.inc({ workflow_type: o.workflowType, name: o.name, outcome: o.outcome, failure_type: o.failureType }),
        callDuringReplay: false,
      },
    },
  };
}
