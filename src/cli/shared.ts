// What every command module shares: options, config loading, the Temporal client, secret files.
import type { Client } from '@temporalio/client';
import { InvalidArgumentError, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { JobFunction, RowTransform } from '../activities';
import { connectionClient } from './lazy';
import { ConfigError, loadConfigFile } from '../config/load';
import type { Config } from '../config/schema';

export interface ConfigOption {
  config?: string;
}

/** Adds the `-c, --config` option every configured command takes. */
export function withConfigOption(cmd: Command, what = 'configuration file (YAML or JSON); default $LAKEBASE_CONFIG or lakebase.yaml'): Command {
  return cmd.option('-c, --config <file>', what);
}

export function configPath(opts: ConfigOption): string {
  return opts.config ?? process.env.LAKEBASE_CONFIG ?? 'lakebase.yaml';
}

export function loadConfig(opts: ConfigOption): Config {
  return loadConfigFile(configPath(opts));
}

/** Connects with the config's Temporal settings, runs `fn`, and always closes the connection. */
export async function withClient<R>(config: Config, fn: (client: Client) => Promise<R>): Promise<R> {
  const client = await connectionClient().connectClient(config.temporal);
  try {
    return await fn(client);
  } finally {
    await client.connection.close();
  }
}

export function readSecretFile(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError([`${flag}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
}

/** `--idp-token-file` when given. */
export function idpTokenFrom(opts: { idpTokenFile?: string }): string | undefined {
  return opts.idpTokenFile ? readSecretFile(opts.idpTokenFile, '--idp-token-file') : undefined;
}

/** A name given on the command line must exist in the config; the error lists what does. */
export function requireNamed<T>(table: Record<string, T>, name: string, flag: string, what: string): T {
  const found = table[name];
  if (!found) throw new ConfigError([`${flag}: unknown ${what} "${name}"; configured: ${Object.keys(table).join(', ') || '(none)'}`]);
  return found;
}

/**
 * Loads `--transforms <module>`: named row transforms (export `rowTransforms`, or the default
 * export) and TypeScript job steps (export `jobFunctions`).
 */
export function loadExtensions(file: string | undefined): { rowTransforms?: Record<string, RowTransform>; jobFunctions?: Record<string, JobFunction> } {
  if (!file) return {};
  let mod: { default?: unknown; rowTransforms?: unknown; jobFunctions?: unknown };
  try {
    // The compiled CLI has no TypeScript loader until a .ts module asks for one.
    if (/\.[cm]?ts$/.test(file)) require('tsx/cjs');
    mod = require(path.resolve(file)) as typeof mod;
  } catch (err) {
    throw new ConfigError([`--transforms: cannot load ${file}: ${(err as Error).message.split('\n')[0]}`]);
  }
  const check = (table: unknown, what: string) => {
    for (const [name, fn] of Object.entries((table ?? {}) as Record<string, unknown>)) {
      if (typeof fn !== 'function') throw new ConfigError([`--transforms: ${what} "${name}" of ${file} is not a function`]);
    }
    return table as Record<string, never> | undefined;
  };
  return { rowTransforms: check(mod.rowTransforms ?? mod.default, 'row transform'), jobFunctions: check(mod.jobFunctions, 'job function') };
}

export function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Resolves on Ctrl-C or SIGTERM (long-running servers: emulator, codec server). */
export function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}
