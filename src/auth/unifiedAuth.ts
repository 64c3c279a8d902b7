import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Databricks client unified authentication, as the Databricks CLI and SDKs do it
 * (https://docs.databricks.com/aws/en/dev-tools/auth/unified-auth): for each field, explicit
 * configuration first, then the DATABRICKS_* environment, then a profile of ~/.databrickscfg
 * (DATABRICKS_CONFIG_FILE overrides the path; the profile is the explicit one, else
 * DATABRICKS_CONFIG_PROFILE, else DEFAULT). The method is the first of PAT, then OAuth M2M, whose
 * fields are all found — the SDKs' default order.
 */

export type FieldName = 'host' | 'token' | 'clientId' | 'clientSecret' | 'accountId';

/** Where a value came from, for messages: `config`, `env DATABRICKS_HOST`, `~/.databrickscfg [DEFAULT] host`. */
export type Source = string;

export interface ExplicitDatabricksAuth {
  profile?: string;
  host?: string;
  token?: string;
  clientId?: string;
  clientSecret?: string;
  accountId?: string;
}

export type ResolvedDatabricksAuth =
  | { method: 'pat'; workspaceHost: string; token: string; sources: Partial<Record<FieldName, Source>> }
  | { method: 'm2m'; workspaceHost: string; clientId: string; clientSecret: string; accountId?: string; sources: Partial<Record<FieldName, Source>> };

const ENV: Record<FieldName, string> = {
  host: 'DATABRICKS_HOST',
  token: 'DATABRICKS_TOKEN',
  clientId: 'DATABRICKS_CLIENT_ID',
  clientSecret: 'DATABRICKS_CLIENT_SECRET',
  accountId: 'DATABRICKS_ACCOUNT_ID',
};

const INI_KEY: Record<FieldName, string> = { host: 'host', token: 'token', clientId: 'client_id', clientSecret: 'client_secret', accountId: 'account_id' };

export class DatabricksAuthResolutionError extends Error {
  override name = 'DatabricksAuthResolutionError';
}

/** The .databrickscfg format: `[section]` headers, `key = value` lines, `#`/`;` comments. */
export function parseDatabricksCfg(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  text.split(/\r?\n/).forEach((raw) => {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      const name = header[1]!.trim();
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      return;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || !current) return; // keys before any section are ignored, as Python's configparser would reject them
    current.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  });
  return sections;
}

export function configFilePath(env: NodeJS.ProcessEnv): string {
  const p = env.DATABRICKS_CONFIG_FILE;
  if (p) return p.startsWith('~') ? path.join(env.HOME ?? os.homedir(), p.slice(1)) : p;
  return path.join(env.HOME ?? os.homedir(), '.databrickscfg');
}

export function resolveDatabricksAuth(explicit: ExplicitDatabricksAuth, env: NodeJS.ProcessEnv = process.env, where = 'auth'): ResolvedDatabricksAuth {
  const values: Partial<Record<FieldName, string>> = {};
  const sources: Partial<Record<FieldName, Source>> = {};
  const fields = Object.keys(ENV) as FieldName[];

  for (const f of fields) {
    const v = explicit[f];
    if (v) [values[f], sources[f]] = [v, `${where}.${f}`];
  }
  for (const f of fields) {
    const v = env[ENV[f]];
    if (!values[f] && v) [values[f], sources[f]] = [v, `env ${ENV[f]}`];
  }

  const file = configFilePath(env);
  const profileName = explicit.profile ?? env.DATABRICKS_CONFIG_PROFILE ?? 'DEFAULT';
  const profileFrom = explicit.profile ? `${where}.profile` : env.DATABRICKS_CONFIG_PROFILE ? 'env DATABRICKS_CONFIG_PROFILE' : 'the default';
  let fileNote: string;
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    fileNote = `${file}: not read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  if (text !== undefined) {
    const section = parseDatabricksCfg(text).get(profileName);
    if (section) {
      fileNote = `${file} [${profileName}] read`;
      for (const f of fields) {
        const v = section.get(INI_KEY[f]);
        if (!values[f] && v) [values[f], sources[f]] = [v, `${file} [${profileName}] ${INI_KEY[f]}`];
      }
    } else {
      fileNote = `${file}: no [${profileName}] section`;
    }
    // A named profile that does not exist is a mistake, not "nothing configured" (the SDKs fail too).
    if (!section && profileName !== 'DEFAULT')
      throw new DatabricksAuthResolutionError(`Databricks profile "${profileName}" (from ${profileFrom}) is not in ${file}; add a [${profileName}] section or name another profile`);
  }

  const found = fields.filter((f) => values[f]).map((f) => `${f} from ${sources[f]}`);
  const missing = (need: FieldName[]) => need.filter((f) => !values[f]);
  const host = values.host;
  if (host && values.token) return { method: 'pat', workspaceHost: normaliseHost(host), token: values.token, sources };
  if (host && values.clientId && values.clientSecret)
    return { method: 'm2m', workspaceHost: normaliseHost(host), clientId: values.clientId, clientSecret: values.clientSecret, accountId: values.accountId, sources };

  const patMissing = missing(['host', 'token']);
  const m2mMissing = missing(['host', 'clientId', 'clientSecret']);
  // Secrets are not accepted in the YAML for this method, so only point at places they may be put.
  const inConfig = new Set<FieldName>(['host', 'clientId', 'accountId']);
  const describe = (fs: FieldName[]) =>
    fs.map((f) => `${f} (${inConfig.has(f) ? `${where}.${f}, ` : ''}env ${ENV[f]} or ${INI_KEY[f]} in the profile)`).join(', ');
  throw new DatabricksAuthResolutionError(
    `${where}: Databricks unified auth found no complete credential. ` +
      `Found: ${found.length ? found.join('; ') : 'nothing'}; config file ${fileNote!}; profile ${profileName} (${profileFrom}). ` +
      `For a personal access token, missing ${describe(patMissing)}. For OAuth M2M, missing ${describe(m2mMissing)}. ` +
      `A plain PostgreSQL needs no Databricks credential: give the profile auth: { method: password, password: \${PGPASSWORD} } (or passwordFile), ` +
      `or auth: { method: none } for a server that asks for no password (trust, peer).`,
  );
}

function normaliseHost(v: string): string {
  return (/^https?:\/\//.test(v) ? v : `https://${v}`).replace(/\/+$/, '');
}
