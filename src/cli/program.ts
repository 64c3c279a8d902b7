// The `lakebase-worker` command tree: every command module registered on one commander program,
// with the help laid out for a newcomer (everyday commands first, tooling under its own heading,
// examples at the end of each command's help). main.ts parses argv with it; the docs test reads it
// to check every command line the docs and these examples show.
import { Command, Help } from 'commander';
import { registerAdmin } from './admin';
import { registerCdc } from './cdc';
import { registerConfig } from './config';
import { registerEmulator } from './emulator';
import { registerInit } from './init';
import { registerJob } from './job';
import { registerSchedule } from './schedule';
import { registerSync } from './sync';
import { registerVerify } from './verify';
import { registerWorker } from './worker';

/** The top-level commands in the order a newcomer needs them. */
const EVERYDAY = ['init', 'config', 'worker', 'sync', 'verify', 'status', 'list', 'job', 'cdc', 'schedule', 'test-connection', 'setup'];
/** Building, decrypting and trying out: listed after the everyday commands, under their own heading. */
const TOOLING = ['bundle', 'codec-server', 'demo', 'emulator'];
export const TOOLING_HEADING = 'Tooling (bundle, codec server, demo, emulator):';

/** Two or three examples per command (space-separated path; '' is the program), without `lakebase-worker`. */
export const HELP_EXAMPLES: Record<string, string[]> = {
  '': ['init --auth none', 'worker', 'sync start --pipeline orders --wait'],
  init: ['init --auth pat', 'init --auth none --config local.yaml', 'init --auth m2m --force'],
  config: ['config check', 'config check --config /etc/lakebase/lakebase.yaml'],
  'config check': ['config check', 'config check --config /etc/lakebase/lakebase.yaml'],
  worker: ['worker --config lakebase.yaml', 'worker --transforms ./transforms.ts'],
  sync: ['sync start --pipeline orders --wait', 'sync start --pipeline orders --dry-run', 'sync group --group nightly'],
  'sync start': ['sync start --pipeline orders --wait', 'sync start --pipeline orders --dry-run', 'sync start --pipeline orders --idp-token-file token.jwt'],
  verify: ['verify --pipeline orders', 'verify --pipeline orders --mode checksums --env staging', 'verify --pipeline orders --no-wait'],
  status: ["status 'sync:orders:2026-11-24T10:00:00.000Z'", "status 'job:daily-totals:reporting:cca7ead4d664'"],
  list: ['list --pipeline orders --env prod', 'list --status Failed --limit 5'],
  job: ['job run --job daily-totals --param since=2026-11-24', 'job run --job daily-totals --param since=2026-11-24 --dry-run', 'job approve <workflowId> --key-file bob.pem'],
  'job run': ['job run --job daily-totals --param since=2026-11-24', 'job run --job daily-totals --param since=2026-11-24 --no-wait', 'job run --job daily-totals --param since=2026-11-24 --branch try-fix --create-branch --delete-branch-after'],
  cdc: ['cdc start --pipeline orders-cdc', 'cdc status --pipeline orders-cdc', 'cdc stop --pipeline orders-cdc --drop-slot'],
  schedule: ['schedule create --pipeline orders --cron "*/15 * * * *"', 'schedule list', 'schedule trigger sync:orders'],
  'test-connection': ['test-connection --profile analytics --env prod', 'test-connection --profile local --env shop'],
  setup: ['setup --config lakebase.yaml'],
  emulator: ['emulator --config examples/emulator.yaml'],
  demo: ['demo', 'demo --exit --rows 1000000'],
  'codec-server': ['codec-server --ui-origin http://localhost:8080'],
};

function findCommand(program: Command, path: string): Command | undefined {
  let cmd: Command | undefined = program;
  for (const name of path.split(' ').filter(Boolean)) cmd = cmd?.commands.find((c) => c.name() === name);
  return cmd;
}

export function buildProgram(): Command {
  const program = new Command()
    .name('lakebase-worker')
    .description('Temporal worker for data-sync workflows and operational SQL jobs on Databricks Lakebase')
    .showHelpAfterError();
  registerInit(program);
  registerConfig(program);
  registerWorker(program);
  registerSync(program);
  registerVerify(program);
  registerCdc(program);
  registerSchedule(program);
  registerEmulator(program);
  registerJob(program);
  registerAdmin(program);

  for (const cmd of program.commands) if (TOOLING.includes(cmd.name())) cmd.helpGroup(TOOLING_HEADING);
  const rank = (c: Command) => {
    const i = [...EVERYDAY, ...TOOLING].indexOf(c.name());
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };
  // Only the program's own list is reordered; `help` stays last.
  program.configureHelp({ visibleCommands: (cmd) => new Help().visibleCommands(cmd).sort((a, b) => rank(a) - rank(b)) });
  for (const [path, examples] of Object.entries(HELP_EXAMPLES)) {
    const cmd = findCommand(program, path);
    if (!cmd) throw new Error(`help examples for "${path}": no such command`);
    cmd.addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ lakebase-worker ${e}`).join('\n')}\n`);
  }
  return program;
}
