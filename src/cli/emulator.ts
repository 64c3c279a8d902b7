// `emulator` and `demo`: local stand-ins for Lakebase and a whole stack.
import type { Command } from 'commander';
import { loadDocument } from '../config/load';
import { emulatorOptionsSchema } from '../emulator/options';
import { createLogger } from '../logger';
import { demo, emulator } from './lazy';
import { print } from './output';
import { positive, untilSignal } from './shared';

export function registerEmulator(program: Command): void {
  program
    .command('emulator')
    .description('run the local Lakebase emulator (Databricks token/credential API + Postgres front)')
    .option('-c, --config <file>', 'emulator options (YAML/JSON): ports, upstream, service principals, users, federation policies')
    .action(async (opts: { config?: string }) => {
      const options = opts.config ? loadDocument(opts.config, emulatorOptionsSchema) : {};
      const emu = await new (emulator().LakebaseEmulator)(options).start();
      print(`workspace API:  ${emu.workspaceUrl}   (use as workspaceHost)`);
      print(`Postgres front: ${emu.postgres.host}:${emu.postgres.port}   (logins need a valid token as password)`);
      await untilSignal();
      await emu.stop();
    });

  program
    .command('demo')
    .description('start a Temporal dev server and PostgreSQL, seed data, run a sync, verify it')
    .option('--rows <n>', 'rows to seed', positive, 100_000)
    .option('--exit', 'exit after the sync instead of keeping the Temporal UI up')
    .option('--embedded-postgres', 'use an embedded PostgreSQL even when DATABASE_URL or a local server is available')
    .action(async (opts: { rows: number; exit?: boolean; embeddedPostgres?: boolean }) => {
      const ok = await demo().runDemo({ rows: opts.rows, exit: opts.exit ?? false, embeddedPostgres: opts.embeddedPostgres, logger: createLogger({ level: 'warn' }) });
      process.exitCode = ok ? 0 : 1;
    });
}
