// `setup`, `status`, `list`, `test-connection`: looking at and preparing what runs.
import type { Command } from 'commander';
import type { ConnectionReport } from '../db/diagnose';
import { connectionClient, credentials, diagnose, runsClient } from './lazy';
import { createLogger } from '../logger';
import { formatRunList, formatRunStatus, print } from './output';
import { ConfigError } from '../config/load';
import { configPath, idpTokenFrom, loadConfig, positive, requireNamed, withClient, withConfigOption, type ConfigOption } from './shared';

export function registerAdmin(program: Command): void {
  withConfigOption(
    program
      .command('test-connection')
      .description('check a profile/environment step by step: config, DNS, TCP, TLS, token, login, version, schema, permissions, extensions; with --pipeline of a cdc pipeline, its source and the cdc checks')
      .option('--profile <name>', 'profile name')
      .option('-e, --env <environment>', 'environment name')
      .option('-p, --pipeline <name>', "a cdc pipeline: test its source's profile/environment, then what cdc start checks (wal_level, REPLICATION, replica identity, publication, slots)")
      .option('--idp-token-file <file>', 'login-idp profiles: the IdP token to test with')
      .option('--via-worker', 'run the check on a worker through Temporal (as the `testConnection` workflow), from where jobs run'),
  ).action(async (opts: ConfigOption & { profile?: string; env?: string; pipeline?: string; idpTokenFile?: string; viaWorker?: boolean }) => {
    const config = loadConfig(opts);
    const idpToken = idpTokenFrom(opts);
    const source = opts.pipeline ? requireNamed(config.pipelines, opts.pipeline, '--pipeline', 'pipeline').source : undefined;
    const profile = opts.profile ?? source?.profile;
    const environment = opts.env ?? source?.environment;
    if (!profile || !environment) throw new ConfigError(['test-connection: give --profile and --env, or --pipeline']);
    if (source && (source.profile !== profile || source.environment !== environment))
      throw new ConfigError([`--pipeline ${opts.pipeline} reads ${source.profile}/${source.environment}; leave out --profile/--env, or give those`]);
    let report: ConnectionReport;
    if (opts.viaWorker) {
      report = await withClient(config, (client) =>
        connectionClient().testConnectionViaWorker(client, { profile, environment, taskQueue: config.temporal.taskQueue, idpToken, ...(opts.pipeline && { pipeline: opts.pipeline }) }),
      );
    } else {
      const logger = createLogger({ level: 'warn' });
      const creds = credentials().createCredentialProvider({ config, logger });
      const session = idpToken ? { idpToken } : undefined;
      const diagnoseHere = (prof: string, env: string) => diagnose().diagnoseConnection({ config, credentials: creds, profile: prof, environment: env, session });
      if (opts.pipeline) {
        const pools = (require('../db/pools') as typeof import('../db/pools')).createPoolRegistry({ config, logger, credentials: creds });
        const { cdcPipelineReport } = require('../sync/cdc/preflight') as typeof import('../sync/cdc/preflight');
        report = await cdcPipelineReport(config, opts.pipeline, diagnoseHere, (prof, env) => pools.connect(prof, env, session)).finally(() => pools.end());
      } else report = await diagnoseHere(profile, environment);
    }
    print(diagnose().formatReport(report));
    process.exitCode = report.ok ? 0 : 1;
  });

  withConfigOption(
    program
      .command('status')
      .description('show the state and progress of a sync or job workflow')
      .argument('<workflowId>', 'workflow id, e.g. sync:orders-to-reporting:2026-11-24T10:00:00.000Z'),
  ).action((workflowId: string, opts: ConfigOption) => {
    const config = loadConfig(opts);
    const { temporalUiUrl } = require('../client/runHealth') as typeof import('../client/runHealth');
    return withClient(config, async (client) =>
      formatRunStatus(await runsClient().runStatus(client, workflowId, configPath(opts)), temporalUiUrl(config.temporal.address, config.temporal.namespace, workflowId)).forEach((l) => print(l)),
    );
  });

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
