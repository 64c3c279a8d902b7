/** The one place that decides what a PostgreSQL / network error means for retries. */

export type SqlErrorKind = 'transient' | 'auth' | 'sql' | 'data' | 'constraint' | 'unknown';

export interface SqlErrorClass {
  kind: SqlErrorKind;
  /** Temporal failure type name. */
  type: 'LakebaseTransientError' | 'LakebaseLoginFailed' | 'LakebaseSqlError' | 'LakebaseDataError' | 'LakebaseConstraintError' | 'LakebaseUnknownError';
  retryable: boolean;
  sqlState?: string;
}

const TRANSIENT_STATES = new Set(['53300', '57P01', '57P02', '57P03', '40001', '40P01', '55P03', '57014']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

interface PgLikeError {
  code?: unknown;
  message?: unknown;
}

export function classifySqlError(err: unknown): SqlErrorClass {
  const code = typeof (err as PgLikeError)?.code === 'string' ? ((err as PgLikeError).code as string) : undefined;
  const message = String((err as PgLikeError)?.message ?? '');
  if (code && /^[0-9A-Z]{5}$/.test(code)) {
    // 57014 is query_canceled: a statement_timeout; the chunk is retried (with backoff) like other transients.
    if (code.startsWith('08') || TRANSIENT_STATES.has(code)) return { kind: 'transient', type: 'LakebaseTransientError', retryable: true, sqlState: code };
    if (code === '28P01' || code === '28000') return { kind: 'auth', type: 'LakebaseLoginFailed', retryable: true, sqlState: code };
    if (code.startsWith('42')) return { kind: 'sql', type: 'LakebaseSqlError', retryable: false, sqlState: code };
    if (code.startsWith('22')) return { kind: 'data', type: 'LakebaseDataError', retryable: false, sqlState: code };
    if (code.startsWith('23')) return { kind: 'constraint', type: 'LakebaseConstraintError', retryable: false, sqlState: code };
    return { kind: 'unknown', type: 'LakebaseUnknownError', retryable: true, sqlState: code };
  }
  if (code && NETWORK_CODES.has(code)) return { kind: 'transient', type: 'LakebaseTransientError', retryable: true };
  // node-postgres reports a dropped socket with plain messages rather than codes.
  if (/Connection terminated|connection timeout|socket hang up|Client has encountered a connection error/i.test(message))
    return { kind: 'transient', type: 'LakebaseTransientError', retryable: true };
  return { kind: 'unknown', type: 'LakebaseUnknownError', retryable: true };
}

/** Failure types a workflow must not retry (listed in its retry policies). */
export const NON_RETRYABLE_SQL_TYPES = ['LakebaseSqlError', 'LakebaseDataError', 'LakebaseConstraintError'] as const;

/** Text a user can act on: the statement, SQLSTATE, server detail. Never includes connection secrets. */
export function describeSqlError(err: unknown, statement: string): string {
  const e = err as PgLikeError & { detail?: unknown; hint?: unknown; column?: unknown; where?: unknown };
  const parts = [`${statement} failed: ${String(e?.message ?? err)}`];
  if (typeof e?.code === 'string') parts.push(`SQLSTATE ${e.code}`);
  if (typeof e?.detail === 'string' && e.detail) parts.push(`detail: ${e.detail}`);
  if (typeof e?.column === 'string' && e.column) parts.push(`column: ${e.column}`);
  if (typeof e?.hint === 'string' && e.hint) parts.push(`hint: ${e.hint}`);
  if (typeof e?.where === 'string' && e.where) parts.push(`where: ${e.where.split('\n')[0]}`);
  return parts.join('; ');
}
