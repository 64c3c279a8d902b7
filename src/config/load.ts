import { readFileSync } from 'node:fs';
import { checkConfigFiles } from './files';
import path from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema';

/** Thrown for any invalid configuration; `problems` holds one `path: message` line each. */
export class ConfigError extends Error {
  constructor(readonly problems: string[], source = 'configuration') {
    super(`invalid ${source}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const SECRET_KEY = /token|secret|password|key$|^key|apikey/i;

function formatPath(p: ReadonlyArray<PropertyKey>): string {
  return p.length ? p.map(String).join('.') : '(root)';
}

function describeInput(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'an object';
  return JSON.stringify(input);
}

/** One line per issue, naming the path; never echoes values under secret-looking keys. */
export function formatIssues(issues: ReadonlyArray<z.core.$ZodIssue>): string[] {
  return issues.map((iss) => {
    const where = formatPath(iss.path);
    const secret = iss.path.some((k) => typeof k === 'string' && SECRET_KEY.test(k));
    if (iss.code === 'unrecognized_keys') {
      const base = iss.path.length ? `${where}.` : '';
      return iss.keys.map((k) => `${base}${k}: unknown key; remove it or check its spelling`).join('\n  ');
    }
    if (iss.code === 'invalid_union' && 'note' in iss && iss.note === 'No matching discriminator') {
      // The input is the whole object; show only the discriminator's value (never a secret).
      const key = iss.path[iss.path.length - 1];
      const value = 'input' in iss && iss.input && typeof iss.input === 'object' && key !== undefined ? (iss.input as Record<PropertyKey, unknown>)[key] : undefined;
      return `${where}: ${iss.message}, got ${describeInput(value)}`;
    }
    const input = 'input' in iss ? iss.input : undefined;
    const got = iss.code === 'custom' || secret ? '' : `, got ${describeInput(input)}`;
    const message = iss.code === 'invalid_type' && input === undefined ? `${iss.message} (required)` : `${iss.message}${got}`;
    return `${where}: ${message}`;
  });
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces `${NAME}` / `${NAME:-default}` in every string of a parsed document. */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, at: PropertyKey[] = [], problems: string[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      problems.push(`${formatPath(at)}: environment variable ${name} is not set; export it or use \${${name}:-default}`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, [...at, i], problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateEnv(v, env, [...at, k], problems)]));
  }
  return value;
}

/** Parses a config object (already read from YAML/JSON) after env interpolation. */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env, source?: string): Config {
  const problems: string[] = [];
  const interpolated = interpolateEnv(raw ?? {}, env, [], problems);
  const result = configSchema.safeParse(interpolated, { reportInput: true });
  // An unset variable is already named at its path; the schema's complaint about the '' left there
  // ("expected a non-empty …") would only repeat it.
  const unset = new Set(problems.map((p) => p.slice(0, p.indexOf(': '))));
  if (!result.success) problems.push(...formatIssues(result.error.issues).filter((p) => !unset.has(p.slice(0, p.indexOf(': ')))));
  if (problems.length || !result.success) throw new ConfigError(problems, source);
  return result.data;
}

// `{ token: ${DATABRICKS_TOKEN} }` is a YAML syntax error (a `{` inside a flow map), yet it is the
// natural way to write it. References are swapped for plain-scalar placeholders before parsing and
// swapped back after, so they work unquoted anywhere and never change the document's structure.
const PLACEHOLDER = /\$\$ENVREF_([0-9a-f]+)\$\$/g;
const hideEnvRefs = (text: string) => text.replace(ENV_REF, (m) => `$$ENVREF_${Buffer.from(m).toString('hex')}$$`);
function restoreEnvRefs(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(PLACEHOLDER, (_m, hex: string) => Buffer.from(hex, 'hex').toString());
  if (Array.isArray(value)) return value.map(restoreEnvRefs);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, restoreEnvRefs(v)]));
  return value;
}

/** Parses YAML or JSON text (by file extension) into a plain document, `${ENV}` references intact. */
export function parseDocument(text: string, file: string): unknown {
  try {
    return /\.json$/i.test(file) ? JSON.parse(text) : restoreEnvRefs(YAML.parse(hideEnvRefs(text), { prettyErrors: true }));
  } catch (err) {
    throw new ConfigError([`(syntax): ${(err as Error).message.split('\n')[0]}`], file);
  }
}

export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfig(parseDocument(text, file), env, file);
}

/** Reads, parses, interpolates and validates any document against a zod schema (emulator options, …). */
export function loadDocument<T>(file: string, schema: z.ZodType<T>, env: NodeJS.ProcessEnv = process.env): T {
  const problems: string[] = [];
  const doc = interpolateEnv(parseDocument(readText(file), file), env, [], problems);
  const result = schema.safeParse(doc, { reportInput: true });
  if (!result.success) problems.push(...formatIssues(result.error.issues));
  if (problems.length || !result.success) throw new ConfigError(problems, file);
  return result.data;
}

function readText(file: string): string {
  try {
    return readFileSync(path.resolve(file), 'utf8');
  } catch (err) {
    throw new ConfigError([`(file): cannot read ${path.resolve(file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`], file);
  }
}

/**
 * Reads and validates a config file. Every `…File` setting it names is checked first: a missing or
 * unreadable file is reported before any other problem (and before anything connects), except a
 * federation token file marked `tokenFileWrittenLater: true`, which is a warning.
 */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env, warn: (message: string) => void = (m) => process.stderr.write(`warning: ${m}\n`)): Config {
  const where = path.resolve(file);
  const doc = parseDocument(readText(file), where);
  // Every section has defaults, so an empty file would "work" and do nothing: say what is missing.
  if (doc === null || doc === undefined || (typeof doc === 'object' && !Array.isArray(doc) && Object.keys(doc).length === 0)) {
    throw new ConfigError(['(file): the file is empty; it needs at least one profile (profiles:) and the pipelines or jobs to run on it — see examples/lakebase.yaml'], where);
  }
  const files = checkConfigFiles(interpolateEnv(doc, env));
  for (const w of files.warnings) warn(`${where}: ${w}`);
  let config: Config;
  try {
    config = parseConfig(doc, env, where);
  } catch (err) {
    if (err instanceof ConfigError && files.problems.length) throw new ConfigError([...files.problems, ...err.problems], where);
    throw err;
  }
  if (files.problems.length) throw new ConfigError(files.problems, where);
  return config;
}
