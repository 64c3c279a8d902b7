import { Command, InvalidArgumentError } from 'commander';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { connectClient, startSync, syncProgress } from './client';
import { ConfigError, loadConfigFile } from './config/load';
import type { Config } from './config/schema';
import { runDemo } from './demo';
import { createLogger } from './logger';
import { runWorker } from './worker';

const program = new Command();

function configPath(opts: { config?: string }): string {
  return opts.config ?? process.env.LAKEBASE_CONFIG ?? 'lakebase.yaml';
}

function loadConfig(opts: { config?: string }): Config {
  return loadConfigFile(configPath(opts));
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
  .action(async (opts: { config?: string }) => {
    const config = loadConfig(opts);
    await runWorker(config, createLogger());
  });

const sync = program.command('sync').description('data-sync workflows');
sync
  .command('start')
  .description('start a sync of one pipeline')
  .requiredOption('-p, --pipeline <name>', 'pipeline name from the configuration')
  .option('-c, --config <file>', 'configuration file')
  .option('-w, --wait', 'wait for the sync to finish and print its result')
  .action(async (opts: { pipeline: string; config?: string; wait?: boolean }) => {
    const config = loadConfig(opts);
    if (!config.pipelines[opts.pipeline]) {
      throw new ConfigError([`--pipeline: unknown pipeline "${opts.pipeline}"; configured: ${Object.keys(config.pipelines).join(', ') || '(none)'}`]);
    }
    const client = await connectClient(config.temporal);
    const handle = await startSync(client, { pipeline: opts.pipeline, taskQueue: config.temporal.taskQueue });
    console.log(`started ${handle.workflowId}`);
    if (opts.wait) {
      const timer = setInterval(() => {
        syncProgress(client, handle.workflowId)
          .then((p) => console.log(`  ${p.batches} batches, ${p.rowsRead} rows read, ${p.rowsWritten} written`))
          .catch(() => undefined);
      }, 2_000);
      try {
        const result = await handle.result();
        console.log(JSON.stringify(result, null, 2));
      } finally {
        clearInterval(timer);
      }
    }
    await client.connection.close();
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
    console.log(JSON.stringify(await syncProgress(client, workflowId), null, 2));
    await client.connection.close();
  });

program
  .command('demo')
  .description('start a Temporal dev server and PostgreSQL, seed data, run a sync, verify it')
  .option('--rows <n>', 'rows to seed', positive, 100_000)
  .option('--exit', 'exit after the sync instead of keeping the Temporal UI up')
  .action(async (opts: { rows: number; exit?: boolean }) => {
    const ok = await runDemo({ rows: opts.rows, exit: opts.exit ?? false, logger: createLogger({ level: 'warn' }) });
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
