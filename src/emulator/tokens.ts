import { randomBytes } from 'node:crypto';

export type TokenKind = 'oauth' | 'database-credential' | 'pat';

/** What a database credential minted with READ_ONLY claims may do: read these tables (`schema.table`), or every table when empty. */
export interface ReadOnlyGrant {
  tables: string[];
}

interface TokenRecord {
  identity: string;
  kind: TokenKind;
  /** Epoch ms; Infinity for PATs. */
  expiresAt: number;
  /** Set for a database credential requested with `claims: [{ permission_set: READ_ONLY }]`. */
  readOnly?: ReadOnlyGrant;
}

/** Tokens the emulated workspace has issued. Several may be valid for one identity at once. */
export class TokenStore {
  private readonly tokens = new Map<string, TokenRecord>();

  issue(identity: string, kind: Exclude<TokenKind, 'pat'>, ttlSeconds: number, readOnly?: ReadOnlyGrant): { token: string; expiresAt: number } {
    const prefix = kind === 'oauth' ? 'eyJlbXVsYXRlZCI6dHJ1ZX0' : 'dbcred';
    const token = `${prefix}.${randomBytes(24).toString('base64url')}`;
    const expiresAt = Date.now() + ttlSeconds * 1000;
    this.tokens.set(token, { identity, kind, expiresAt, ...(readOnly && { readOnly }) });
    return { token, expiresAt };
  }

  addPat(identity: string, token: string): void {
    this.tokens.set(token, { identity, kind: 'pat', expiresAt: Number.POSITIVE_INFINITY });
  }

  /** The record if the token exists and has not expired now. */
  valid(token: string): TokenRecord | undefined {
    const r = this.tokens.get(token);
    return r && r.expiresAt > Date.now() ? r : undefined;
  }

  /** Every token ever issued or registered (tests scan logs and history for them). */
  all(): string[] {
    return [...this.tokens.keys()];
  }

  /** Expire every token of an identity (or all), as a revocation would. */
  expireAll(identity?: string): void {
    for (const [t, r] of this.tokens) if (identity === undefined || r.identity === identity) this.tokens.set(t, { ...r, expiresAt: 0 });
  }
}
