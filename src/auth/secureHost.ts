import { LakebaseAuthError } from './errors';

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/**
 * Bearer tokens (PATs, OAuth tokens) go to the workspace in every request: over http:// anyone on
 * the path reads them. Only loopback (a local emulator) may be plain HTTP, and host names listed in
 * LAKEBASE_INSECURE_HTTP_HOSTS (comma-separated: a compose network's emulator, never a workspace).
 */
export function assertSecureWorkspace(workspaceHost: string, where: string, env: NodeJS.ProcessEnv = process.env): void {
  let url: URL;
  try {
    url = new URL(workspaceHost);
  } catch {
    return; // the config schema reports a malformed URL
  }
  if (url.protocol !== 'http:') return;
  const allowed = (env.LAKEBASE_INSECURE_HTTP_HOSTS ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  if (LOOPBACK.test(url.hostname) || allowed.includes(url.hostname.toLowerCase())) return;
  throw new LakebaseAuthError(
    'LakebaseAuthConfigError',
    `${where}: ${url.origin} is plain HTTP, which would send bearer tokens unencrypted; use https:// (http:// is accepted only for loopback hosts)`,
    false,
  );
}
