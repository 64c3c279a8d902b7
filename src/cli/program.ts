// The `lakebase-worker` command tree: every command module registered on one commander program.
// main.ts parses argv with it; the docs test reads it to check every command line the docs show.
import { Command } from 'commander';
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
  return program;
}
