// `setup`, `status`, `list`, `test-connection`: looking at and preparing what runs.
import type { Command } from 'commander';
import type { ConnectionReport } from '../db/diagnose';
import { connectionClient, credentials, diagnose, runsClient } from './lazy';
import { createLogger } from '../logger';
import { formatRunList, formatRunStatus, print } from './output';
import { idpTokenFrom, loadConfig, positive, withClient, withConfigOption, type ConfigOption } from './shared';

export function registerAdmin(program: Command): void {
  withConfigOption(
    program
      .command('test-connection')
      .description('check a profile/environment step by step: config, DNS, TCP, TLS, token, login, version, schema, permissions, extensions')
      .requiredOption('--profile <name>', 'profile name')
      .requiredOption('-e, --env <environment>', 'environment name')
      .option('--idp-token-file <file>', 'login-idp profiles: the IdP token to test with')
      .option('--via-worker', 'run the check on a worker through Temporal (as the `testConnection` workflow), from where jobs run'),
  ).action(async (opts: ConfigOption & { profile: string; env: string; idpTokenFile?: string; viaWorker?: boolean }) => {
    const config = loadConfig(opts);
    const idpToken = idpTokenFrom(opts);
    let report: ConnectionReport;
    if (opts.viaWorker) {
      report = await withClient(config, (client) => connectionClient().testConnectionViaWorker(client, { profile: opts.profile, environment: opts.env, taskQueue: config.temporal.taskQueue, idpToken }));
    } else {
      const logger = createLogger({ level: 'warn' });
      report = await diagnose().diagnoseConnection({ config, credentials: credentials().createCredentialProvider({ config, logger }), profile: opts.profile, environment: opts.env, session: idpToken ? { idpToken } : undefined });
    }
    print(diagnose().formatReport(report));
    process.exitCode = report.ok ? 0 : 1;
  });

  withConfigOption(
    program
      .command('status')
      .description('show the state and progress of a sync or job workflow')
      .argument('<workflowId>', 'workflow id, e.g. sync:orders-to-reporting:2026-11-24T10:00:00.000Z'),
  ).action((workflowId: string, opts: ConfigOption) => withClient(loadConfig(opts), async (client) => formatRunStatus(await runsClient().runStatus(client, workflowId)).forEach((l) => print(l))));

  withConfigOption(
    program
      .command('list')
      .description('list syncs and jobs (a visibility query on our search attributes)')
      .option('-p, --pipeline <name>', 'only this pipeline')
      .option('-j, --job <name>', 'only this job')
      .option('-e, --env <environment>', 'only this environment')
      .option('--status <status>', 'Running, Completed, Failed, …')
      .option('-n, --limit <n>', 'at most this many', positive, 20),
  ).action((opts: ConfigOption & { pipeline?: string; job?: string; env?: string; status?: string; limit: number }) =>
    withClient(loadConfig(opts), async (client) => formatRunList(await runsClient().listRuns(client, { ...opts, environment: opts.env })).forEach((l) => print(l))),
  );

  withConfigOption(program.command('setup').description("register lakebase-worker's search attributes on the Temporal namespace (once per cluster)")).action(
    (opts: ConfigOption) => {
      const config = loadConfig(opts);
      return withClient(config, async (client) => {
        const added = await connectionClient().setupSearchAttributes(client);
        print(added.length ? `registered ${added.join(', ')}` : 'search attributes already registered');
      });
    },
  );
}
