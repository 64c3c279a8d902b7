// `verify`: compare a pipeline's source and target by key-range buckets, as a workflow of its own.
import { InvalidArgumentError, type Command } from 'commander';
import { describeVerify } from '../workflows/verifyReport';
import { verifyClient } from './lazy';
import { print } from './output';
import { idpTokenFrom, loadConfig, requireNamed, withClient, withConfigOption, type ConfigOption } from './shared';

const MODES = ['counts', 'checksums'] as const;
type Mode = (typeof MODES)[number];

function mode(value: string): Mode {
  if (!(MODES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${MODES.join(', ')}`);
  return value as Mode;
}

export function registerVerify(program: Command): void {
  withConfigOption(
    program
      .command('verify')
      .description("compare a pipeline's target with its source (row counts, or counts and row checksums, per key range) and name the rows that differ")
      .requiredOption('-p, --pipeline <name>', 'pipeline name from the configuration'),
  )
    .option('-m, --mode <mode>', 'counts | checksums (default: the pipeline\'s verify setting, checksums when it is none)', mode)
    .option('-e, --env <environment>', 'compare this environment of both sides (e.g. staging)')
    .option('-w, --wait', 'wait for the result and print it (exit status 1 when rows differ)')
    .option('--idp-token-file <file>', 'login-idp profiles: file holding the IdP token (JWT) of the user the verify runs for')
    .action(async (opts: ConfigOption & { pipeline: string; mode?: Mode; env?: string; wait?: boolean; idpTokenFile?: string }) => {
      const config = loadConfig(opts);
      requireNamed(config.pipelines, opts.pipeline, '--pipeline', 'pipeline');
      const idpToken = idpTokenFrom(opts);
      await withClient(config, async (client) => {
        const handle = await verifyClient().startVerify(client, {
          pipeline: opts.pipeline, taskQueue: config.temporal.taskQueue, config, environment: opts.env, mode: opts.mode, idpToken,
        });
        print(`started ${handle.workflowId}`);
        if (!opts.wait) return;
        const report = await handle.result();
        print(describeVerify(report, config.pipelines[opts.pipeline]!.key));
      });
    });
}
