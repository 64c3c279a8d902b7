// `sync start | relogin | group`
import type { Command } from 'commander';
import { runsClient, syncClient } from './lazy';
import { followProgress } from '../progress';
import { formatDryRun, formatSyncResult, print, printNotice, printStarted } from './output';
import { configPath, idpTokenFrom, loadConfig, readSecretFile, requireNamed, withClient, withConfigOption, type ConfigOption } from './shared';

const health = () => require('../client/runHealth') as typeof import('../client/runHealth');

export function registerSync(program: Command): void {
  const sync = program.command('sync').description('data-sync workflows');

  withConfigOption(
    sync
      .command('start')
      .description('start a sync of one pipeline')
      .requiredOption('-p, --pipeline <name>', 'pipeline name from the configuration'),
  )
    .option('-w, --wait', 'wait for the sync to finish and print its result')
    .option('--idp-token-file <file>', 'login-idp profiles: file holding the IdP token (JWT) of the user the sync runs for')
    .option('-e, --env <environment>', 'run both sides against this environment of their profiles (e.g. staging)')
    .option('--dry-run', 'validate the pipeline on a worker and print what the sync would do, including CREATE/ALTER statements, changing nothing')
    .action(async (opts: ConfigOption & { pipeline: string; wait?: boolean; idpTokenFile?: string; env?: string; dryRun?: boolean }) => {
      const config = loadConfig(opts);
      requireNamed(config.pipelines, opts.pipeline, '--pipeline', 'pipeline');
      const idpToken = idpTokenFrom(opts);
      const { startSync, syncProgress } = syncClient();
      const { workflowDuration } = runsClient();
      await withClient(config, async (client) => {
        const configFile = configPath(opts);
        const handle = await startSync(client, { pipeline: opts.pipeline, taskQueue: config.temporal.taskQueue, idpToken, config, environment: opts.env, dryRun: opts.dryRun, configFile });
        const h = health();
        printStarted(handle.workflowId, h.temporalUiUrl(config.temporal.address, config.temporal.namespace, handle.workflowId));
        const watch = { taskQueue: config.temporal.taskQueue, configFile, workflowId: handle.workflowId, say: printNotice };
        if (opts.dryRun) {
          for (const line of formatDryRun(await h.waitWatched(client, watch, () => handle.result()))) print(line);
          return;
        }
        if (!opts.wait) return;
        // Settled (aborted and awaited) before withClient closes the connection.
        const every = Number(process.env.LAKEBASE_PROGRESS_INTERVAL_MS) || undefined;
        const stop = followProgress((signal) => client.withAbortSignal(signal, () => syncProgress(client, handle.workflowId)), process.stdout, every);
        const result = await h.waitWatched(client, watch, () => handle.result()).finally(stop);
        print(formatSyncResult(result, await workflowDuration(client, handle.workflowId).catch(() => undefined)));
      });
    });

  withConfigOption(
    sync
      .command('relogin')
      .description('send a fresh IdP token to a sync waiting for re-login (after TOKEN_EXPIRED)')
      .argument('<workflowId>', 'the waiting sync')
      .requiredOption('--idp-token-file <file>', 'file holding the fresh IdP token (JWT)'),
  ).action(async (workflowId: string, opts: ConfigOption & { idpTokenFile: string }) => {
    const idpToken = readSecretFile(opts.idpTokenFile, '--idp-token-file');
    const ack = await withClient(loadConfig(opts), (client) => syncClient().relogin(client, workflowId, idpToken));
    print(ack.accepted ? `${workflowId}: fresh IdP token accepted` : `${workflowId}: token not accepted`);
  });

  withConfigOption(
    sync
      .command('group')
      .description('sync every pipeline of a sync group (one child workflow per table, bounded parallelism) and wait for the report (exit 1 when a table failed)')
      .requiredOption('-g, --group <name>', 'sync group name from the configuration'),
  )
    .option('-w, --wait', 'wait for every table and print the report (the default)')
    .option('--no-wait', 'start the group, print its workflow id and exit without the report')
    .action(async (opts: ConfigOption & { group: string; wait?: boolean }) => {
      const config = loadConfig(opts);
      requireNamed(config.syncGroups, opts.group, '--group', 'sync group');
      await withClient(config, async (client) => {
        const handle = await syncClient().startSyncGroup(client, { group: opts.group, taskQueue: config.temporal.taskQueue });
        const h = health();
        printStarted(handle.workflowId, h.temporalUiUrl(config.temporal.address, config.temporal.namespace, handle.workflowId));
        const watch = { taskQueue: config.temporal.taskQueue, configFile: configPath(opts), workflowId: handle.workflowId, say: printNotice };
        if (opts.wait !== false) print(JSON.stringify(await h.waitWatched(client, watch, () => handle.result()), null, 2));
      });
    });
}
