// `lakebase-worker init`: writes a commented starter lakebase.yaml, so a first config is not copied
// out of the docs. Secrets appear only as ${ENV} references; the chosen auth method is active and the
// others are shown as comments beside it.
import { Option, type Command } from 'commander';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { CommandFailed, print } from './output';
import { configPath, type ConfigOption } from './shared';

export const INIT_AUTH_METHODS = ['pat', 'm2m', 'federation'] as const;
export type InitAuth = (typeof INIT_AUTH_METHODS)[number];

/** Each method's lines under `auth:` (indented for the profile), and why one would pick it. */
const AUTH_BLOCKS: Record<InitAuth, string[]> = {
  pat: [
    '# Personal access token: the PAT is the Postgres password.',
    'auth: { method: pat, token: ${DATABRICKS_TOKEN} }',
  ],
  m2m: [
    "# Machine-to-machine OAuth: a service principal's client credentials (the user is its application id).",
    'auth: { method: m2m, workspaceHost: ${DATABRICKS_HOST}, clientId: ${DATABRICKS_CLIENT_ID}, clientSecret: ${DATABRICKS_CLIENT_SECRET} }',
  ],
  federation: [
    "# Workload identity federation: the platform's JWT (re-read on every exchange) under the service principal's federation policy.",
    'auth:',
    '  method: federation',
    '  workspaceHost: ${DATABRICKS_HOST}',
    '  clientId: ${DATABRICKS_CLIENT_ID}',
    '  subjectToken: { source: static, tokenFile: ${DATABRICKS_TOKEN_FILE:-/var/run/secrets/tokens/databricks}, tokenFileWrittenLater: true }',
  ],
};

/** The starter config for `auth`: that method active, the other two commented out. */
export function starterConfig(auth: InitAuth): string {
  const authLines = INIT_AUTH_METHODS.flatMap((m) =>
    AUTH_BLOCKS[m].map((line) => `    ${m === auth || line.startsWith('#') ? line : `# ${line}`}`),
  );
  return `# lakebase-worker configuration, written by \`lakebase-worker init --auth ${auth}\`.
# Every value may be a \${ENV} reference (\${ENV:-default} gives a default); keep secrets out of this
# file: set them in the environment, or point a …File setting at a mounted secret.
# Check it without any server: lakebase-worker config check --config <this file>
# Every key: docs/configuration.md; auth methods: docs/authentication.md.

temporal:
  address: \${TEMPORAL_ADDRESS:-localhost:7233}
  namespace: default
  taskQueue: lakebase

profiles:
  analytics:                        # one Lakebase instance (or project)
    # Exactly one auth method; the other two are shown for reference.
${authLines.join('\n')}
    environments:                   # one per stage; --env picks another at run time
      prod:
        host: \${LAKEBASE_HOST}       # instance-xxxx.database.cloud.databricks.com (Lakebase console: Connect)
        user: \${LAKEBASE_USER}       # your email, or the service principal's application id
        database: databricks_postgres
        ssl: { mode: verify-full }
      staging:
        host: \${LAKEBASE_STAGING_HOST}
        user: \${LAKEBASE_USER}
        database: databricks_postgres
        ssl: { mode: verify-full }

pipelines:
  # Batch sync: merges on the key; with a cursor each run reads only rows changed since the last.
  orders-to-reporting:
    source: { profile: analytics, environment: prod, table: public.orders }
    target: { profile: analytics, environment: prod, table: reporting.orders }   # created if missing
    mode: upsert
    key: [id]
    cursor: updated_at              # a NOT NULL column that grows on every change
    deletes: hard                   # remove target rows whose key left the source
    verify: counts                  # compare source and target after every run
  # Continuous sync by logical replication (the source needs wal_level=logical, as Lakebase has).
  orders-cdc:
    source: { profile: analytics, environment: prod, table: public.orders }
    target: { profile: analytics, environment: prod, table: reporting.orders_live }
    mode: cdc
    key: [id]

jobs:
  # lakebase-worker job run --job refresh-daily --param day=2026-11-24
  refresh-daily:
    description: Rebuild one day of the daily totals
    profile: analytics
    environment: prod
    params:
      day: { type: date }
    steps:
      - { name: clear, kind: write, sql: "delete from reporting.daily_totals where day = :day", transaction: swap }
      - name: fill
        kind: write
        transaction: swap           # both steps commit together, or neither
        sql: >-
          insert into reporting.daily_totals (day, orders, total)
          select :day, count(*), coalesce(sum(total), 0) from public.orders where created_at::date = :day
`;
}

/** The `${NAME}` references without a default: what the reader must set before the config loads. */
export function requiredVariables(text: string): string[] {
  const active = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .map((l) => l.replace(/\s#.*$/, ''))
    .join('\n');
  return [...new Set([...active.matchAll(/\$\{([A-Za-z_]\w*)\}/g)].map((m) => m[1] ?? ''))];
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('write a commented starter lakebase.yaml: one profile, two environments, an upsert and a cdc pipeline, a job')
    .addOption(new Option('-a, --auth <method>', 'the auth method to make active (the others are shown as comments)').choices(INIT_AUTH_METHODS).default('pat'))
    .option('-f, --force', 'overwrite the file if it exists')
    .option('-c, --config <file>', 'the file to write; default $LAKEBASE_CONFIG or lakebase.yaml')
    .action((opts: ConfigOption & { auth: InitAuth; force?: boolean }) => {
      const file = configPath(opts);
      const text = starterConfig(opts.auth);
      try {
        writeFileSync(file, text, { flag: opts.force ? 'w' : 'wx', mode: 0o644 });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new CommandFailed(`${path.resolve(file)} exists; not overwriting it (pass --force to replace it)`, 1);
        throw new CommandFailed(`cannot write ${path.resolve(file)} (${code ?? (err as Error).message})`, 1);
      }
      print(`wrote ${file} (auth: ${opts.auth})`);
      print(`set ${requiredVariables(text).join(', ')} in the environment, then check it:`);
      print(`  lakebase-worker config check --config ${file}`);
    });
}
