// `lakebase-worker init`: writes a commented starter lakebase.yaml, so a first config is not copied
// out of the docs. Secrets appear only as ${ENV} references; the chosen auth method is active and the
// others are shown as comments beside it.
import { Option, type Command } from 'commander';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { CommandFailed, print } from './output';
import { configPath, type ConfigOption } from './shared';

export const INIT_AUTH_METHODS = ['pat', 'm2m', 'federation', 'none'] as const;
export type InitAuth = (typeof INIT_AUTH_METHODS)[number];
const LAKEBASE_METHODS = ['pat', 'm2m', 'federation'] as const;

/** Each method's lines under the profile, and why one would pick it. */
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
  none: [
    '# No password: a PostgreSQL with trust or peer auth, as a fresh local install has.',
    'auth: { method: none }',
  ],
};

/** Where the starter points: a Lakebase instance (prod and staging), or a local server (two databases). */
interface Layout {
  profile: string;
  comment: string;
  environments: string[];
  source: string;
  target: string;
  /** Schema of the target tables (the pipelines' and the job's). */
  schema: string;
}

const LAKEBASE: Layout = {
  profile: 'analytics',
  comment: 'one Lakebase instance (or project)',
  environments: [
    '      prod:',
    '        host: ${LAKEBASE_HOST}       # instance-xxxx.database.cloud.databricks.com (Lakebase console: Connect)',
    "        user: ${LAKEBASE_USER}       # your email, or the service principal's application id",
    '        database: databricks_postgres',
    '        ssl: { mode: verify-full }',
    '      staging:',
    '        host: ${LAKEBASE_STAGING_HOST}',
    '        user: ${LAKEBASE_USER}',
    '        database: databricks_postgres',
    '        ssl: { mode: verify-full }',
  ],
  source: 'prod',
  target: 'prod',
  schema: 'reporting',
};

const LOCAL: Layout = {
  profile: 'local',
  comment: 'a PostgreSQL on this machine',
  environments: [
    '      shop:      { host: ${PGHOST:-127.0.0.1}, port: ${PGPORT:-5432}, user: ${PGUSER:-postgres}, database: shop, ssl: { mode: disable } }',
    '      reporting: { host: ${PGHOST:-127.0.0.1}, port: ${PGPORT:-5432}, user: ${PGUSER:-postgres}, database: reporting, ssl: { mode: disable } }',
  ],
  source: 'shop',
  target: 'reporting',
  schema: 'public',
};

/** The starter config for `auth`: that method active, the others commented out beside it. */
export function starterConfig(auth: InitAuth): string {
  const l = auth === 'none' ? LOCAL : LAKEBASE;
  // A Lakebase starter shows its three methods; the local one points at them (init --auth pat writes them out).
  const authLines =
    auth === 'none'
      ? [...AUTH_BLOCKS.none, '# For Lakebase: method pat, m2m or federation (lakebase-worker init --auth pat|m2m|federation).'].map((line) => `    ${line}`)
      : ['    # Exactly one auth method is active; the other two are shown for reference.'].concat(
          LAKEBASE_METHODS.flatMap((m) => AUTH_BLOCKS[m].map((line) => `    ${m === auth || line.startsWith('#') ? line : `# ${line}`}`)),
        );
  const at = (env: string) => `profile: ${l.profile}, environment: ${env}`;
  return `# lakebase-worker configuration, written by \`lakebase-worker init --auth ${auth}\`; every key: docs/configuration.md.
# Any value may be \${ENV} or \${ENV:-default}: keep secrets in the environment (or a …File setting), not here.

temporal:
  address: \${TEMPORAL_ADDRESS:-localhost:7233}
  namespace: default
  taskQueue: lakebase

profiles:
  ${l.profile}:${' '.repeat(Math.max(1, 33 - l.profile.length))}# ${l.comment}
${authLines.join('\n')}
    environments:                   # --env picks another one at run time
${l.environments.join('\n')}

pipelines:
  # Batch sync: merges on the key; with a cursor each run reads only the rows changed since the last.
  orders:
    source: { ${at(l.source)}, table: public.orders }
    target: { ${at(l.target)}, table: ${l.schema}.orders }   # created if missing
    mode: upsert
    key: [id]
    cursor: updated_at              # a NOT NULL column that grows on every change
    deletes: hard                   # remove target rows whose key left the source
    verify: counts                  # compare source and target after every run
  # Continuous sync by logical replication (the source needs wal_level=logical, as Lakebase has).
  orders-cdc:
    source: { ${at(l.source)}, table: public.orders }
    target: { ${at(l.target)}, table: ${l.schema}.orders_live }
    mode: cdc
    key: [id]

jobs:
  # lakebase-worker job run --job daily-totals --param since=2026-11-24
  daily-totals:
    description: Rebuild the daily order totals from the synced orders
    profile: ${l.profile}
    environment: ${l.target}
    params:
      since: { type: date }
    steps:
      - { name: prepare, kind: sql, sql: "create table if not exists ${l.schema}.daily_totals (day date primary key, orders bigint not null, total numeric)" }
      - { name: clear, kind: write, sql: "delete from ${l.schema}.daily_totals where day >= :since", transaction: swap }
      - name: fill
        kind: write
        transaction: swap           # clear and fill commit together, or neither
        sql: >-
          insert into ${l.schema}.daily_totals (day, orders, total)
          select updated_at::date, count(*), sum(total) from ${l.schema}.orders where updated_at >= :since group by 1
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
    .description('write a commented starter lakebase.yaml: one profile, two environments, an upsert and a cdc pipeline, a job (--auth none: for a local PostgreSQL)')
    .addOption(new Option('-a, --auth <method>', 'the auth method to make active, the others shown as comments; none: a local PostgreSQL with trust or peer auth').choices(INIT_AUTH_METHODS).default('pat'))
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
      const required = requiredVariables(text);
      print(required.length ? `set ${required.join(', ')} in the environment, then check it:` : 'check it:');
      print(`  lakebase-worker config check --config ${file}`);
    });
}
