import { ApplicationFailure, Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { loadSealPublicKey, seal } from '../auth/sealed';
import type { TemporalConfig } from '../config/schema';
import type { ConnectionReport } from '../db/diagnose';
import { activeTracing } from '../telemetry/tracingSwitch';
import { dataConverterFor, explainTemporalConnectError, registerSearchAttributes, temporalConnectionOptions } from '../temporalConnection';

/** Connects to the configured Temporal; an unreachable server is an error naming the address and what to do. */
export async function connectClient(t: TemporalConfig): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...temporalConnectionOptions(t), connectTimeout: 5_000 });
  } catch (err) {
    throw await explainTemporalConnectError(t.address, err);
  }
  return new Client({
    connection,
    namespace: t.namespace,
    dataConverter: dataConverterFor(t),
    // With tracing on, a workflow start opens the trace and carries it into the workflow.
    // Loaded only then: the CLI pays nothing for tracing it does not use.
    ...(activeTracing() && {
      interceptors: {
        /* eslint-disable-next-line @typescript-eslint/no-require-imports */
        workflow: [new (require('@temporalio/interceptors-opentelemetry/lib/client') as typeof import('@temporalio/interceptors-opentelemetry/lib/client')).OpenTelemetryWorkflowClientInterceptor()],
      },
    }),
  });
}

/** Runs the `testConnection` workflow on a worker and returns its report (a failed check is a report too). */
export async function testConnectionViaWorker(
  client: Client,
  opts: { profile: string; environment: string; taskQueue: string; idpToken?: string; pipeline?: string },
): Promise<ConnectionReport> {
  const workflowId = `test-connection:${opts.profile}:${opts.environment}:${new Date().toISOString()}`;
  const h = await client.workflow.start('testConnection', {
    taskQueue: opts.taskQueue,
    workflowId,
    args: [{ profile: opts.profile, environment: opts.environment, ...(opts.idpToken && { auth: { idpToken: seal(opts.idpToken, loadSealPublicKey(), { workflowId, scope: `connection:${opts.profile}/${opts.environment}` }) } }), ...(opts.pipeline && { pipeline: opts.pipeline }) }],
    staticSummary: `Test connection **${opts.profile}/${opts.environment}**${opts.pipeline ? ` for cdc pipeline **${opts.pipeline}**` : ''}`,
  });
  return (await h.result().catch((err: unknown) => {
    const details = err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure ? err.cause.details?.[0] : undefined;
    if (details) return details;
    throw err;
  })) as ConnectionReport;
}

/** `setup`: registers our search attributes on the client's namespace; returns the names added. */
export function setupSearchAttributes(client: Client): Promise<string[]> {
  return registerSearchAttributes(client.connection.operatorService, client.options.namespace);
}
