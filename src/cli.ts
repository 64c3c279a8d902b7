import { Command, InvalidArgumentError } from 'commander';
import { ApplicationFailure, ScheduleOverlapPolicy, WorkflowFailedError, type Client } from '@temporalio/client';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { RowTransform } from './activities';
import { connectClient, relogin, startSync, startSyncGroup, syncProgress } from './client';
import { createSyncSchedule, describeSchedule, listSchedules } from './schedules';
import { LakebaseEmulator } from './emulator';
import { ConfigError, loadConfigFile, loadDocument } from './config/load';
import { emulatorOptionsSchema } from './emulator/options';
import type { Config } from './config/schema';
import { runDemo } from './demo';
import { createLogger } from './logger';
import { followProgress, formatProgress } from './progress';
import { runWorker, writeWorkflowBundle } from './worker';

const program = new Command();

function configPath(opts: { config?: string }): string {
  return opts.config ?? process.env.LAKEBASE_CONFIG ?? 'lakebase.yaml';
}

function loadConfig(opts: { config?: string }): Config {
  return loadConfigFile(configPath(opts));
}

function readSecretFile(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError([`${flag}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
}

/** Loads `--transforms <module>`: a module whose default (or `rowTransforms`) export maps names to functions. */
function loadRowTransforms(file: string | undefined): Record<string, RowTransform> | undefined {
  if (!file) return undefined;
  const mod = require(path.resolve(file)) as { default?: unknown; rowTransforms?: unknown };
  const table = (mod.rowTransforms ?? mod.default ?? mod) as Record<string, unknown>;
  for (const [name, fn] of Object.entries(table)) {
    if (typeof fn !== 'function') throw new ConfigError([`--transforms: export "${name}" of ${file} is not a function`]);
  }
  return table as Record<string, RowTransform>;
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
  .option('-t, --transforms <module>', 'JS/TS module exporting named row transforms (default export or `rowTransforms`)')
  .action(async (opts: { config?: string; transforms?: string }) => {
    const config = loadConfig(opts);
    await runWorker(config, createLogger(), loadRowTransforms(opts.transforms));
  });

const sync = program.command('sync').description('data-sync workflows');
sync
  .command('start')
  .description('start a sync of one pipeline')
  .requiredOption('-p, --pipeline <name>', 'pipeline name from the configuration')
  .option('-c, --config <file>', 'configuration file')
  .option('-w, --wait', 'wait for the sync to finish and print its result')
  .option('--idp-token-file <file>', 'login-idp profiles: file holding the IdP token (JWT) of the user the sync runs for')
  .action(async (opts: { pipeline: string; config?: string; wait?: boolean; idpTokenFile?: string }) => {
    const config = loadConfig(opts);
    if (!config.pipelines[opts.pipeline]) {
      throw new ConfigError([`--pipeline: unknown pipeline "${opts.pipeline}"; configured: ${Object.keys(config.pipelines).join(', ') || '(none)'}`]);
    }
    const client = await connectClient(config.temporal);
    const idpToken = opts.idpTokenFile ? readSecretFile(opts.idpTokenFile, '--idp-token-file') : undefined;
    const handle = await startSync(client, { pipeline: opts.pipeline, taskQueue: config.temporal.taskQueue, idpToken });
    console.log(`started ${handle.workflowId}`);
    if (opts.wait) {
      const stop = followProgress(() => syncProgress(client, handle.workflowId));
      try {
        const result = await handle.result();
        stop();
        console.log(formatProgress(result));
      } finally {
        stop();
      }
    }
    await client.connection.close();
  });

sync
  .command('relogin')
  .description('send a fresh IdP token to a sync waiting for re-login (after TOKEN_EXPIRED)')
  .argument('<workflowId>', 'the waiting sync')
  .requiredOption('--idp-token-file <file>', 'file holding the fresh IdP token (JWT)')
  .option('-c, --config <file>', 'configuration file')
  .action(async (workflowId: string, opts: { idpTokenFile: string; config?: string }) => {
    const config = loadConfig(opts);
    const client = await connectClient(config.temporal);
    const ack = await relogin(client, workflowId, readSecretFile(opts.idpTokenFile, '--idp-token-file'));
    console.log(ack.accepted ? `${workflowId}: fresh IdP token accepted` : `${workflowId}: token not accepted`);
    await client.connection.close();
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
    const client = await connectClient(config.temporal);
    const handle = await startSyncGroup(client, { group: opts.group, taskQueue: config.temporal.taskQueue });
    console.log(`started ${handle.workflowId}`);
    if (opts.wait) console.log(JSON.stringify(await handle.result(), null, 2));
    await client.connection.close();
  });

const schedule = program.command('schedule').description('Temporal schedules that start syncs (overlap: skip by default)');
async function withClient<R>(opts: { config?: string }, fn: (client: Client, config: Config) => Promise<R>): Promise<R> {
  const config = loadConfig(opts);
  const client = await connectClient(config.temporal);
  try {
    return await fn(client, config);
  } finally {
    await client.connection.close();
  }
}
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
  .action((opts: { pipeline: string; cron?: string; every?: string; overlap: string; catchupWindow: string; paused?: boolean; config?: string }) =>
    withClient(opts, async (client, config) => {
      if (!config.pipelines[opts.pipeline]) throw new ConfigError([`--pipeline: unknown pipeline "${opts.pipeline}"`]);
      const overlap = OVERLAP[opts.overlap];
      if (!overlap) throw new ConfigError([`--overlap: expected one of ${Object.keys(OVERLAP).join(', ')}, got "${opts.overlap}"`]);
      const h = await createSyncSchedule(client, { ...opts, overlap, taskQueue: config.temporal.taskQueue });
      console.log(describeSchedule(await h.describe()));
    }),
  );
schedule
  .command('list')
  .description('list schedules')
  .option('-c, --config <file>', 'configuration file')
  .action((opts: { config?: string }) =>
    withClient(opts, async (client) => {
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
      withClient(opts, async (client) => {
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
    withClient(opts, async (client) => {
      const [start, end] = [new Date(opts.from), new Date(opts.to)];
      if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end <= start)
        throw new ConfigError([`--from/--to: expected two ISO times with --from before --to, got "${opts.from}" and "${opts.to}"`]);
      const h = client.schedule.getHandle(id);
      await h.backfill({ start, end, overlap: ScheduleOverlapPolicy.BUFFER_ALL });
      console.log(describeSchedule(await h.describe()));
    }),
  );

program
  .command('bundle')
  .description('bundle the workflow code (the worker does this itself, once per code version, into its cache)')
  .requiredOption('-o, --out <file>', 'where to write the bundle')
  .action(async (opts: { out: string }) => {
    await writeWorkflowBundle(opts.out);
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

program
  .command('status')
  .description('show the progress of a sync workflow')
  .argument('<workflowId>', 'workflow id, e.g. sync:orders-to-reporting:2026-11-24T10:00:00.000Z')
  .option('-c, --config <file>', 'configuration file')
  .action(async (workflowId: string, opts: { config?: string }) => {
    const config = loadConfig(opts);
    const client = await connectClient(config.temporal);
    const desc = await client.workflow.getHandle(workflowId).describe();
    console.log(`${workflowId}: ${desc.status.name}`);
    console.log(formatProgress(await syncProgress(client, workflowId)));
    await client.connection.close();
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
  if (err instanceof ConfigError) {
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
