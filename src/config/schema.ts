import { z } from 'zod';
import { pemFields } from './pem';

// Numbers arrive as strings after ${ENV} interpolation ("5432"); accept those, reject the rest.
const fromNumericString = (v: unknown) => (typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v);

const port = z.preprocess(
  fromNumericString,
  z.int({ error: 'expected an integer 1–65535' }).min(1, 'expected an integer 1–65535').max(65535, 'expected an integer 1–65535'),
);
const positiveInt = (what: string, max = 1_000_000_000) =>
  z.preprocess(fromNumericString, z.int({ error: `expected ${what}` }).min(1, `expected ${what}`).max(max, `expected ${what}`));

const nonEmpty = (what: string) => z.string({ error: `expected ${what} (a non-empty string)` }).min(1, `expected ${what} (a non-empty string)`);

/** A PostgreSQL identifier path as written in config: `table`, `schema.table`, or with "quoted" parts. */
const tableName = nonEmpty('a table name like schema.table');

export const temporalSchema = z
  .strictObject({
    address: nonEmpty('host:port of the Temporal frontend').default('localhost:7233'),
    namespace: nonEmpty('a Temporal namespace').default('default'),
    taskQueue: nonEmpty('a task queue name').default('lakebase'),
    /** mTLS (Temporal Cloud with certificates, or a secured self-hosted cluster). */
    tls: z.strictObject({ ...pemFields, serverName: z.string().optional() }).optional(),
    /** Temporal Cloud API key (implies TLS). */
    apiKey: z.string().min(1).optional(),
    apiKeyFile: z.string().min(1).optional(),
    /** Encrypt every payload (AES-256-GCM, keys in LAKEBASE_SECRET_KEYS); the UI then needs the codec server. */
    encryptPayloads: z.boolean().default(false),
  })
  .superRefine((t, ctx) => {
    if (t.apiKey && t.apiKeyFile) ctx.addIssue({ code: 'custom', path: ['apiKey'], message: 'give apiKey or apiKeyFile, not both' });
    if (t.tls && !(t.tls.cert || t.tls.certFile) !== !(t.tls.key || t.tls.keyFile))
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'a client certificate needs both cert (or certFile) and key (or keyFile)' });
  });

/** `https://<workspace>` or a bare host name; http:// only for a local emulator. */
const workspaceHost = z
  .string({ error: 'expected the workspace URL, e.g. https://dbc-1234.cloud.databricks.com' })
  .min(1, 'expected the workspace URL, e.g. https://dbc-1234.cloud.databricks.com')
  .transform((v) => (/^https?:\/\//.test(v) ? v : `https://${v}`).replace(/\/+$/, ''))
  .refine((v) => URL.canParse(v), 'expected a URL like https://dbc-1234.cloud.databricks.com');

export const patAuthSchema = z.strictObject({
  method: z.literal('pat'),
  /** A Databricks personal access token (or, for plain PostgreSQL, its password). */
  token: z.string().min(1, 'expected a non-empty token; set it inline, as ${DATABRICKS_TOKEN}, or use tokenFile').optional(),
  tokenFile: nonEmpty('a path to a file holding the token').optional(),
  /** Needed only when an environment exchanges the token for a database credential. */
  workspaceHost: workspaceHost.optional(),
});

export const m2mAuthSchema = z.strictObject({
  method: z.literal('m2m'),
  workspaceHost,
  /** The service principal's application (client) id; also its Postgres user name. */
  clientId: nonEmpty('the service principal application id'),
  clientSecret: z.string().min(1, 'expected a non-empty clientSecret, e.g. ${DATABRICKS_CLIENT_SECRET}').optional(),
  clientSecretFile: nonEmpty('a path to a file holding the client secret').optional(),
  /** Use the account-level endpoint /oidc/accounts/<accountId>/v1/token instead of the workspace one. */
  accountId: nonEmpty('a Databricks account id').optional(),
});

export const subjectTokenSchema = z.discriminatedUnion(
  'source',
  [
    z.strictObject({
      source: z.literal('static'),
      token: z.string().min(1, 'expected a non-empty IdP token').optional(),
      /** Re-read on every exchange, so a rotated workload-identity token is picked up. */
      tokenFile: nonEmpty('a path to a file holding the IdP JWT').optional(),
      /** The platform writes tokenFile after the worker starts (a projected token): a missing file at load is a warning. */
      tokenFileWrittenLater: z.boolean().optional(),
    }),
    /** The IdP token of the person who starts the job, carried (sealed) with the workflow input. */
    z.strictObject({ source: z.literal('login-idp') }),
  ],
  { error: (iss) => (iss.code === 'invalid_union' ? 'expected source: static or source: login-idp' : undefined) },
);

export const federationAuthSchema = z.strictObject({
  method: z.literal('federation'),
  workspaceHost,
  /** Set for workload identity federation (a service principal's policy); omit for account-wide user federation. */
  clientId: nonEmpty('the service principal application id').optional(),
  accountId: nonEmpty('a Databricks account id').optional(),
  subjectToken: subjectTokenSchema,
});

/**
 * Databricks unified auth: fields given here win, then DATABRICKS_* variables, then a profile of
 * ~/.databrickscfg (DATABRICKS_CONFIG_FILE); PAT if a token is found, else OAuth M2M
 * (src/auth/unifiedAuth.ts). Secrets are never written here: they come from the environment or the file.
 */
export const databricksAuthSchema = z.strictObject({
  method: z.literal('databricks'),
  /** A section of ~/.databrickscfg; default DATABRICKS_CONFIG_PROFILE, else DEFAULT. */
  profile: nonEmpty('a ~/.databrickscfg profile name').optional(),
  host: workspaceHost.optional(),
  clientId: nonEmpty('the service principal application id').optional(),
  accountId: nonEmpty('a Databricks account id').optional(),
});

/**
 * A native Postgres password role (Lakebase "Manage Postgres roles"): no token exchange, no hourly
 * rotation; for the PgBouncer pooler (which does not take OAuth roles) or very long connections.
 */
export const passwordAuthSchema = z.strictObject({
  method: z.literal('password'),
  password: z.string().min(1, 'expected a non-empty password; set it as ${PGPASSWORD} or use passwordFile; a server that asks for none (trust, peer) takes auth: { method: none }').optional(),
  /** Re-read periodically, so a rotated password file is picked up by new connections. */
  passwordFile: nonEmpty('a path to a file holding the password').optional(),
});

/** A plain PostgreSQL that asks for no password (trust or peer auth, e.g. a local server): nothing is sent. */
export const noneAuthSchema = z.strictObject({ method: z.literal('none') });

export const authSchema = z.discriminatedUnion('method', [patAuthSchema, m2mAuthSchema, federationAuthSchema, databricksAuthSchema, passwordAuthSchema, noneAuthSchema], {
  error: (iss) => (iss.code === 'invalid_union' ? 'expected method: pat, m2m, federation, databricks, password or none' : undefined),
});

/**
 * The Unity Catalog catalog registered for this database: READ_ONLY credentials then name the tables
 * they may read as `<catalog>.<schema>.<table>`; without it they are read-only but not table-scoped.
 */
const ucCatalog = z.string().trim().min(1, 'expected the Unity Catalog catalog name of this database').optional();

/** Exchange the OAuth token for a Postgres credential (Lakebase database credential APIs). */
export const credentialSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('provisioned'), instanceName: nonEmpty('the database instance name'), catalog: ucCatalog }),
    z.strictObject({
      type: z.literal('autoscaling'),
      endpoint: nonEmpty('the endpoint resource name, e.g. projects/p/branches/b/endpoints/e'),
      /** Requested credential lifetime; the API accepts 300–3600 seconds (Generate Database Credential). */
      ttlSeconds: z.preprocess(fromNumericString, z.int({ error: 'expected 300–3600 seconds' }).min(300, 'expected 300–3600 seconds').max(3600, 'expected 300–3600 seconds')).optional(),
      catalog: ucCatalog,
    }),
  ],
  { error: (iss) => (iss.code === 'invalid_union' ? 'expected type: provisioned or type: autoscaling' : undefined) },
);

export const sslSchema = z.strictObject({
  mode: z.enum(['disable', 'require', 'verify-ca', 'verify-full'], {
    error: 'expected one of disable, require, verify-ca, verify-full',
  }).default('verify-full'),
  ...pemFields,
});

const resourceId = (what: string) => z.string({ error: `expected ${what}` }).regex(/^[a-z0-9][a-z0-9-]*$/i, `expected ${what} (letters, digits and -)`);

// `poolMax` was the name of maxConnections before sync engine v2; old configs keep working.
const renamePoolMax = (v: unknown) => {
  if (!v || typeof v !== 'object' || !('poolMax' in v)) return v;
  const { poolMax, ...rest } = v as Record<string, unknown>;
  return 'maxConnections' in rest ? v : { ...rest, maxConnections: poolMax };
};

export const environmentSchema = z.preprocess(renamePoolMax, z.strictObject({
  /** The Postgres host; or leave it out and name an Autoscaling project/branch/endpoint to look it up. */
  host: nonEmpty('a host name, e.g. instance-xxxx.database.cloud.databricks.com').optional(),
  /** Lakebase Autoscaling: projects/{project}/branches/{branch}/endpoints/{endpoint}; the host comes from the Postgres API. */
  project: resourceId('a Lakebase project id').optional(),
  branch: resourceId('a branch id, e.g. production').optional(),
  endpoint: resourceId('an endpoint id').optional(),
  port: port.default(5432),
  database: nonEmpty('a database name').default('databricks_postgres'),
  user: nonEmpty('the Postgres user (an email, or a service principal application id)'),
  defaultSchema: nonEmpty('a schema name').optional(),
  // Verified by default: the password sent inside is an OAuth token (or the PAT itself).
  ssl: sslSchema.default({ mode: 'verify-full' }),
  statementTimeoutMs: positiveInt('a timeout in milliseconds (integer ≥ 1)').default(300_000),
  /**
   * Connections this worker opens to this environment at most (pool size and the budget parallel
   * sync chunks share). Lakebase's built-in pooler does not take OAuth roles, so the worker is the pooler.
   */
  maxConnections: positiveInt('a connection count (integer 1–1000)', 1000).default(10),
  /** Close pooled connections idle this long (Lakebase closes idle sessions itself, too). */
  idleTimeoutMs: positiveInt('a timeout in milliseconds (integer ≥ 1)').default(30_000),
  /**
   * Close a pooled connection once it is this old, on release. Lakebase may close connections older
   * than 3 days and closes those idle 24 hours (docs: Authentication, "Connection timeouts"); retiring
   * them first means a query never meets a connection the server has just dropped.
   */
  maxConnectionLifetimeMs: positiveInt('a lifetime in milliseconds (integer 1000–259200000, i.e. at most 3 days)', 3 * 24 * 3600_000).default(12 * 3600_000),
  /**
   * Scale to zero: how long a login may keep meeting a waking compute (refused, timed out, 57P03)
   * before LakebaseComputeWaking; Lakebase documents waking in a few hundred milliseconds.
   */
  computeWakeTimeoutMs: positiveInt('a timeout in milliseconds (integer 1–600000)', 600_000).default(30_000),
  credential: credentialSchema.optional(),
}));

export const profileSchema = z.strictObject({
  /** Without auth, a profile uses Databricks unified auth (DATABRICKS_* variables, ~/.databrickscfg). */
  auth: authSchema.default({ method: 'databricks' }),
  environments: z
    .record(nonEmpty('an environment name'), environmentSchema)
    .refine((envs) => Object.keys(envs).length > 0, 'expected at least one environment, e.g. prod: { host, user }'),
});

export const endpointSchema = z.strictObject({
  profile: nonEmpty('a profile name'),
  environment: nonEmpty('an environment name'),
  table: tableName.optional(),
  query: nonEmpty('a SELECT statement').optional(),
});

export const transformSchema = z.strictObject({
  /** target column → SQL expression over source columns, pushed into the source SELECT. */
  columns: z.record(z.string().min(1), nonEmpty('a SQL expression')).default({}),
  /** source column → target column. */
  rename: z.record(z.string().min(1), nonEmpty('a target column name')).default({}),
  /** Source columns not to copy. */
  exclude: z.array(z.string().min(1)).default([]),
  /** Name of a TypeScript row transform registered with the worker. */
  rowTransform: nonEmpty('the name of a registered row transform').optional(),
});

/** Slot names allow lower-case letters, digits and underscores only. */
const slotName = z.string().regex(/^[a-z0-9_]{1,63}$/, 'expected a replication slot name: 1–63 lower-case letters, digits or underscores');

export const cdcSchema = z.strictObject({
  /** Default: lbw_<source database>, one per source database. */
  slot: slotName.optional(),
  /** Default: lbw_<source database>, created by the worker; name one an operator made (creating one needs databricks_superuser on Lakebase). */
  publication: nonEmpty('a publication name').optional(),
  /** A batch is applied at this many changes or after batchMs, whichever comes first. */
  batchRows: positiveInt('an integer 1–1000000', 1_000_000).default(10_000),
  batchMs: positiveInt('milliseconds 1–600000', 600_000).default(1_000),
  /** cdc status and the logs warn when the slot retains more WAL than this on the source. */
  retainedWalWarnBytes: z.number().int().positive().default(1024 ** 3),
});

export const pipelineSchema = z
  .strictObject({
    source: endpointSchema,
    target: endpointSchema,
    mode: z.enum(['full-refresh', 'append', 'upsert', 'cdc'], { error: 'expected one of full-refresh, append, upsert, cdc' }).default('upsert'),
    /** Key columns; a keyless table works with full-refresh (page ranges) and append with a cursor. */
    key: z.array(nonEmpty('a column name')).min(1, 'expected at least one key column, e.g. key: [id]').optional(),
    /** Monotonic column (e.g. updated_at) for incremental runs; rows are taken after the last committed (cursor, key). */
    cursor: nonEmpty('a column name').optional(),
    /**
     * upsert: rows whose value here is not NULL are deleted from the target instead of written. With
     * `deletes: soft` it is instead a target-only column that marks rows whose key left the source.
     */
    softDeleteColumn: nonEmpty('a column name').optional(),
    /** upsert: what happens to target rows whose key is gone from the source (found by bucketed compare after the chunks). */
    deletes: z.enum(['hard', 'soft', 'ignore'], { error: 'expected one of hard, soft, ignore' }).default('ignore'),
    /**
     * upsert without cursor, populated target: auto compares bucket digests first and copies only
     * what differs when that pays (docs/sync.md, Sync modes); merge always re-reads and merges every row.
     */
    resync: z.enum(['auto', 'merge'], { error: 'expected one of auto, merge' }).default('auto'),
    /** After every sync: compare source and target by key-range buckets (row counts, or counts and row checksums). */
    verify: z.enum(['none', 'counts', 'checksums'], { error: 'expected one of none, counts, checksums' }).default('none'),
    transform: transformSchema.default({ columns: {}, rename: {}, exclude: [] }),
    /** Rows per chunk: one activity, one COPY, one target transaction. */
    batchRows: positiveInt('a chunk size (integer 1–10000000)', 10_000_000).default(100_000),
    /** Partition chunks of this table in flight at once, across every worker on the task queue. */
    parallelism: positiveInt('an integer 1–64', 64).default(4),
    /**
     * What a run does when the source's columns changed since the last run: evolve the target (add
     * new columns as nullable; keep dropped ones, NULL from then on), freeze (fail with
     * LakebaseSchemaChanged), or ignore (leave new columns out). A changed type always fails.
     */
    schemaChanges: z.enum(['evolve', 'freeze', 'ignore'], { error: 'expected one of evolve, freeze, ignore' }).default('evolve'),
    /** Schema in the target database for the sync state table. */
    stateSchema: nonEmpty('a schema name').default('lakebase_worker'),
    /** mode cdc: the logical replication slot and publication (shared by the cdc pipelines of one source database) and how changes are batched. */
    cdc: cdcSchema.default({ batchRows: 10_000, batchMs: 1_000, retainedWalWarnBytes: 1024 ** 3 }),
  })
  .superRefine((p, ctx) => {
    for (const side of ['source', 'target'] as const) {
      const e = p[side];
      if (side === 'target' && !e.table) ctx.addIssue({ code: 'custom', path: [side, 'table'], message: 'expected the target table name' });
      if (side === 'source' && !e.table && !e.query)
        ctx.addIssue({ code: 'custom', path: [side], message: 'expected either table or query' });
      if (side === 'source' && e.table && e.query)
        ctx.addIssue({ code: 'custom', path: [side], message: 'give table or query, not both' });
    }
    if (p.softDeleteColumn && p.mode !== 'upsert')
      ctx.addIssue({ code: 'custom', path: ['softDeleteColumn'], message: 'soft deletes need mode: upsert' });
    if (p.deletes !== 'ignore' && p.mode !== 'upsert')
      ctx.addIssue({
        code: 'custom',
        path: ['deletes'],
        message: `deletes: ${p.deletes} needs mode: upsert (a full refresh replaces the whole table; append never removes rows)`,
      });
    if (p.deletes === 'soft' && !p.softDeleteColumn)
      ctx.addIssue({
        code: 'custom',
        path: ['softDeleteColumn'],
        message: 'deletes: soft marks rows in a target column: set softDeleteColumn to a nullable timestamptz or boolean column of the target (e.g. deleted_at)',
      });
    if (p.verify !== 'none' && p.transform.rowTransform)
      ctx.addIssue({
        code: 'custom',
        path: ['verify'],
        message: `a row transform runs in the worker, so the source side of a verify cannot apply it: use verify: none with transform.rowTransform "${p.transform.rowTransform}" (SQL transforms under transform.columns verify fine)`,
      });
    if (p.mode === 'cdc') {
      if (!p.key) ctx.addIssue({ code: 'custom', path: ['key'], message: 'mode cdc applies changes by key: expected at least one key column, e.g. key: [id]' });
      if (p.source.query) ctx.addIssue({ code: 'custom', path: ['source'], message: 'mode cdc reads a table\'s changes: give source.table, not a query' });
      if (Object.keys(p.transform.columns).length || p.transform.rowTransform)
        ctx.addIssue({ code: 'custom', path: ['transform'], message: 'mode cdc copies columns as they are (rename and exclude work): SQL expressions and row transforms cannot be applied to streamed changes' });
      if (p.cursor) ctx.addIssue({ code: 'custom', path: ['cursor'], message: 'mode cdc follows the source\'s changes: it needs no cursor' });
    }
    if (!p.key && p.mode === 'upsert')
      ctx.addIssue({ code: 'custom', path: ['key'], message: 'mode upsert merges on a key: expected at least one key column, e.g. key: [id] (full-refresh, and append with a cursor, work without one)' });
    if (!p.key && p.mode === 'append' && !p.cursor)
      ctx.addIssue({ code: 'custom', path: ['cursor'], message: 'append without a key needs a cursor (a column that only grows, e.g. created_at) to tell new rows from copied ones' });
    if (!p.key && p.mode === 'full-refresh' && p.source.query)
      ctx.addIssue({ code: 'custom', path: ['key'], message: 'a full refresh from a source query needs a key to split it into chunks (page ranges need a table)' });
  })
  .transform((p) => ({ ...p, key: p.key ?? [] }));

export const syncGroupSchema = z.strictObject({
  pipelines: z.array(nonEmpty('a pipeline name')).min(1, 'expected at least one pipeline'),
  /** How many tables sync at once. */
  parallelism: positiveInt('an integer 1–100', 100).default(4),
});

export const workerSchema = z.strictObject({
  /** /metrics, /healthz and /readyz on this port (0: off). */
  opsPort: z.preprocess(fromNumericString, z.int().min(0).max(65535, 'expected a port 0–65535')).default(9464),
  /** The Temporal SDK's own Prometheus metrics (task latency, slots, …) on this address, e.g. 0.0.0.0:9465. */
  sdkMetricsAddress: z.string().optional(),
  /** On SIGINT/SIGTERM running activities get this long to finish before they are cancelled. */
  shutdownGraceTime: z.string().default('30 seconds'),
  /**
   * At start, how long to keep retrying a Temporal frontend that does not answer yet (a worker
   * started beside the server, or during its restart) before exiting; 0: exit at once.
   */
  temporalWaitSeconds: z.preprocess(fromNumericString, z.int().min(0).max(86_400, 'expected seconds 0–86400')).default(60),
  maxConcurrentActivities: positiveInt('an integer ≥ 1', 10_000).default(20),
  maxConcurrentWorkflowTasks: positiveInt('an integer ≥ 1', 10_000).default(40),
  /**
   * Temporal Worker Versioning: this worker polls as one build of a worker deployment. Runs of
   * short workflows (jobs, verify, connection tests) stay on the build that started them; syncs
   * and groups move to the current build at their next workflow task (docs/operations.md, "Run it as a fleet").
   */
  deployment: z
    .strictObject({
      name: nonEmpty('a worker deployment name, e.g. lakebase-worker'),
      /** Defaults to the package version plus a hash of the workflow bundle: same workflow code, same id. */
      buildId: nonEmpty('a build id').optional(),
    })
    .optional(),
});

export const jobParamSchema = z.strictObject({
  type: z.enum(['text', 'integer', 'number', 'boolean', 'date', 'timestamp', 'uuid', 'json'], {
    error: 'expected one of text, integer, number, boolean, date, timestamp, uuid, json',
  }),
  required: z.boolean().default(true),
  default: z.union([z.string(), z.number(), z.boolean()]).optional(),
  description: z.string().optional(),
  /** text: a regular expression the whole value must match. */
  pattern: z.string().optional(),
  maxLength: positiveInt('a length (integer ≥ 1)').optional(),
  min: z.number().optional(),
  max: z.number().optional(),
});

const durationText = z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h|d|seconds?|minutes?|hours?|days?)$/, 'expected a duration like "30 seconds" or "5m"');

export const jobStepSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z][\w-]*$/, 'expected a step name of letters, digits, - and _'),
  /** read: a SELECT whose rows later steps can use; write: DML; transform: SQL or a registered TS function; sql: DDL/maintenance. */
  kind: z.enum(['read', 'transform', 'write', 'sql'], { error: 'expected one of read, transform, write, sql' }).default('sql'),
  /** SQL with :name placeholders for job parameters and :step.column for a read step's first-row values; all bound, never interpolated. */
  sql: z.string().min(1).optional(),
  /** transform steps: a TypeScript function registered with the worker. */
  function: nonEmpty('the name of a registered job function').optional(),
  /** read steps: keep the rows in this table (created by the step) instead of returning them; for large results. */
  into: nonEmpty('a table name').optional(),
  /** Steps naming the same transaction run in one database transaction: all commit, or none. */
  transaction: nonEmpty('a transaction group name').optional(),
  timeout: durationText.default('10 minutes'),
  retry: z
    .strictObject({
      maximumAttempts: positiveInt('an integer ≥ 1').optional(),
      initialInterval: durationText.optional(),
      maximumInterval: durationText.optional(),
    })
    .default({}),
});

export const jobSchema = z
  .strictObject({
    description: z.string().optional(),
    profile: nonEmpty('a profile name'),
    environment: nonEmpty('an environment name'),
    params: z.record(z.string().regex(/^[A-Za-z_]\w*$/, 'expected a parameter name of letters, digits and _'), jobParamSchema).default({}),
    /** Wait for an `approve` before the first write step. */
    approval: z.boolean().default(false),
    /** Identities (names under `identities`) whose signed approval counts; default: every configured identity. */
    approvers: z.array(nonEmpty('an identity name')).min(1).optional(),
    /** Let the identity that started the job approve it too (default: someone else must). */
    allowSelfApproval: z.boolean().default(false),
    steps: z.array(jobStepSchema).min(1, 'expected at least one step'),
  })
  .superRefine((j, ctx) => {
    const names = new Set<string>();
    j.steps.forEach((s, i) => {
      if (names.has(s.name)) ctx.addIssue({ code: 'custom', path: ['steps', i, 'name'], message: `duplicate step name "${s.name}"` });
      names.add(s.name);
      if (s.kind === 'transform' ? !s.sql === !s.function : !s.sql)
        ctx.addIssue({ code: 'custom', path: ['steps', i], message: s.kind === 'transform' ? 'expected sql or function' : 'expected sql' });
      if (s.into && s.kind !== 'read') ctx.addIssue({ code: 'custom', path: ['steps', i, 'into'], message: 'only read steps keep rows in a table' });
    });
    // A transaction group must be consecutive steps.
    let prev: string | undefined;
    const closed = new Set<string>();
    j.steps.forEach((s, i) => {
      if (prev && s.transaction !== prev) closed.add(prev);
      if (s.transaction && closed.has(s.transaction))
        ctx.addIssue({ code: 'custom', path: ['steps', i, 'transaction'], message: `steps of transaction "${s.transaction}" must be consecutive` });
      prev = s.transaction;
    });
  });

export const configSchema = z
  .strictObject({
    temporal: temporalSchema.default({ address: 'localhost:7233', namespace: 'default', taskQueue: 'lakebase', encryptPayloads: false }),
    profiles: z.record(nonEmpty('a profile name'), profileSchema).default({}),
    pipelines: z.record(nonEmpty('a pipeline name'), pipelineSchema).default({}),
    /** Multi-table syncs: one child workflow per pipeline, bounded parallelism. */
    syncGroups: z.record(nonEmpty('a group name'), syncGroupSchema).default({}),
    /** Triggered operational jobs: parameterised SQL steps. */
    jobs: z.record(nonEmpty('a job name'), jobSchema).default({}),
    /** People who sign job starts and approvals: name -> Ed25519 public key (PEM, or 32 raw bytes in base64). */
    identities: z.record(nonEmpty('an identity name'), z.strictObject({ publicKey: nonEmpty('an Ed25519 public key') })).default({}),
    worker: workerSchema.default({ opsPort: 9464, shutdownGraceTime: '30 seconds', temporalWaitSeconds: 60, maxConcurrentActivities: 20, maxConcurrentWorkflowTasks: 40 }),
  })
  .superRefine((cfg, ctx) => {
    for (const [name, profile] of Object.entries(cfg.profiles)) {
      const a = profile.auth;
      const at = ['profiles', name, 'auth'];
      if (a.method === 'pat' && (a.token === undefined) === (a.tokenFile === undefined))
        ctx.addIssue({ code: 'custom', path: at, message: 'expected exactly one of token or tokenFile (e.g. token: ${DATABRICKS_TOKEN})' });
      if (a.method === 'password' && (a.password === undefined) === (a.passwordFile === undefined))
        ctx.addIssue({ code: 'custom', path: at, message: 'expected exactly one of password or passwordFile (e.g. password: ${LAKEBASE_PASSWORD})' });
      if (a.method === 'm2m' && (a.clientSecret === undefined) === (a.clientSecretFile === undefined))
        ctx.addIssue({ code: 'custom', path: at, message: 'expected exactly one of clientSecret or clientSecretFile (e.g. clientSecret: ${DATABRICKS_CLIENT_SECRET})' });
      if (a.method === 'federation' && a.subjectToken.source === 'static' && !a.subjectToken.token === !a.subjectToken.tokenFile)
        ctx.addIssue({ code: 'custom', path: [...at, 'subjectToken'], message: 'expected exactly one of token or tokenFile' });
      for (const [envName, env] of Object.entries(profile.environments)) {
        const ep = ['profiles', name, 'environments', envName];
        const named = [env.project, env.branch, env.endpoint].filter(Boolean).length;
        if (named > 0 && named < 3)
          ctx.addIssue({ code: 'custom', path: ep, message: 'an Autoscaling environment names all of project, branch and endpoint' });
        if (named === 3 && env.host) ctx.addIssue({ code: 'custom', path: [...ep, 'host'], message: 'give host or project/branch/endpoint, not both' });
        if (named === 0 && !env.host) ctx.addIssue({ code: 'custom', path: [...ep, 'host'], message: 'expected host, or project, branch and endpoint of a Lakebase Autoscaling compute' });
        if (named === 3 && (a.method === 'password' || a.method === 'none'))
          ctx.addIssue({ code: 'custom', path: [...ep, 'project'], message: `looking up the host needs a Databricks token: use host with ${a.method === 'none' ? 'method none' : 'a password role'}` });
        if (named === 3 && a.method === 'pat' && !a.workspaceHost)
          ctx.addIssue({ code: 'custom', path: [...at, 'workspaceHost'], message: `environment "${envName}" looks its host up through the Postgres API: set workspaceHost` });
        // method: databricks finds its host at run time (env or ~/.databrickscfg), so it is not checked here.
        if (env.credential && (a.method === 'password' || a.method === 'none'))
          ctx.addIssue({ code: 'custom', path: ['profiles', name, 'environments', envName, 'credential'], message: a.method === 'none' ? 'method none sends no password, so there is no token to exchange: remove credential, or use an OAuth method' : 'a password role logs in with its own password: remove credential, or use an OAuth method' });
        if (env.credential && a.method === 'pat' && !a.workspaceHost)
          ctx.addIssue({
            code: 'custom',
            path: [...at, 'workspaceHost'],
            message: `environment "${envName}" exchanges the token for a database credential: set workspaceHost to call the credential API`,
          });
      }
    }
    for (const [name, p] of Object.entries(cfg.pipelines)) {
      for (const side of ['source', 'target'] as const) {
        const { profile, environment } = p[side];
        const prof = cfg.profiles[profile];
        if (!prof) {
          ctx.addIssue({
            code: 'custom',
            path: ['pipelines', name, side, 'profile'],
            message: `unknown profile "${profile}"; defined profiles: ${Object.keys(cfg.profiles).join(', ') || '(none)'}`,
          });
        } else if (!prof.environments[environment]) {
          ctx.addIssue({
            code: 'custom',
            path: ['pipelines', name, side, 'environment'],
            message: `profile "${profile}" has no environment "${environment}"; defined: ${Object.keys(prof.environments).join(', ')}`,
          });
        }
      }
    }
    for (const [name, j] of Object.entries(cfg.jobs)) {
      const prof = cfg.profiles[j.profile];
      if (!prof) ctx.addIssue({ code: 'custom', path: ['jobs', name, 'profile'], message: `unknown profile "${j.profile}"; defined profiles: ${Object.keys(cfg.profiles).join(', ') || '(none)'}` });
      else if (!prof.environments[j.environment])
        ctx.addIssue({ code: 'custom', path: ['jobs', name, 'environment'], message: `profile "${j.profile}" has no environment "${j.environment}"; defined: ${Object.keys(prof.environments).join(', ')}` });
    }
    for (const [name, g] of Object.entries(cfg.syncGroups)) {
      g.pipelines.forEach((p, i) => {
        if (!cfg.pipelines[p])
          ctx.addIssue({ code: 'custom', path: ['syncGroups', name, 'pipelines', i], message: `unknown pipeline "${p}"; defined: ${Object.keys(cfg.pipelines).join(', ') || '(none)'}` });
      });
      const dupes = g.pipelines.filter((p, i) => g.pipelines.indexOf(p) !== i);
      if (dupes.length) ctx.addIssue({ code: 'custom', path: ['syncGroups', name, 'pipelines'], message: `pipeline listed twice: ${dupes.join(', ')}` });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type JobConfig = z.infer<typeof jobSchema>;
export type JobParamConfig = z.infer<typeof jobParamSchema>;
export type JobStepConfig = z.infer<typeof jobStepSchema>;
export type TemporalConfig = z.infer<typeof temporalSchema>;
export type Profile = z.infer<typeof profileSchema>;
export type EnvironmentConfig = z.infer<typeof environmentSchema>;
export type PipelineConfig = z.infer<typeof pipelineSchema>;
export type SyncGroupConfig = z.infer<typeof syncGroupSchema>;
export type AuthConfig = z.infer<typeof authSchema>;
export type CredentialConfig = z.infer<typeof credentialSchema>;
