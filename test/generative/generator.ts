// The seeded case generator: schema, workload, lifecycle events and faults, all from one seed.
import { Rng } from './rng';
import { BATCH_EVENTS, CDC_EVENTS, COLUMN_KINDS, MODES, type Case, type Column, type ColumnKind, type DbCollation, type Fault, type KeyShape, type Layout, type Mode, type Op, type Round, type TableSpec, type Txn } from './case';

/** Collations for text columns: byte order, and ICU locales that order case, accents and 'ß' differently. */
export const TEXT_COLLATIONS = ['C', 'en-US-x-icu', 'de-DE-x-icu', 'sv-SE-x-icu', 'default'] as const;

/** The mode is the seed's residue, so `--mode cdc` picks seeds without changing what a seed means. */
export const modeOfSeed = (seed: number): Mode => MODES[seed % MODES.length]!;

/** Transaction sizes: mostly small, now and then large (up to ~10^5 with `big`). */
function txnSize(rng: Rng, big: boolean): number {
  if (big && rng.chance(0.03)) return rng.int(5_000, 100_000);
  return Math.max(1, Math.floor(10 ** (rng.next() * 2.3)));
}

function column(rng: Rng, i: number, kind: ColumnKind): Column {
  const c: Column = { name: `c${i}_${kind.replace(/\W/g, '')}`, kind };
  if (kind === 'text' || kind === 'varchar' || kind === 'toast') {
    const coll = rng.pick(TEXT_COLLATIONS);
    if (coll !== 'default') c.collation = coll;
  }
  if (kind === 'toast' && rng.chance(0.4)) c.notNull = true;
  return c;
}

function table(rng: Rng, name: string, mode: Mode): TableSpec {
  const layouts: Layout[] = ['plain', 'plain', 'partitioned'];
  // A keyless table is copied by append, full-refresh and cdc (REPLICA IDENTITY FULL); merges need a key.
  if (mode === 'append' || mode === 'full-refresh' || mode === 'cdc') layouts.push('replica-full');
  const layout = rng.pick(layouts);
  const shapes: KeyShape[] = layout === 'partitioned' ? ['int', 'int+text'] : ['int', 'text', 'uuid', 'int+text'];
  const keyShape = rng.pick(shapes);
  const n = rng.int(2, 7);
  const kinds = new Set<ColumnKind>();
  while (kinds.size < n) kinds.add(rng.pick(COLUMN_KINDS));
  if (rng.chance(0.5)) kinds.add('toast');
  const columns = [...kinds].map((k, i) => column(rng, i, k));
  return {
    name,
    keyShape,
    keyCollation: rng.pick(['C', 'en-US-x-icu', 'de-DE-x-icu', 'default']),
    columns,
    keyFirst: rng.chance(0.6),
    layout,
    enumLabels: ['red', 'green', 'blue'].slice(0, rng.int(1, 3)),
  };
}

function ops(rng: Rng, t: TableSpec, big: boolean, ddl: { n: number }, allowDdl: boolean): Op[] {
  const out: Op[] = [];
  const count = rng.int(1, 4);
  for (let i = 0; i < count; i++) {
    const r = rng.next();
    const size = txnSize(rng, big);
    if (r < 0.3) out.push({ op: 'insert', rows: size });
    else if (r < 0.55) out.push({ op: 'update', rows: size, keyChange: rng.chance(0.3), touchToast: rng.chance(0.4) });
    else if (r < 0.65) out.push({ op: 'hot', rows: rng.int(1, 5), times: rng.int(2, 50) });
    else if (r < 0.82) out.push({ op: 'delete', rows: Math.max(1, Math.floor(size / 2)) });
    else if (r < 0.85) out.push({ op: 'truncate' });
    else if (allowDdl && r < 0.9) {
      const kind = rng.pick(['int', 'text', 'bool', 'enum'] as const);
      const col: Column = { name: `d${ddl.n++}_${kind}`, kind };
      if (rng.chance(0.5)) col.default = kind === 'int' ? '5' : kind === 'text' ? `'dflt'` : kind === 'bool' ? 'true' : `'${t.enumLabels[0]}'`;
      out.push({ op: 'add-column', column: col });
    } else if (allowDdl && r < 0.94 && t.columns.length > 1) {
      out.push({ op: 'drop-column', name: rng.pick(t.columns.filter((c) => !c.name.startsWith('d'))).name });
    } else if (allowDdl && r < 0.97 && t.columns.some((c) => c.kind === 'enum')) {
      out.push({ op: 'add-enum-label', label: `l${ddl.n++}` });
    } else out.push({ op: 'insert', rows: size });
  }
  return out;
}

export interface GenerateOptions {
  /** Allow transactions of up to ~10^5 rows (long runs); the fixed seeds keep them small. */
  big?: boolean;
}

export function generate(seed: number, opts: GenerateOptions = {}): Case {
  const rng = new Rng(seed);
  const mode = modeOfSeed(seed);
  const big = opts.big ?? true;
  const tables = [table(rng.fork('t0'), 't0', mode)];
  const roundCount = rng.int(1, 3);
  const rounds: Round[] = [];
  const faults: Fault[] = mode === 'cdc' ? ['worker-kill', 'terminate-backends', 'pg-restart', 'temporal-restart'] : ['worker-kill', 'terminate-backends', 'temporal-restart'];
  const ddl = { n: 0 };
  const wr = rng.fork('workload');
  for (let i = 0; i < roundCount; i++) {
    const event = mode === 'cdc' ? rng.pick(CDC_EVENTS) : rng.pick(BATCH_EVENTS);
    if (event === 'join' && tables.length === 1) tables.push(table(rng.fork('t1'), 't1', mode));
    const txns: Txn[] = [];
    const nTxns = rng.int(1, 4);
    for (let j = 0; j < nTxns; j++) {
      const ti = tables.length > 1 && wr.chance(0.5) ? 1 : 0;
      // Schema changes of a partitioned or keyless table and of the joining table are left out: one thing at a time.
      txns.push({ table: ti, ops: ops(wr, tables[ti]!, big, ddl, ti === 0 && tables[0]!.layout === 'plain') });
    }
    const fault = rng.chance(0.45) ? rng.pick(faults) : undefined;
    rounds.push({ txns, event, fault, faultAfterMs: rng.int(0, 1500) });
  }
  const cols: DbCollation[] = ['default', 'default', 'c', 'icu'];
  const databases = mode === 'cdc' ? { source: 'default' as const, target: 'default' as const } : { source: rng.pick(cols), target: rng.pick(cols) };
  const initialRows = tables.map(() => txnSize(rng, big) + rng.int(10, 300));
  return {
    seed,
    mode,
    tables,
    initialRows,
    rounds,
    databases,
    batchRows: rng.pick([50, 200, 1000, 5000]),
    tamper: { update: rng.int(0, 2), delete: rng.int(0, 2), insert: rng.int(0, 1) },
    precreateTarget: mode !== 'cdc' && mode !== 'upsert-soft' && mode !== 'append' && rng.chance(0.35),
  };
}
