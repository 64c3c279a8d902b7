import { createHash } from 'node:crypto';

export interface IssuedToken {
  token: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** Who the token speaks for (an email or a service principal application id). */
  identity: string;
  /** A password a person chose: no fingerprint (a short unsalted hash of it could be brute-forced from history). */
  guessable?: boolean;
}

export interface CachedToken extends IssuedToken {
  /** A short, non-reversible tag for logs and workflow results; the token itself never leaves the process. */
  fingerprint: string;
  fetchedAt: number;
}

/** Metadata safe to log or to return into workflow history. */
export type TokenMetadata = Omit<CachedToken, 'token'>;

export interface TokenCacheOptions {
  /** Refresh this long before expiry, but never more than half of the token's lifetime. */
  refreshSkewMs?: number;
  now?: () => number;
  /** Called once per real fetch (for metrics and tests). */
  onFetch?: (key: string) => void;
}

export interface TokenCache {
  get(key: string, fetch: () => Promise<IssuedToken>): Promise<CachedToken>;
  /** Drops the entry; with `token`, only if it is still that token (a newer one is kept). */
  invalidate(key: string, token?: string): void;
  peek(key: string): TokenMetadata | undefined;
  readonly fetches: number;
}

export function fingerprint(token: string): string {
  return `sha256:${createHash('sha256').update(token).digest('hex').slice(0, 12)}`;
}

export function metadataOf(t: CachedToken): TokenMetadata {
  const { token: _secret, ...meta } = t;
  return meta;
}

/** Process-wide cache: refresh ahead of expiry, one fetch per key at a time (single flight). */
export function createTokenCache(opts: TokenCacheOptions = {}): TokenCache {
  const skew = opts.refreshSkewMs ?? 5 * 60_000;
  const now = opts.now ?? Date.now;
  const entries = new Map<string, CachedToken>();
  const inflight = new Map<string, Promise<CachedToken>>();
  let fetches = 0;

  const fresh = (t: CachedToken) => {
    const ahead = Math.min(skew, (t.expiresAt - t.fetchedAt) / 2);
    return now() < t.expiresAt - ahead;
  };

  return {
    get fetches() {
      return fetches;
    },
    async get(key, fetch) {
      const hit = entries.get(key);
      if (hit && fresh(hit)) return hit;
      const running = inflight.get(key);
      if (running) return running;
      const p = (async () => {
        fetches++;
        opts.onFetch?.(key);
        const fetchedAt = now();
        const issued = await fetch();
        const entry: CachedToken = { ...issued, fetchedAt, fingerprint: issued.guessable ? 'none (password)' : fingerprint(issued.token) };
        entries.set(key, entry);
        return entry;
      })().finally(() => inflight.delete(key));
      inflight.set(key, p);
      return p;
    },
    invalidate(key, token) {
      const e = entries.get(key);
      if (e && (token === undefined || e.token === token)) entries.delete(key);
    },
    peek(key) {
      const e = entries.get(key);
      return e && metadataOf(e);
    },
  };
}
