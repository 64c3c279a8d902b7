// Which config file a process runs with: its path, a fingerprint of its text, and when it was
// loaded. A worker reads its file once at start; a run naming a pipeline or job added to the file
// later meets the worker's old copy, and the error must say so (and which copy) rather than only
// "configured jobs: (none)". Only node:crypto: src/config/lookup.ts asks it for the worker's note.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface ConfigSource {
  /** Absolute path of the file. */
  path: string;
  /** First 12 hex digits of the SHA-256 of the file's text (before ${ENV} interpolation). */
  fingerprint: string;
  /** ISO time the process read it. */
  loadedAt: string;
}

export const fingerprintText = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 12);

/** The source of a config file as it is on disk now. */
export function readConfigSource(file: string, at = new Date()): ConfigSource {
  return { path: path.resolve(file), fingerprint: fingerprintText(readFileSync(file, 'utf8')), loadedAt: at.toISOString() };
}

export const describeSource = (s: ConfigSource): string => `${s.path} (${s.fingerprint})`;

/** The memo key under which a start records the config file the CLI read (`status` shows it). */
export const CONFIG_MEMO = 'lakebaseConfig';

/** The start options' memo naming the config file (nothing when there is none or it cannot be read). */
export function configMemo(file: string | undefined): { memo?: Record<string, { path: string; fingerprint: string }> } {
  if (!file) return {};
  try {
    const { path: p, fingerprint } = readConfigSource(file);
    return { memo: { [CONFIG_MEMO]: { path: p, fingerprint } } };
  } catch {
    return {};
  }
}

// Keyed by the parsed config object: the worker hands that one object to every activity.
const workerSources = new WeakMap<object, ConfigSource>();

/** Marks `config` as the one this worker process loaded from `source` (src/cli/worker.ts). */
export function rememberWorkerConfig(config: object, source: ConfigSource): void {
  workerSources.set(config, source);
}

export const workerConfigSource = (config: object): ConfigSource | undefined => workerSources.get(config);

/**
 * For a name the worker's config lacks: which file and version the worker runs, and what to do.
 * Empty outside a worker (the CLI reads the file afresh each time, so its own lookups are current).
 */
export function workerConfigNote(config: object): string {
  const s = workerSources.get(config);
  return s ? `; the worker loaded ${describeSource(s)} at ${s.loadedAt}; restart it to pick up changes` : '';
}
