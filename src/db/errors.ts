/** The one place that decides what a PostgreSQL / network error means for retries. */

import type { SqlFailureType } from '../failureTypes';

export type SqlErrorKind = 'transient' | 'auth' | 'tls' | 'sql' | 'data' | 'constraint' | 'replication' | 'unknown';

export interface SqlErrorClass {
  kind: SqlErrorKind;
  /** Temporal failure type name. */
  type: SqlFailureType;
  retryable: boolean;
  sqlState?: string;
}

const TRANSIENT_STATES = new Set(['53300', '57P01', '57P02', '57P03', '40001', '40P01', '55P03', '57014']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

interface PgLikeError {
  code?: unknown;
  message?: unknown;
  detail?: unknown;
}

/**
 * Logical replication refusals that no retry can cure (SQLSTATE 55000 / 53400 are otherwise
 * "unknown, retry"): the source's settings or an invalidated slot. Returns the fix, or undefined.
 */
export function describeReplicationProblem(err: unknown): { type: 'LakebaseCdcSourceNotReady' | 'LakebaseCdcSlotInvalidated'; fix: string } | undefined {
  const code = String((err as PgLikeError)?.code ?? '');
  const text = `${String((err as PgLikeError)?.message ?? '')} ${String((err as PgLikeError)?.detail ?? '')}`;
  if (code === '55000' && /wal_level/.test(text))
    return { type: 'LakebaseCdcSourceNotReady', fix: 'the source needs wal_level = logical: run ALTER SYSTEM SET wal_level = logical and restart it (Lakebase runs logical already)' };
  const slot = /replication slot "([^"]+)"/.exec(text)?.[1] ?? '<slot>';
  if (code === '55000' && (/invalidated/.test(text) || /can no longer get changes from replication slot/.test(text)))
    return {
      type: 'LakebaseCdcSlotInvalidated',
      fix: `slot "${slot}" was invalidated (it fell behind past max_slot_wal_keep_size; the WAL it needed is gone): run cdc stop --drop-slot (or SELECT pg_drop_replication_slot('${slot}')), then cdc start to copy the tables anew; raise max_slot_wal_keep_size so it does not happen again`,
    };
  if (code === '53400' && /replication slots are in use/.test(text))
    return { type: 'LakebaseCdcSourceNotReady', fix: 'every replication slot of the source is in use: drop one nobody reads (SELECT slot_name FROM pg_replication_slots WHERE NOT active) or raise max_replication_slots and restart' };
  return undefined;
}

const TLS_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT', 'CERT_UNTRUSTED', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_OSSL_PEM_NO_START_LINE', 'ERR_OSSL_X509_KEY_VALUES_MISMATCH',
]);

/** A TLS or certificate problem, in words that say what to change (ssl.* settings), or undefined. */
export function describeTlsProblem(err: unknown, host?: string): string | undefined {
  const code = String((err as PgLikeError)?.code ?? '');
  const message = String((err as PgLikeError)?.message ?? '');
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `server certificate does not match host "${host ?? '?'}" (ssl.mode verify-full checks the name): connect with a host name the certificate lists, or use verify-ca`;
  if (code === 'CERT_HAS_EXPIRED') return 'server certificate has expired: renew it on the server';
  if (code === 'CERT_NOT_YET_VALID') return 'server certificate is not valid yet: check the server and worker clocks';
  if (TLS_CODES.has(code) && /CERT|SIGNATURE|ISSUER/.test(code))
    return `server certificate not trusted (${code}): set ssl.ca or ssl.caFile to the CA that signed the server's certificate (ask its operator; Lakebase's is in the system store). Do not turn verification off: the password sent over this connection is a token an impostor could reuse`;
  if (code.startsWith('ERR_OSSL')) return `TLS key material could not be used (${code}): check ssl.cert/ssl.key (PEM, matching pair)`;
  if (/does not support SSL/i.test(message)) return 'server does not offer TLS: enable ssl on the server, or set ssl.mode: disable';
  if (/requires a valid client certificate/i.test(message)) return 'the server requires a client certificate: set ssl.cert and ssl.key (or certFile/keyFile) to a certificate its CA trusts';
  if (/pg_hba\.conf.*no encryption/i.test(message)) return 'the server accepts this login only over TLS: set ssl.mode to verify-full (or verify-ca), with ssl.ca when its CA is not in the system store';
  if (/certificate authentication failed|certificate.*does not match/i.test(message)) return `client certificate rejected: ${message}`;
  return undefined;
}

export function classifySqlError(err: unknown): SqlErrorClass {
  const code = typeof (err as PgLikeError)?.code === 'string' ? ((err as PgLikeError).code as string) : undefined;
  const message = String((err as PgLikeError)?.message ?? '');
  if (describeTlsProblem(err)) return { kind: 'tls', type: 'LakebaseTlsError', retryable: false, sqlState: code && /^[0-9A-Z]{5}$/.test(code) ? code : undefined };
  const replication = describeReplicationProblem(err);
  if (replication) return { kind: 'replication', type: replication.type, retryable: false, sqlState: code };
  if (code && /^[0-9A-Z]{5}$/.test(code)) {
    // 57014 is query_canceled: a statement_timeout; the chunk is retried (with backoff) like other transients.
    if (code.startsWith('08') || TRANSIENT_STATES.has(code)) return { kind: 'transient', type: 'LakebaseTransientError', retryable: true, sqlState: code };
    if (code === '28P01' || code === '28000') return { kind: 'auth', type: 'LakebaseLoginFailed', retryable: true, sqlState: code };
    // 25006: a write in a read-only transaction (a read step that writes): trying again cannot help.
    if (code.startsWith('42') || code === '25006') return { kind: 'sql', type: 'LakebaseSqlError', retryable: false, sqlState: code };
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

/** Text a user can act on: the statement, SQLSTATE, server detail. Never includes connection secrets. */
export function describeSqlError(err: unknown, statement: string): string {
  const e = err as PgLikeError & { detail?: unknown; hint?: unknown; column?: unknown; where?: unknown };
  const tls = describeTlsProblem(err);
  if (tls) return `${statement} failed: ${tls}`;
  const parts = [`${statement} failed: ${String(e?.message ?? err)}`];
  if (typeof e?.code === 'string') parts.push(`SQLSTATE ${e.code}`);
  if (typeof e?.detail === 'string' && e.detail) parts.push(`detail: ${e.detail}`);
  if (typeof e?.column === 'string' && e.column) parts.push(`column: ${e.column}`);
  if (typeof e?.hint === 'string' && e.hint) parts.push(`hint: ${e.hint}`);
  if (typeof e?.where === 'string' && e.where) parts.push(`where: ${e.where.split('\n')[0]}`);
  const replication = describeReplicationProblem(err);
  if (replication) parts.push(`fix: ${replication.fix}`);
  return parts.join('; ');
}
