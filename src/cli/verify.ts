// `verify`: compare a pipeline's source and target by key-range buckets, as a workflow of its own.
import { InvalidArgumentError, type Command } from 'commander';
import { describeVerify } from '../workflows/verifyReport';
import { NON_RETRYABLE_FAILURES } from '../failureTypes';
import { temporalClient, verifyClient } from './lazy';
import { CommandFailed, formatError, print, printNotice, printStarted } from './output';
import { configPath, idpTokenFrom, loadConfig, requireNamed, withClient, withConfigOption, type ConfigOption } from './shared';

const health = () => require('../client/runHealth') as typeof import('../client/runHealth');

const MODES = ['counts', 'checksums'] as const;
type Mode = (typeof MODES)[number];

function mode(value: string): Mode {
  if (!(MODES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${MODES.join(', ')}`);
  return value as Mode;
}

/** verify's exit statuses: a script reads the answer from them. */
export const VERIFY_EXIT = { equal: 0, differs: 1, couldNotRun: 2 } as const;

export function registerVerify(program: Command): void {
  const cmd = withConfigOption(
    program
      .command('verify')
      .description(
        "compare a pipeline's target with its source (row counts, or counts and row checksums, per key range) and name the rows that differ; " +
          'waits for the answer: exit 0 when they match, 1 when rows differ (named on stdout), 2 when the verify could not run',
      )
      .requiredOption('-p, --pipeline <name>', 'pipeline name from the configuration'),
  )
    .option('-m, --mode <mode>', 'counts | checksums (default: the pipeline\'s verify setting, checksums when it is none)', mode)
    .option('-e, --env <environment>', 'compare this environment of both sides (e.g. staging)')
    .option('-w, --wait', 'wait for the answer and print it (the default)')
    .option('--no-wait', 'start the verify, print its workflow id and exit 0 without the answer')
    .option('--idp-token-file <file>', 'login-idp profiles: file holding the IdP token (JWT) of the user the verify runs for');
  // A usage error is "could not run" too (commander would exit 1).
  cmd.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : VERIFY_EXIT.couldNotRun));
  cmd.action(async (opts: ConfigOption & { pipeline: string; mode?: Mode; env?: string; wait?: boolean; idpTokenFile?: string }) => {
    try {
      const config = loadConfig(opts);
      requireNamed(config.pipelines, opts.pipeline, '--pipeline', 'pipeline');
      const idpToken = idpTokenFrom(opts);
      const key = config.pipelines[opts.pipeline]!.key;
      await withClient(config, async (client) => {
        const handle = await verifyClient().startVerify(client, {
          pipeline: opts.pipeline, taskQueue: config.temporal.taskQueue, config, environment: opts.env, mode: opts.mode, idpToken, configFile: configPath(opts),
        });
        const h = health();
        printStarted(handle.workflowId, h.temporalUiUrl(config.temporal.address, config.temporal.namespace, handle.workflowId));
        if (opts.wait === false) return;
        const watch = { taskQueue: config.temporal.taskQueue, configFile: configPath(opts), workflowId: handle.workflowId, say: printNotice };
        print(describeVerify(await h.waitWatched(client, watch, () => handle.result()), key));
      });
    } catch (err) {
      const differs = differences(err);
      if (differs !== undefined) {
        print(differs);
        throw new CommandFailed(`verify ${opts.pipeline}: the target differs from the source [${NON_RETRYABLE_FAILURES.verifyFailed}]`, VERIFY_EXIT.differs);
      }
      throw new CommandFailed(`verify ${opts.pipeline} could not run: ${formatError(err)}`, VERIFY_EXIT.couldNotRun);
    }
  });
}

/** The verify report's text when the workflow failed because rows differ (LakebaseVerifyFailed), else undefined. */
function differences(err: unknown): string | undefined {
  const { ApplicationFailure, WorkflowFailedError } = temporalClient();
  if (!(err instanceof WorkflowFailedError)) return undefined;
  const cause = err.cause;
  return cause instanceof ApplicationFailure && cause.type === NON_RETRYABLE_FAILURES.verifyFailed ? cause.message : undefined;
}
