// The `lakebase-worker` command: registers the command modules and prints how a command failed.
// Nothing imports this file; bin/lakebase-worker.js loads it.
// First: tracing must be in place before any command module loads `pg`.
import { tracing } from './tracing';
import { Command } from 'commander';
import { registerAdmin } from './admin';
import { registerCdc } from './cdc';
import { registerEmulator } from './emulator';
import { registerJob } from './job';
import { CommandFailed, formatError, installWarningPrinter } from './output';
import { registerSchedule } from './schedule';
import { registerSync } from './sync';
import { registerVerify } from './verify';
import { registerWorker } from './worker';

const program = new Command()
  .name('lakebase-worker')
  .description('Temporal worker for data-sync workflows and operational SQL jobs on Databricks Lakebase')
  .showHelpAfterError();

registerWorker(program);
registerSync(program);
registerVerify(program);
registerCdc(program);
registerSchedule(program);
registerEmulator(program);
registerJob(program);
registerAdmin(program);

installWarningPrinter();
program
  .parseAsync()
  // Buffered spans go out before the process ends (a worker's after it has drained).
  .then(() => tracing?.shutdown())
  .catch(async (err: unknown) => {
    await tracing?.shutdown().catch(() => undefined);
    if (process.env.LAKEBASE_DEBUG) console.error(err);
    // Exit once the message is out: a Temporal Runtime or a half-open connection must not keep a
    // failed command alive (the Runtime even holds on through SIGTERM).
    process.stderr.write(`${formatError(err)}\n`, () => process.exit(err instanceof CommandFailed ? err.exitStatus : 1));
  });
