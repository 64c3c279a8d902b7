// `lakebase-worker config check`: loads and validates a config the way the worker does, with no
// Temporal and no database, and prints what it resolved (defaults filled in, ${ENV} replaced) with
// every secret masked. An invalid config ends the command with every problem named by its path.
import type { Command } from 'commander';
import path from 'node:path';
import type { Config } from '../config/schema';
import { redactSecrets } from '../redact';
import { print } from './output';
import { configPath, loadConfig, withConfigOption, type ConfigOption } from './shared';

/** Keys whose string values are secrets; `…File` settings name a file and are shown. */
const isSecretKey = (key: string) => !/File$/.test(key) && /token|secret|password|apikey|^key$/i.test(key);

/** `{ method: pat, token: *** }`: an object in YAML flow style, secrets masked, other text scrubbed. */
export function maskedFlow(value: unknown, key = ''): string {
  if (typeof value === 'string') return isSecretKey(key) ? '***' : redactSecrets(value);
  if (Array.isArray(value)) return `[${value.map((v) => maskedFlow(v, key)).join(', ')}]`;
  if (value && typeof value === 'object')
    return `{ ${Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}: ${maskedFlow(v, k)}`)
      .join(', ')} }`;
  return String(value);
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The lines `config check` prints for a valid config. */
export function describeConfig(config: Config): string[] {
  const t = config.temporal;
  const lines = [`temporal: ${t.address}, namespace ${t.namespace}, task queue ${t.taskQueue}${t.tls ? ', mTLS' : ''}${t.apiKey || t.apiKeyFile ? ', API key' : ''}${t.encryptPayloads ? ', payloads encrypted' : ''}`];
  const profiles = Object.entries(config.profiles);
  lines.push(`profiles (${profiles.length}):`);
  for (const [name, p] of profiles) {
    lines.push(`  ${name}: auth ${maskedFlow(p.auth)}`);
    for (const [envName, e] of Object.entries(p.environments)) {
      const where = e.host ?? `projects/${e.project}/branches/${e.branch}/endpoints/${e.endpoint}`;
      const extra = [e.defaultSchema && `schema ${e.defaultSchema}`, `ssl ${e.ssl.mode}`, `${e.maxConnections} connections`, e.credential && `credential ${maskedFlow(e.credential)}`];
      lines.push(`    ${envName}: ${redactSecrets(`${e.user}@${where}:${e.port}/${e.database}`)}, ${extra.filter(Boolean).join(', ')}`);
    }
  }
  const pipelines = Object.entries(config.pipelines);
  lines.push(`pipelines (${pipelines.length}):`);
  for (const [name, p] of pipelines) {
    const side = (s: typeof p.source) => `${s.profile}/${s.environment} ${s.table ?? 'query'}`;
    const details = [
      p.key.length ? `key [${p.key.join(', ')}]` : 'no key',
      p.cursor && `cursor ${p.cursor}`,
      p.mode === 'upsert' && `deletes ${p.deletes}`,
      p.verify !== 'none' && `verify ${p.verify}`,
      p.mode === 'cdc' ? `batches of ${p.cdc.batchRows} changes or ${p.cdc.batchMs} ms` : `chunks of ${p.batchRows} rows, parallelism ${p.parallelism}`,
      `schema changes: ${p.schemaChanges}`,
    ];
    lines.push(`  ${name}: ${p.mode}, ${side(p.source)} -> ${side(p.target)}; ${details.filter(Boolean).join(', ')}`);
  }
  const groups = Object.entries(config.syncGroups);
  if (groups.length) {
    lines.push(`sync groups (${groups.length}):`);
    for (const [name, g] of groups) lines.push(`  ${name}: ${g.pipelines.join(', ')} (parallelism ${g.parallelism})`);
  }
  const jobs = Object.entries(config.jobs);
  lines.push(`jobs (${jobs.length}):`);
  for (const [name, j] of jobs) {
    const params = Object.entries(j.params).map(([n, p]) => `${n} (${p.type}${p.required ? '' : ', optional'})`);
    const steps = j.steps.map((s) => `${s.name} (${s.kind})`);
    lines.push(`  ${name}: ${j.profile}/${j.environment}; params ${params.join(', ') || '(none)'}; ${plural(steps.length, 'step')}: ${steps.join(', ')}${j.approval ? '; needs approval' : ''}`);
  }
  return lines;
}

export function registerConfig(program: Command): void {
  const config = program.command('config').description('work with the configuration file, without Temporal or a database');
  withConfigOption(
    config
      .command('check')
      .description('validate the config as the worker would load it and print what it resolved, secrets masked; exit 1 naming every problem by its path'),
  ).action((opts: ConfigOption) => {
    const file = configPath(opts);
    const loaded = loadConfig(opts); // throws ConfigError listing every problem: exit 1
    print(`${path.resolve(file)}: valid`);
    for (const line of describeConfig(loaded)) print(line);
  });
}
