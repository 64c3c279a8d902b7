import { z } from 'zod';

/**
 * The Lakebase Postgres API calls a branch run needs (docs: Postgres API reference — Create/Get/
 * Delete Branch, List/Create Endpoint, Get Operation; see docs/lakebase.md). It sits next to the
 * credential and Get Endpoint calls (auth/databricks.ts) because it shares their bearer token and
 * error body `{error_code, message}`. Mutations answer with a long-running Operation
 * `{name, done, error?, response?}` that is polled through Get Operation.
 */

export class PostgresApiError extends Error {
  override name = 'PostgresApiError';
  constructor(
    message: string,
    /** HTTP status; undefined when no answer came (DNS, refused, timeout). */
    readonly status: number | undefined,
    readonly errorCode?: string,
    /** Seconds from a Retry-After header. */
    readonly retryAfter?: number,
    /** The long-running operation itself reported failure (the request was accepted; Lakebase could not do the work). */
    readonly operationFailed = false,
  ) {
    super(message);
  }
}

const apiError = z.object({ error_code: z.string().optional(), message: z.string().optional() });

export const operationSchema = z.object({
  name: z.string().min(1),
  done: z.boolean().optional(),
  error: apiError.optional(),
  response: z.unknown().optional(),
});
export type Operation = z.infer<typeof operationSchema>;

export const branchSchema = z.object({
  name: z.string().min(1),
  create_time: z.string().optional(),
  status: z
    .object({
      current_state: z.string().optional(),
      source_branch: z.string().optional(),
      expire_time: z.string().optional(),
    })
    .optional(),
});
export type Branch = z.infer<typeof branchSchema>;

export const endpointSchema = z.object({
  name: z.string().min(1),
  status: z.object({ endpoint_type: z.string().optional(), current_state: z.string().optional() }).optional(),
  spec: z.object({ endpoint_type: z.string().optional() }).optional(),
});
export type Endpoint = z.infer<typeof endpointSchema>;

/** The read-write type as the current reference writes it; older SDKs used READ_WRITE. */
export const READ_WRITE = 'ENDPOINT_TYPE_READ_WRITE';
export const isReadWrite = (e: Endpoint) => [e.status?.endpoint_type, e.spec?.endpoint_type].some((t) => t === READ_WRITE || t === 'READ_WRITE');

export interface PostgresApi {
  getBranch(name: string): Promise<Branch | undefined>;
  /** POST /api/2.0/postgres/{project}/branches?branch_id=…; the body is the Branch resource. */
  createBranch(project: string, branchId: string, spec: Record<string, unknown>): Promise<Operation>;
  /** An Operation, or undefined when the branch is already gone (404). */
  deleteBranch(name: string): Promise<Operation | undefined>;
  listEndpoints(branch: string): Promise<Endpoint[]>;
  createEndpoint(branch: string, endpointId: string, spec: Record<string, unknown>): Promise<Operation>;
  getOperation(name: string): Promise<Operation>;
}

const pathOf = (name: string) => `/api/2.0/postgres/${name.split('/').map(encodeURIComponent).join('/')}`;

export function createPostgresApi(workspaceHost: string, bearer: string, opts: { timeoutMs?: number } = {}): PostgresApi {
  async function call<T>(method: string, path: string, schema: z.ZodType<T>, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${workspaceHost}${path}`, {
        method,
        headers: { authorization: `Bearer ${bearer}`, accept: 'application/json', ...(body !== undefined && { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new PostgresApiError(`Postgres API ${method} ${path} failed: ${(err as Error).message}`, undefined);
    }
    const json: unknown = await res.json().catch(() => ({}));
    if (!res.ok) {
      const e = apiError.safeParse(json);
      const code = e.success ? e.data.error_code : undefined;
      const retryAfter = Number(res.headers.get('retry-after'));
      throw new PostgresApiError(
        `Postgres API ${method} ${path} answered HTTP ${res.status}: ${code ?? ''} ${(e.success && e.data.message) || ''}`.replace(/\s+$/, ''),
        res.status,
        code,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
      );
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new PostgresApiError(`Postgres API ${method} ${path} returned an unexpected body (${parsed.error.issues[0]?.path.join('.') || 'root'}: ${parsed.error.issues[0]?.message})`, res.status);
    return parsed.data;
  }

  return {
    async getBranch(name) {
      try {
        return await call('GET', pathOf(name), branchSchema);
      } catch (err) {
        if (err instanceof PostgresApiError && err.status === 404) return undefined;
        throw err;
      }
    },
    createBranch: (project, branchId, spec) =>
      call('POST', `${pathOf(`projects/${project}`)}/branches?branch_id=${encodeURIComponent(branchId)}`, operationSchema, { spec }),
    async deleteBranch(name) {
      try {
        return await call('DELETE', pathOf(name), operationSchema);
      } catch (err) {
        if (err instanceof PostgresApiError && err.status === 404) return undefined;
        throw err;
      }
    },
    listEndpoints: async (branch) => (await call('GET', `${pathOf(branch)}/endpoints`, z.object({ endpoints: z.array(endpointSchema).default([]) }))).endpoints,
    createEndpoint: (branch, endpointId, spec) =>
      call('POST', `${pathOf(branch)}/endpoints?endpoint_id=${encodeURIComponent(endpointId)}`, operationSchema, { spec }),
    getOperation: (name) => call('GET', pathOf(name), operationSchema),
  };
}

/**
 * Polls a long-running operation until it is done; its error becomes a PostgresApiError (status
 * undefined, the operation's error_code kept). `onPoll` runs before each wait (heartbeats).
 */
export async function waitForOperation(api: PostgresApi, op: Operation, opts: { timeoutMs: number; onPoll?: (op: Operation) => void; firstDelayMs?: number }): Promise<unknown> {
  const started = Date.now();
  let delay = opts.firstDelayMs ?? 200;
  let current = op;
  while (!current.done) {
    if (Date.now() - started > opts.timeoutMs) throw new PostgresApiError(`operation ${current.name} not done after ${opts.timeoutMs} ms`, 504, 'DEADLINE_EXCEEDED');
    opts.onPoll?.(current);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 5_000);
    current = await api.getOperation(current.name);
  }
  if (current.error) throw new PostgresApiError(`operation ${current.name} failed: ${current.error.error_code ?? ''} ${current.error.message ?? ''}`.trim(), undefined, current.error.error_code, undefined, true);
  return current.response;
}
