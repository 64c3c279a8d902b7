// The shape of one generated case: a table (or two), a mode, rounds of source transactions each
// followed by a lifecycle event, and faults at random points. Plain data, printable as JSON.

export const MODES = ['full-refresh', 'append', 'upsert-cursor', 'upsert-merge', 'upsert-soft', 'resync', 'cdc'] as const;
export type Mode = (typeof MODES)[number];

export const COLUMN_KINDS = [
  'int', 'bigint', 'numeric', 'text', 'varchar', 'uuid', 'bool', 'timestamptz', 'date', 'jsonb', 'bytea', 'int[]', 'text[]', 'enum', 'domain', 'tsvector', 'toast',
] as const;
export type ColumnKind = (typeof COLUMN_KINDS)[number];

export interface Column {
  name: string;
  kind: ColumnKind;
  /** text/varchar/toast: an explicit COLLATE. */
  collation?: string;
  notNull?: boolean;
  /** Added mid-workload with this DEFAULT literal (existing rows take it). */
  default?: string;
}

export type KeyShape = 'int' | 'text' | 'uuid' | 'int+text';
export type Layout = 'plain' | 'partitioned' | 'replica-full';

export interface TableSpec {
  name: string;
  keyShape: KeyShape;
  /** The text key column's collation. */
  keyCollation: string;
  /** Payload columns (the key columns and the `rev` cursor are implied). */
  columns: Column[];
  /** false: the first payload column comes before the key. */
  keyFirst: boolean;
  layout: Layout;
  enumLabels: string[];
}

export type Op =
  | { op: 'insert'; rows: number }
  | { op: 'update'; rows: number; keyChange: boolean; touchToast: boolean }
  | { op: 'hot'; rows: number; times: number }
  | { op: 'delete'; rows: number }
  | { op: 'truncate' }
  | { op: 'add-column'; column: Column }
  | { op: 'drop-column'; name: string }
  | { op: 'add-enum-label'; label: string };

export interface Txn {
  /** Which table (index into Case.tables). */
  table: number;
  ops: Op[];
}

export const BATCH_EVENTS = ['rerun', 'group-run'] as const;
export const CDC_EVENTS = ['stream', 'stop-start', 'join'] as const;
export type RoundEvent = (typeof BATCH_EVENTS)[number] | (typeof CDC_EVENTS)[number];
/** Every event kind a case can contain, the first sync or cdc start included (for coverage). */
export const EVENT_KINDS = ['sync-start', 'cdc-start', ...BATCH_EVENTS, ...CDC_EVENTS] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export const FAULTS = ['worker-kill', 'terminate-backends', 'pg-restart', 'temporal-restart'] as const;
export type Fault = (typeof FAULTS)[number];

export interface Round {
  txns: Txn[];
  event: RoundEvent;
  fault?: Fault;
  /** ms after the event starts (or the workload, for cdc) that the fault strikes. */
  faultAfterMs: number;
}

/** Database default collations of the two sides (batch modes; cdc runs on the private server's default). */
export type DbCollation = 'default' | 'c' | 'icu';

export interface Case {
  seed: number;
  mode: Mode;
  /** tables[0] is the pipeline's; tables[1] (cdc 'join' only) joins the running stream. */
  tables: TableSpec[];
  initialRows: number[];
  rounds: Round[];
  databases: { source: DbCollation; target: DbCollation };
  batchRows: number;
  /** The harness creates the target itself with the key in the target database's default collation (a user's own table). */
  precreateTarget?: boolean;
  /** After the oracle: rows the harness edits behind the worker (verify must name exactly these). */
  tamper: { update: number; delete: number; insert: number };
}

/** Columns a case may never drop: keys and the cursor. */
export const KEY_COLUMNS: Record<KeyShape, { name: string; type: 'int' | 'text' | 'uuid' }[]> = {
  int: [{ name: 'k_int', type: 'int' }],
  text: [{ name: 'k_text', type: 'text' }],
  uuid: [{ name: 'k_uuid', type: 'uuid' }],
  'int+text': [{ name: 'k_int', type: 'int' }, { name: 'k_text', type: 'text' }],
};

export const keyNames = (t: TableSpec): string[] => KEY_COLUMNS[t.keyShape].map((k) => k.name);

export function eventsOf(c: Case): EventKind[] {
  return [c.mode === 'cdc' ? 'cdc-start' : 'sync-start', ...c.rounds.map((r) => r.event)];
}

export function faultsOf(c: Case): Fault[] {
  return c.rounds.flatMap((r) => (r.fault ? [r.fault] : []));
}

/** Total rows a case writes (its cost, roughly). */
export function caseWeight(c: Case): number {
  const ops = c.rounds.flatMap((r) => r.txns.flatMap((t) => t.ops));
  return c.initialRows.reduce((a, b) => a + b, 0) + ops.reduce((n, o) => n + ('rows' in o ? o.rows * ('times' in o ? o.times : 1) : 0), 0);
}
