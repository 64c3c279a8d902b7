import { Command, InvalidArgumentError } from 'commander';
import { ApplicationFailure, ScheduleOverlapPolicy, WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client } from '@temporalio/client';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { JobFunction, RowTransform } from './activities';
import os from 'node:os';
import { approveJob, connectClient, jobProgress, relogin, startJob, startSync, startSyncGroup, syncProgress } from './client';
import { bindJobParams, JobParamError, parseParamArgs } from './config/jobParams';
import { rejectSignal } from './workflows/operationalJob';
import {
  LAKEBASE_SEARCH_ATTRIBUTES,
  LakebaseEnvironment,
  LakebaseJob,
  LakebasePipeline,
  LakebaseProfile,
  LakebaseRowsWritten,
} from './workflows/searchAttributes';
import { createSyncSchedule, describeSchedule, listSchedules } from './schedules';
import { LakebaseEmulator } from './emulator';
import { ConfigError, loadConfigFile, loadDocument } from './config/load';
import { emulatorOptionsSchema } from './emulator/options';
import type { Config } from './config/schema';
import { createCredentialProvider } from './auth/credentials';
import { loadSealingKeys, seal } from './auth/sealed';
import { diagnoseConnection, formatReport, type ConnectionReport } from './db/diagnose';
import { EncryptionCodec } from './codec/encryption';
import { createCodecServer } from './codec/server';
import { runDemo } from './demo';
import { createLogger } from './logger';
import { followProgress, formatProgress } from './progress';
import { cachedBundlePath, runWorker, writeWorkflowBundle } from './worker';

const program = new Command();

function configPath(opts: { config?: string }): string {
  return opts.config ?? process.env.LAKEBASE_CONFIG ?? 'lakebase.yaml';
}

function loadConfig(opts: { config?: string }): Config {
  return loadConfigFile(configPath(opts));
}

/** Connects with the config's Temporal settings, runs `fn`, and always closes the connection. */
async function withClient<R>(config: Config, fn: (client: Client) => Promise<R>): Promise<R> {
  const client = await connectClient(config.temporal);
  try {
    return await fn(client);
  } finally {
    await client.connection.close();
  }
}

function readSecretFile(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError([`${flag}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
}

/**
 * Loads `--transforms <module>`: named row transforms (export `rowTransforms`, or the default
 * export) and TypeScript job steps (export `jobFunctions`).
 */
function loadExtensions(file: string | undefined): { rowTransforms?: Record<string, RowTransform>; jobFunctions?: Record<string, JobFunction> } {
  if (!file) return {};
  const mod = require(path.resolve(file)) as { default?: unknown; rowTransforms?: unknown; jobFunctions?: unknown };
  const check = (table: unknown, what: string) => {
    for (const [name, fn] of Object.entries((table ?? {}) as Record<string, unknown>)) {
      if (typeof fn !== 'function') throw new ConfigError([`--transforms: ${what} "${name}" of ${file} is not a function`]);
    }
    return table as Record<string, never> | undefined;
  };
  return { rowTransforms: check(mod.rowTransforms ?? mod.default, 'row transform'), jobFunctions: check(mod.jobFunctions, 'job function') };
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

program
  .name('lakebase-worker')
  .description('Temporal worker for data-sync workflows and operational SQL jobs on Databricks Lakebase')
  .showHelpAfterError();

program
  .command('worker')
  .description('run a worker: executes syncs and jobs from the configured task queue')
  .option('-c, --config <file>', 'configuration file (YAML or JSON); default $LAKEBASE_CONFIG or lakebase.yaml')
  .option('-t, --transforms <module>', 'JS/TS module exporting `rowTransforms` (or a default export) and `jobFunctions`')
  .action(async (opts: { config?: string; transforms?: string }) => {
    const config = loadConfig(opts);
    await runWorker(config, createLogger(), loadExtensions(opts.transforms));
  });

const sync = program.command('sync').description('data-sync workflows');
sync
  .command('start')
  .description('start a sync of one pipeline')
  .requiredOption('-p, --pipeline <name>', 'pipeline name from the configuration')
  .option('-c, --config <file>', 'configuration file')
  .option('-w, --wait', 'wait for the sync to finish and print its result')
  .option('--idp-token-file <file>', 'login-idp profiles: file holding the IdP token (JWT) of the user the sync runs for')
  .option('-e, --env <environment>', "run both sides against this environment of their profiles (e.g. staging)")
  .action(async (opts: { pipeline: string; config?: string; wait?: boolean; idpTokenFile?: string; env?: string }) => {
    const config = loadConfig(opts);
    if (!config.pipelines[opts.pipeline]) {
      throw new ConfigError([`--pipeline: unknown pipeline "${opts.pipeline}"; configured: ${Object.keys(config.pipelines).join(', ') || '(none)'}`]);
    }
    const idpToken = opts.idpTokenFile ? readSecretFile(opts.idpTokenFile, '--idp-token-file') : undefined;
    await withClient(config, async (client) => {
      const handle = await startSync(client, { pipeline: opts.pipeline, taskQueue: config.temporal.taskQueue, idpToken, config, environment: opts.env });
      console.log(`started ${handle.workflowId}`);
      if (opts.wait) {
        const stop = followProgress(() => syncProgress(client, handle.workflowId));
        console.log(formatProgress(await handle.result().finally(stop)));
      }
    });
  });

sync
  .command('relogin')
  .description('send a fresh IdP token to a sync waiting for re-login (after TOKEN_EXPIRED)')
  .argument('<workflowId>', 'the waiting sync')
  .requiredOption('--idp-token-file <file>', 'file holding the fresh IdP token (JWT)')
  .option('-c, --config <file>', 'configuration file')
  .action(async (workflowId: string, opts: { idpTokenFile: string; config?: string }) => {
    const idpToken = readSecretFile(opts.idpTokenFile, '--idp-token-file');
    const ack = await withClient(loadConfig(opts), (client) => relogin(client, workflowId, idpToken));
    console.log(ack.accepted ? `${workflowId}: fresh IdP token accepted` : `${workflowId}: token not accepted`);
  });

sync
  .command('group')
  .description('sync every pipeline of a sync group (one child workflow per table, bounded parallelism)')
  .requiredOption('-g, --group <name>', 'sync group name from the configuration')
  .option('-c, --config <file>', 'configuration file')
  .option('-w, --wait', 'wait for every table and print the report')
  .action(async (opts: { group: string; config?: string; wait?: boolean }) => {
    const config = loadConfig(opts);
    if (!config.syncGroups[opts.group])
      throw new ConfigError([`--group: unknown sync group "${opts.group}"; configured: ${Object.keys(config.syncGroups).join(', ') || '(none)'}`]);
    await withClient(config, async (client) => {
      const handle = await startSyncGroup(client, { group: opts.group, taskQueue: config.temporal.taskQueue });
      console.log(`started ${handle.workflowId}`);
      if (opts.wait) console.log(JSON.stringify(await handle.result(), null, 2));
    });
  });

const schedule = program.command('schedule').description('Temporal schedules that start syncs (overlap: skip by default)');
const OVERLAP: Record<string, ScheduleOverlapPolicy> = {
  skip: ScheduleOverlapPolicy.SKIP,
  'buffer-one': ScheduleOverlapPolicy.BUFFER_ONE,
  'cancel-other': ScheduleOverlapPolicy.CANCEL_OTHER,
  'allow-all': ScheduleOverlapPolicy.ALLOW_ALL,
};
schedule
  .command('create')
  .description('create a schedule for a pipeline')
  .requiredOption('-p, --pipeline <name>', 'pipeline name')
  .option('--cron <expr>', 'cron expression, e.g. "*/15 * * * *"')
  .option('--every <interval>', 'fixed interval, e.g. "15 minutes"')
  .option('--overlap <policy>', 'skip | buffer-one | cancel-other | allow-all', 'skip')
  .option('--catchup-window <duration>', 'how far back missed runs are caught up', '1 hour')
  .option('--paused', 'create it paused')
  .option('-c, --config <file>', 'configuration file')
  .action((opts: { pipeline: string; cron?: string; every?: string; overlap: string; catchupWindow: string; paused?: boolean; config?: string }) => {
    const config = loadConfig(opts);
    if (!config.pipelines[opts.pipeline]) throw new ConfigError([`--pipeline: unknown pipeline "${opts.pipeline}"`]);
    const overlap = OVERLAP[opts.overlap];
    if (!overlap) throw new ConfigError([`--overlap: expected one of ${Object.keys(OVERLAP).join(', ')}, got "${opts.overlap}"`]);
    return withClient(config, async (client) => {
      const h = await createSyncSchedule(client, { ...opts, overlap, taskQueue: config.temporal.taskQueue, config });
      console.log(describeSchedule(await h.describe()));
    });
  });
schedule
  .command('list')
  .description('list schedules')
  .option('-c, --config <file>', 'configuration file')
  .action((opts: { config?: string }) =>
    withClient(loadConfig(opts), async (client) => {
      for (const s of await listSchedules(client)) console.log(`${s.scheduleId}\t${s.state.paused ? 'paused' : 'active'}\tnext ${s.info.nextActionTimes[0]?.toISOString() ?? '—'}`);
    }),
  );
for (const [name, description] of [
  ['describe', 'show a schedule: spec, policies, next and recent runs'],
  ['pause', 'pause a schedule'],
  ['unpause', 'resume a paused schedule'],
  ['trigger', 'start a run now (overlap policy applies)'],
  ['delete', 'delete a schedule (running syncs continue)'],
] as const) {
  schedule
    .command(name)
    .description(description)
    .argument('<scheduleId>', 'e.g. sync:orders-to-reporting')
    .option('-c, --config <file>', 'configuration file')
    .action((id: string, opts: { config?: string }) =>
      withClient(loadConfig(opts), async (client) => {
        const h = client.schedule.getHandle(id);
        if (name === 'pause') await h.pause('paused from the CLI');
        if (name === 'unpause') await h.unpause('unpaused from the CLI');
        if (name === 'trigger') await h.trigger();
        if (name === 'delete') {
          await h.delete();
          console.log(`${id}: deleted`);
          return;
        }
        console.log(describeSchedule(await h.describe()));
      }),
    );
}
schedule
  .command('backfill')
  .description('run the schedule for a past time range (overlap policy applies)')
  .argument('<scheduleId>', 'e.g. sync:orders-to-reporting')
  .requiredOption('--from <time>', 'ISO time, e.g. 2026-11-01T00:00:00Z')
  .requiredOption('--to <time>', 'ISO time')
  .option('-c, --config <file>', 'configuration file')
  .action((id: string, opts: { from: string; to: string; config?: string }) =>
    withClient(loadConfig(opts), async (client) => {
      const [start, end] = [new Date(opts.from), new Date(opts.to)];
      if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end <= start)
        throw new ConfigError([`--from/--to: expected two ISO times with --from before --to, got "${opts.from}" and "${opts.to}"`]);
      const h = client.schedule.getHandle(id);
      await h.backfill({ start, end, overlap: ScheduleOverlapPolicy.BUFFER_ALL });
      console.log(describeSchedule(await h.describe()));
    }),
  );

program
  .command('codec-server')
  .description('serve /encode and /decode for the Temporal UI and CLI (payload encryption keys from LAKEBASE_SECRET_KEYS)')
  .option('--port <n>', 'port', positive, 8888)
  .option('--ui-origin <url...>', 'browser origin(s) of the Temporal UI allowed to call it', ['http://localhost:8233'])
  .option('--token-file <file>', 'file holding the bearer token callers must send (else $LAKEBASE_CODEC_TOKEN)')
  .action(async (opts: { port: number; uiOrigin: string[]; tokenFile?: string }) => {
    const token = opts.tokenFile ? readSecretFile(opts.tokenFile, '--token-file') : process.env.LAKEBASE_CODEC_TOKEN;
    if (!token) throw new ConfigError(['--token-file: the codec server needs a bearer token (--token-file or LAKEBASE_CODEC_TOKEN); it never runs open']);
    const server = createCodecServer({ codec: new EncryptionCodec(loadSealingKeys()), origins: opts.uiOrigin, token });
    server.listen(opts.port, () => console.log(`codec server on http://localhost:${opts.port} (/encode, /decode) for ${opts.uiOrigin.join(', ')}`));
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    server.close();
  });

program
  .command('bundle')
  .description('bundle the workflow code (the worker does this itself, once per code version, into its cache)')
  .option('-o, --out <file>', 'where to write the bundle (default: the cache the worker reads, e.g. when building an image)')
  .action(async (opts: { out?: string }) => {
    await writeWorkflowBundle(opts.out ?? cachedBundlePath());
  });

program
  .command('emulator')
  .description('run the local Lakebase emulator (Databricks token/credential API + Postgres front)')
  .option('-c, --config <file>', 'emulator options (YAML/JSON): ports, upstream, service principals, users, federation policies')
  .action(async (opts: { config?: string }) => {
    const options = opts.config ? loadDocument(opts.config, emulatorOptionsSchema) : {};
    const emu = await new LakebaseEmulator(options).start();
    console.log(`workspace API:  ${emu.workspaceUrl}   (use as workspaceHost)`);
    console.log(`Postgres front: ${emu.postgres.host}:${emu.postgres.port}   (logins need a valid token as password)`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await emu.stop();
  });

const job = program.command('job').description('triggered operational jobs (parameterised SQL steps)');
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
job
  .command('run')
  .description('run a job; the same job and parameters cannot run twice at once')
  .requiredOption('-j, --job <name>', 'job name from the configuration')
  .option('-p, --param <name=value>', 'a parameter (repeatable)', collect, [] as string[])
  .option('-e, --env <environment>', "override the job's environment, e.g. staging")
  .option('--dry-run', 'validate parameters and print the plan with EXPLAIN for read/write steps; write nothing')
  .option('--idp-token-file <file>', 'login-idp profiles: the IdP token of the user the job runs for')
  .option('-w, --wait', 'wait for the job and print its result')
  .option('-c, --config <file>', 'configuration file')
  .action((opts: { job: string; param: string[]; env?: string; dryRun?: boolean; idpTokenFile?: string; wait?: boolean; config?: string }) => {
    // Fail fast, before connecting, with the same rules the worker applies.
    const config = loadConfig(opts);
    const j = config.jobs[opts.job];
    if (!j) throw new ConfigError([`--job: unknown job "${opts.job}"; configured: ${Object.keys(config.jobs).join(', ') || '(none)'}`]);
    const params = parseParamArgs(opts.param);
    bindJobParams(opts.job, j, params);
    return withClient(config, async (client) => {
      const idpToken = opts.idpTokenFile ? readSecretFile(opts.idpTokenFile, '--idp-token-file') : undefined;
      let handle;
      try {
        handle = await startJob(client, { job: opts.job, params, environment: opts.env, dryRun: opts.dryRun, taskQueue: config.temporal.taskQueue, config, idpToken });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) throw new ConfigError([`job "${opts.job}" with these parameters is already running as ${err.workflowId}; wait for it or cancel it (job cancel ${err.workflowId})`]);
        throw err;
      }
      console.log(`started ${handle.workflowId}`);
      if (opts.wait || opts.dryRun) {
        const result = await handle.result();
        if (result.plan?.explain) for (const e of result.plan.explain) console.log(`\n-- ${e.step}\n${e.plan}`);
        console.log(`\n${opts.job}: ${result.status}; ${result.steps.length} steps, ${result.rowsWritten} rows written`);
        for (const st of result.steps) console.log(`  ${st.name} (${st.kind}): ${st.rowCount} rows${st.rows?.length ? ` — ${JSON.stringify(st.rows.slice(0, 3))}` : ''}`);
      }
    });
  });
for (const [name, description] of [
  ['approve', 'approve a job waiting before its write steps'],
  ['reject', 'reject a job waiting for approval (it fails, writing nothing)'],
  ['cancel', 'cancel a running job; the running step is rolled back'],
] as const) {
  job
    .command(name)
    .description(description)
    .argument('<workflowId>', 'e.g. job:refresh-aggregates:prod:1a2b3c4d5e6f')
    .option('--by <who>', 'who decides (recorded in the workflow)', os.userInfo().username)
    .option('--reason <text>', 'why (reject)')
    .option('-c, --config <file>', 'configuration file')
    .action((id: string, opts: { by: string; reason?: string; config?: string }) =>
      withClient(loadConfig(opts), async (client) => {
        const h = client.workflow.getHandle(id);
        if (name === 'approve') console.log((await approveJob(client, id, opts.by)).approved ? `${id}: approved by ${opts.by}` : `${id}: not approved`);
        if (name === 'reject') {
          await h.signal(rejectSignal, { by: opts.by, reason: opts.reason });
          console.log(`${id}: rejected`);
        }
        if (name === 'cancel') {
          await h.cancel();
          console.log(`${id}: cancellation requested`);
        }
      }),
    );
}

program
  .command('test-connection')
  .description('check a profile/environment step by step: config, DNS, TCP, TLS, token, login, version, schema, permissions, extensions')
  .requiredOption('--profile <name>', 'profile name')
  .requiredOption('-e, --env <environment>', 'environment name')
  .option('--idp-token-file <file>', 'login-idp profiles: the IdP token to test with')
  .option('--via-worker', 'run the check on a worker through Temporal (as the `testConnection` workflow), from where jobs run')
  .option('-c, --config <file>', 'configuration file')
  .action(async (opts: { profile: string; env: string; idpTokenFile?: string; viaWorker?: boolean; config?: string }) => {
    const config = loadConfig(opts);
    const idpToken = opts.idpTokenFile ? readSecretFile(opts.idpTokenFile, '--idp-token-file') : undefined;
    let report: ConnectionReport;
    if (opts.viaWorker) {
      report = await withClient(config, async (client) => {
        const h = await client.workflow.start('testConnection', {
          taskQueue: config.temporal.taskQueue,
          workflowId: `test-connection:${opts.profile}:${opts.env}:${new Date().toISOString()}`,
          args: [{ profile: opts.profile, environment: opts.env, ...(idpToken && { auth: { idpToken: seal(idpToken, loadSealingKeys()) } }) }],
          staticSummary: `Test connection **${opts.profile}/${opts.env}**`,
        });
        return (await h.result().catch((err: unknown) => {
          const details = err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure ? err.cause.details?.[0] : undefined;
          if (details) return details;
          throw err;
        })) as ConnectionReport;
      });
    } else {
      const logger = createLogger({ level: 'warn' });
      report = await diagnoseConnection({ config, credentials: createCredentialProvider({ config, logger }), profile: opts.profile, environment: opts.env, session: idpToken ? { idpToken } : undefined });
    }
    console.log(formatReport(report));
    process.exitCode = report.ok ? 0 : 1;
  });

program
  .command('status')
  .description('show the state and progress of a sync or job workflow')
  .argument('<workflowId>', 'workflow id, e.g. sync:orders-to-reporting:2026-11-24T10:00:00.000Z')
  .option('-c, --config <file>', 'configuration file')
  .action((workflowId: string, opts: { config?: string }) =>
    withClient(loadConfig(opts), async (client) => {
      const desc = await client.workflow.getHandle(workflowId).describe();
      const attrs = desc.typedSearchAttributes;
      console.log(`${workflowId}: ${desc.status.name} (${desc.type})`);
      const tags = [LakebasePipeline, LakebaseJob, LakebaseProfile, LakebaseEnvironment, LakebaseRowsWritten]
        .map((k) => [k.name, attrs.get(k)] as const)
        .filter(([, v]) => v !== undefined);
      if (tags.length) console.log(`  ${tags.map(([k, v]) => `${k}=${String(v)}`).join('  ')}`);
      if (desc.type === 'dataSync') console.log(`  ${formatProgress(await syncProgress(client, workflowId))}`);
      if (desc.type === 'operationalJob') {
        const p = await jobProgress(client, workflowId);
        console.log(`  ${p.status}${p.currentStep ? `, running ${p.currentStep}` : ''}; ${p.steps.length} steps done, ${p.rowsWritten} rows written`);
      }
    }),
  );

program
  .command('list')
  .description('list syncs and jobs (a visibility query on our search attributes)')
  .option('-p, --pipeline <name>', 'only this pipeline')
  .option('-j, --job <name>', 'only this job')
  .option('-e, --env <environment>', 'only this environment')
  .option('--status <status>', 'Running, Completed, Failed, …')
  .option('-n, --limit <n>', 'at most this many', positive, 20)
  .option('-c, --config <file>', 'configuration file')
  .action((opts: { pipeline?: string; job?: string; env?: string; status?: string; limit: number; config?: string }) =>
    withClient(loadConfig(opts), async (client) => {
      const q = (k: string, v: string) => `${k} = '${v.replace(/'/g, "''")}'`;
      const where = [
        opts.pipeline && q('LakebasePipeline', opts.pipeline),
        opts.job && q('LakebaseJob', opts.job),
        opts.env && q('LakebaseEnvironment', opts.env),
        opts.status && q('ExecutionStatus', opts.status),
        !opts.pipeline && !opts.job && `WorkflowType IN ('dataSync', 'operationalJob', 'syncGroup')`,
      ].filter(Boolean);
      let n = 0;
      for await (const w of client.workflow.list({ query: where.join(' AND ') })) {
        const rows = w.typedSearchAttributes.get(LakebaseRowsWritten);
        console.log(`${w.startTime.toISOString()}  ${w.status.name.padEnd(10)} ${w.workflowId}${rows !== undefined ? `  rows=${rows}` : ''}`);
        if (++n >= opts.limit) break;
      }
      if (n === 0) console.log('(nothing matches)');
    }),
  );

program
  .command('setup')
  .description("register lakebase-worker's search attributes on the Temporal namespace (once per cluster)")
  .option('-c, --config <file>', 'configuration file')
  .action((opts: { config?: string }) => {
    const config = loadConfig(opts);
    return withClient(config, async (client) => {
      const { customAttributes } = await client.connection.operatorService.listSearchAttributes({ namespace: config.temporal.namespace });
      const missing = LAKEBASE_SEARCH_ATTRIBUTES.filter((k) => !(customAttributes ?? {})[k.name]);
      if (missing.length === 0) return console.log('search attributes already registered');
      await client.connection.operatorService.addSearchAttributes({
        namespace: config.temporal.namespace,
        // IndexedValueType: 2 KEYWORD, 3 INT
        searchAttributes: Object.fromEntries(missing.map((k) => [k.name, k.type === 'INT' ? 3 : 2])),
      });
      console.log(`registered ${missing.map((k) => k.name).join(', ')}`);
    });
  });

program
  .command('demo')
  .description('start a Temporal dev server and PostgreSQL, seed data, run a sync, verify it')
  .option('--rows <n>', 'rows to seed', positive, 100_000)
  .option('--exit', 'exit after the sync instead of keeping the Temporal UI up')
  .option('--embedded-postgres', 'use an embedded PostgreSQL even when DATABASE_URL or a local server is available')
  .action(async (opts: { rows: number; exit?: boolean; embeddedPostgres?: boolean }) => {
    const ok = await runDemo({ rows: opts.rows, exit: opts.exit ?? false, embeddedPostgres: opts.embeddedPostgres, logger: createLogger({ level: 'warn' }) });
    process.exitCode = ok ? 0 : 1;
  });

program.parseAsync().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof JobParamError) {
    console.error(err.message);
  } else if (err instanceof WorkflowFailedError) {
    const root = err.cause?.cause ?? err.cause;
    const type = root instanceof ApplicationFailure && root.type ? ` [${root.type}]` : '';
    console.error(`workflow failed: ${root instanceof Error ? root.message : err.message}${type}`);
  } else {
    console.error((err as Error)?.message ?? err);
  }
  process.exitCode = 1;
});
