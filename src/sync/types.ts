// Values the sync engine hands to its callers (activities, and through them workflows). No runtime
// imports: workflow code loads these types too.
import type { KeyRange } from '../db/compareSql';

/** Order values of a row in PostgreSQL text form (exact for every type). */
export type CursorValue = string | null;

/** A partition as the workflow sees it: which ones are left, and where each stands. */
export interface PartitionPlan {
  partition: number;
  cursor: CursorValue[] | null;
  done: boolean;
}

export interface SyncPlan {
  pipeline: string;
  // 'cdc' only in type: a cdc pipeline's initial load is planned as an upsert (src/sync/cdc/).
  mode: 'full-refresh' | 'append' | 'upsert' | 'cdc';
  chunkRows: number;
  /** Target columns ordering the chunks (cursor first, then key). */
  order: string[];
  rowTransform?: string;
  source: { profile: string; environment: string; relation: string };
  target: { profile: string; environment: string; table: string };
  /** Where this run starts: after this cursor (null = from the beginning). */
  startCursor: CursorValue[] | null;
  /** True when a previous run's uncommitted remainder is being picked up. */
  resumed: boolean;
  /** Planner's estimate of the rows left to copy (for progress only). */
  estimatedRows: number;
  /** The target was empty at the start: chunks COPY straight into it (keys only grow), skipping the merge. */
  initialLoad: boolean;
  /** Partitioned runs only: the slices of the table, each with its own cursor, and how many run at once. */
  partitions?: PartitionPlan[];
  parallelism?: number;
  /** upsert: how target rows whose key left the source are treated after the chunks (absent in plans of older workers: ignore). */
  deletes?: 'hard' | 'soft' | 'ignore';
  /** Compare after the run (absent in plans of older workers: none). */
  verify?: 'none' | 'counts' | 'checksums';
  /** What this run does to the target's shape; left out when nothing. */
  targetShape?: TargetShapeReport;
  /** A dry run's description: nothing was claimed or changed. */
  dryRun?: DryRunReport;
  /** A re-sync of a populated target without a cursor, planned with `compare`: how it re-syncs and why (absent otherwise). */
  resync?: ResyncPlan;
  /** Of the pipeline's config when planned: its chunks and buckets carry it, and refuse to run under another (absent from older workers' plans). */
  fingerprint?: string;
}

/** How a re-sync without a cursor goes: compare-then-copy, or the plain merge of every row. */
export interface ResyncProbe {
  method: 'compare' | 'merge';
  /** The choice in a sentence, with the figures (also logged). */
  reason: string;
  /** The sampled bucket: sub-ranges digested and differing, source rows and rows changed (copied or gone). */
  probe: { buckets: number; subRanges: number; differingSubRanges: number; rows: number; changedRows: number };
  /** Buckets digest sub-buckets of `groupRows` rows and copy the differing ones whole (few changes); off: they compare row hashes. */
  digests: boolean;
  groupRows: number;
  leafRows: number;
  estimatedRows: number;
}

/** Where a verify of a cdc pipeline compares: the target as of its applied LSN, the source as of when it was planned. */
export interface VerifyPoint {
  appliedLsn: string | null;
  sourceLsn: string;
}

export interface ResyncPlan extends ResyncProbe {
  /** compare: the run's buckets (each commits its writes with `done`); empty for merge, which runs the partitions. */
  buckets: { bucket: number; done: boolean; rowsWritten: number; rowsDeleted: number }[];
}

export interface ResyncBucketResult {
  bucket: number;
  /** Source rows copied into the stage (only those that differ, or whole ranges where most do). */
  rowsCopied: number;
  /** Rows inserted or updated in the target. */
  rowsWritten: number;
  /** Target rows deleted (deletes: hard). */
  rowsDeleted: number;
  /** Sub-ranges whose digests differed. */
  rangesDiffering: number;
  /** Source keys whose row hashes were compared in the target. */
  keysCompared: number;
  alreadyCommitted: boolean;
}

export interface TargetShapeReport {
  /** The target did not exist: the plan created it with these statements (a dry run: would). */
  created?: string[];
  /** Source columns changed since the last run, and what the run does about each (schemaChanges). */
  changes?: string[];
  /** evolve: statements the first chunk runs on the target. */
  evolution?: string[];
}

export interface DryRunReport {
  /** What the run would do, in order, one sentence each. */
  actions: string[];
  /** The DDL it would run on the target (CREATE …, ALTER TABLE …). */
  statements: string[];
}

/** A run's delete detection: its key-range buckets and which are done. */
export interface DeletePlan {
  buckets: { bucket: number; done: boolean; rowsDeleted: number }[];
  leafRows: number;
  estimatedRows: number;
  /** See SyncPlan.fingerprint. */
  fingerprint?: string;
}

export interface DeleteBucketResult {
  bucket: number;
  /** Target rows deleted (or marked, deletes: soft) in this bucket. */
  rowsDeleted: number;
  /** Sub-ranges whose digests differed, so whose source keys were streamed to the target. */
  rangesChecked: number;
  keysCompared: number;
  alreadyCommitted: boolean;
}

/** A range of the bucket column, [lower, upper); null ends are open. */
export type BucketRange = KeyRange;

export interface VerifyPlan {
  pipeline: string;
  mode: 'counts' | 'checksums';
  buckets: BucketRange[];
  leafRows: number;
  /** Source rows after this cursor came after the last sync: not differences. */
  runCursor: CursorValue[] | null;
  /** Buckets compared at once (the pipeline's parallelism). */
  parallelism: number;
  /** Key columns the report names rows by (empty: ranges only). */
  key: string[];
  estimatedRows: number;
  /** A cdc pipeline: the point the compare stands at (the stream goes on while it runs). */
  at?: VerifyPoint;
  /** See SyncPlan.fingerprint. */
  fingerprint?: string;
}

export interface VerifyDifference {
  kind: 'missing' | 'extra' | 'differs';
  /** Key values as text, in key column order. */
  key: (string | null)[];
}

/** A difference verify did not count, and why (VerifyExcuse.reason says it in words). */
export interface VerifyExcuse extends VerifyDifference {
  /** `deletes-ignore`: a target row the source lost, kept by the pipeline; `append`: append mode never deletes; `after-cursor`: a source row newer than the last sync's cursor. */
  reason: 'deletes-ignore' | 'append' | 'after-cursor';
}

export interface VerifyBucketResult {
  range: BucketRange;
  sourceRows: number;
  targetRows: number;
  /** Rows (keyed) or sub-ranges (keyless) that differ. */
  mismatches: number;
  /** Differences explained by rows that came after the sync, or kept by deletes: ignore. */
  tolerated: number;
  /** The first differing rows by key. */
  differences: VerifyDifference[];
  /** The first excused rows by key, with why (workers before this field send none). */
  excused?: VerifyExcuse[];
  /** Differing sub-ranges (first few), with their counts on each side. */
  ranges: { range: BucketRange; sourceRows: number; targetRows: number }[];
}

export interface VerifyReport {
  pipeline: string;
  mode: 'counts' | 'checksums';
  ok: boolean;
  buckets: number;
  sourceRows: number;
  targetRows: number;
  mismatches: number;
  tolerated: number;
  /** The first differing buckets and rows. */
  differences: (VerifyDifference & { bucket: BucketRange })[];
  /** The first excused rows, with why. */
  excused?: VerifyExcuse[];
  ranges: { range: BucketRange; sourceRows: number; targetRows: number }[];
  /** A cdc pipeline: the point compared at (see VerifyPlan.at). */
  at?: VerifyPoint;
}

export interface ChunkResult {
  /** Cursor committed with this chunk (or found already committed). */
  cursor: CursorValue[] | null;
  rowsCopied: number;
  /** Rows inserted, changed or deleted in the target (unchanged rows are not written). */
  rowsWritten: number;
  /** Merges only: copied rows identical to the target's, left untouched. */
  rowsUnchanged?: number;
  bytes: number;
  /** No rows remain after `cursor` (in the partition, for a partition chunk). */
  done: boolean;
  /** An earlier attempt had committed this chunk already; nothing was copied. */
  alreadyCommitted: boolean;
}

export interface SwapReport {
  method: 'rename' | 'truncate-insert' | 'merge';
  reason: string;
}

export interface FinishResult {
  rowsInTarget: number | null;
  /** The last row the run committed, in order (what an incremental run starts after next time). */
  cursor?: CursorValue[] | null;
  /** Full refresh, or an upsert's first load: how the loaded table replaced (or was merged into) the target, and why that way. */
  swap?: SwapReport;
}
