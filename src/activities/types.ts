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
  after: SqlText[] | null;
  limit: number;
}

export interface WriteResult {
  /** Rows inserted or changed; unchanged rows are not counted. */
  rowsWritten: number;
}
