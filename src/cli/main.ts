// The `lakebase-worker` command: parses argv with the command tree (program.ts) and prints how a command failed.
// Nothing imports this file; bin/lakebase-worker.js loads it.
// First: tracing must be in place before any command module loads `pg`.
import { tracing } from './tracing';
import { CommandFailed, formatError, installWarningPrinter } from './output';
import { buildProgram } from './program';

installWarningPrinter();
buildProgram()
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
