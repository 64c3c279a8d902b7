// Types shared by activities and workflows. No runtime imports: workflows load this file too.

export type SqlText = string | null;

/** A page of rows in PostgreSQL text format (exact for every type), in target column names. */
export interface Batch {
  columns: string[];
  rows: SqlText[][];
  /** Key values (text) of the last row, for the next keyset page; null when empty. */
  lastKey: SqlText[] | null;
}

export interface SyncPlan {
  pipeline: string;
  mode: 'full-refresh' | 'append' | 'upsert';
  batchRows: number;
  rowTransform?: string;
  source: { profile: string; environment: string; relation: string };
  target: { profile: string; environment: string; table: string };
}

export interface ReadBatchInput {
  pipeline: string;
  auth?: JobAuth;
  after: SqlText[] | null;
  limit: number;
}

export interface WriteResult {
  /** Rows inserted or changed; unchanged rows are not counted. */
  rowsWritten: number;
}

/** Carried by on-behalf-of (login-idp) jobs: the user's IdP token, sealed — never plaintext in history. */
export interface JobAuth {
  idpToken: string;
}

export interface AcquireTokenInput {
  profile: string;
  environment: string;
  auth?: JobAuth;
}

/** What the token activity returns: metadata only, safe for workflow history. */
export interface LakebaseTokenInfo {
  profile: string;
  environment: string;
  identity: string;
  expiresAt: string;
  fingerprint: string;
  /** Token requests this worker process has made so far (all profiles). */
  workerTokenRequests: number;
}
