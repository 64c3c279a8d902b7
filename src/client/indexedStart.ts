import type { Client, Workflow, WorkflowHandle, WorkflowStartOptions } from '@temporalio/client';
import { TypedSearchAttributes, type SearchAttributePair } from '@temporalio/common';

/** Every message of an error and its causes, for matching server answers the SDK wraps (it puts them in `cause`). */
function messageChain(err: unknown): string {
  const parts: string[] = [];
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) parts.push(e.message, String((e as { details?: unknown }).details ?? ''));
  return parts.join(' | ');
}

/** The server's answers to a start naming search attributes the namespace does not have (wordings of several server versions). */
export const UNREGISTERED_SEARCH_ATTRIBUTE = /no mapping defined for search attribute|search attribute .* is not defined|not a valid search attribute/i;

/**
 * Starts a workflow with our search attributes; on a cluster where they are not registered yet,
 * starts it without them and says how to register them (the UI then cannot filter on them).
 */
export async function startIndexed<T extends Workflow>(
  client: Client,
  type: string,
  options: Omit<WorkflowStartOptions<T>, 'typedSearchAttributes'>,
  attributes: SearchAttributePair[],
): Promise<WorkflowHandle<T>> {
  try {
    return await client.workflow.start<T>(type, { ...options, typedSearchAttributes: new TypedSearchAttributes(attributes) } as WorkflowStartOptions<T>);
  } catch (err) {
    if (!UNREGISTERED_SEARCH_ATTRIBUTE.test(messageChain(err))) throw err;
    process.emitWarning(
      `Lakebase search attributes are not registered on this Temporal namespace (${options.workflowId}: started without them); run \`lakebase-worker setup\` or start a worker (it registers them where the namespace allows) so the UI can filter on them.`,
    );
    return client.workflow.start<T>(type, options as WorkflowStartOptions<T>);
  }
}
