// Known findings: losses the suite found on main, each kept as a `todo` test until its fix lands.
// When a fix lands, flip `fixed` to true here (one line): every seed and regression naming the
// finding becomes required.
import type { Case } from './case';

export interface Finding {
  title: string;
  fixed: boolean;
  /** Does a failing case have the shape this finding needs? (labels long-run failures) */
  shape(c: Case): boolean;
}

const cdcOps = (c: Case) => (c.mode === 'cdc' ? c.rounds.flatMap((r) => r.txns.flatMap((t) => t.ops.map((o) => ({ o, t: c.tables[t.table]! })))) : []);

export const FINDINGS = {
  'cdc-toast-key-change': {
    title: 'cdc: a key change that leaves a TOASTed column unchanged writes the new row without it (NULL, or 23502 when NOT NULL) (issue 27 #2)',
    fixed: true,
    shape: (c) => cdcOps(c).some(({ o, t }) => o.op === 'update' && o.keyChange && !o.touchToast && t.columns.some((col) => col.kind === 'toast')),
  },
  'cdc-join-while-streaming': {
    title: 'cdc: a pipeline joining a running stream loses the changes made while it copies (issue 27 #1)',
    // The state re-read before each confirm (checkpoint.ts), and a commit with nothing for the reader
    // flushed on the batch timer (stream.ts): pending, it froze every decision until the segment ended.
    fixed: true,
    shape: (c) => c.mode === 'cdc' && c.rounds.some((r) => r.event === 'join'),
  },
  'cdc-add-column-default': {
    title: 'cdc: ADD COLUMN … DEFAULT mid-stream leaves the existing target rows NULL (issue 27 #8)',
    fixed: true,
    shape: (c) => cdcOps(c).some(({ o }) => o.op === 'add-column' && o.column.default !== undefined),
  },
  'cdc-enum-label': {
    title: 'cdc: a new enum label used mid-stream fails the apply (issue 27 #8)',
    fixed: true,
    shape: (c) => cdcOps(c).some(({ o }) => o.op === 'add-enum-label'),
  },
  'cdc-long-transaction': {
    title: 'cdc: a source transaction longer than a stream segment never applies (issue 27 #4)',
    fixed: true,
    shape: (c) => cdcOps(c).some(({ o }) => 'rows' in o && o.rows >= 50_000),
  },
  'cdc-stop-after-worker-kill': {
    title: "cdc: `cdc stop` while the stream's worker is dead fails the stream workflow (the cancelled segment ends in a heartbeat timeout, which is rethrown) (new; found by seed 13)",
    fixed: true,
    shape: (c) => c.mode === 'cdc' && c.rounds.some((r) => r.event === 'stop-start' && r.fault === 'worker-kill'),
  },
  'cdc-no-fencing': {
    title: 'cdc: no fencing: a stale attempt can commit an older batch after another reader took the slot (issue 27 #12)',
    fixed: true,
    shape: (c) => c.mode === 'cdc' && c.rounds.some((r) => r.fault === 'worker-kill' || r.fault === 'temporal-restart'),
  },
  'cdc-stopped-pipeline-applied': {
    title: "cdc: a stopped pipeline is applied by another pipeline's stream on the same slot (issue 27 #5)",
    fixed: true,
    shape: (c) => c.mode === 'cdc' && c.tables.length > 1 && c.rounds.some((r) => r.event === 'stop-start'),
  },
  'cursor-add-column-default': {
    title: 'batch cursor modes: ADD COLUMN … DEFAULT on the source leaves the rows not changed since the last run NULL in the target (the cursor does not move for them) (new; found by seed 2015860408)',
    fixed: true,
    shape: (c) => ['upsert-cursor', 'upsert-soft', 'append'].includes(c.mode) && c.rounds.some((r) => r.txns.some((t) => t.ops.some((o) => o.op === 'add-column' && o.column.default !== undefined))),
  },
  'batch-enum-label': {
    title: 'batch modes: a label added to a source enum is not added to the target enum, so the next sync fails with 22P02 (new; found by seed 7)',
    fixed: true,
    shape: (c) => c.mode !== 'cdc' && c.rounds.some((r) => r.txns.some((t) => t.ops.some((o) => o.op === 'add-enum-label'))),
  },
  'worker-start-temporal-down': {
    title: 'a worker (re)started while the Temporal dev server restarts exits at its first connect, and nothing runs after (new; found by seed 1988637040; fixed: worker.temporalWaitSeconds)',
    fixed: true,
    shape: (c) => c.rounds.some((r, i) => r.fault === 'temporal-restart' && i > 0 && c.rounds[i - 1]!.fault === 'worker-kill'),
  },
  'collation-resync': {
    title: 'compare-then-copy / deletes across two collations removed rows (fixed on main by issue 28)',
    fixed: true,
    shape: (c) => c.databases.source !== c.databases.target && c.tables[0]!.keyShape !== 'int' && c.tables[0]!.keyShape !== 'uuid',
  },
} satisfies Record<string, Finding>;

export type FindingId = keyof typeof FINDINGS;

/** The node:test options for a case expected to hit `finding`: todo while the finding is open. */
export function todoFor(finding: FindingId | undefined): { todo?: string } {
  if (!finding) return {};
  const f: Finding = FINDINGS[finding];
  return f.fixed ? {} : { todo: `known finding ${finding}: ${f.title}` };
}

/** Open findings whose shape a failing case has (most specific first). */
export function suspects(c: Case): FindingId[] {
  return (Object.keys(FINDINGS) as FindingId[]).filter((id) => !FINDINGS[id].fixed && FINDINGS[id].shape(c));
}
