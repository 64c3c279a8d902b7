// A batch of decoded changes, collapsed per target row: only the last state of each key is
// written, so a hot row updated 1,000 times between two flushes costs one write.

/** Column values in PostgreSQL text form; `undefined` = an unchanged TOAST value (keep the target's). */
export type ChangeRow = Record<string, string | null | undefined>;

/**
 * `from`: the key the row had before a key change still waiting in this batch; its target row
 * supplies the unchanged TOAST values (undefined in `row`), read before that row is deleted.
 * `shape` (a row with every value present): what the row's columns were built from (the reader's
 * column names of its relation), the same object for every such row, so the apply groups them
 * without looking at each row's columns.
 */
export type RowOp = { kind: 'upsert'; row: ChangeRow; from?: (string | null)[]; shape?: object } | { kind: 'delete'; key: (string | null)[] };

/** Pending work for one source table: whether it was truncated first, then one op per key. */
export interface TableBatch {
  truncated: boolean;
  ops: Map<string, RowOp>;
}

export const keyOf = (row: ChangeRow, key: string[]): (string | null)[] =>
  key.map((k) => {
    const v = row[k];
    return v === undefined ? null : v;
  });

/**
 * A map key for key values, unambiguous for any text (length-prefixed; '-' is NULL). A one-column
 * key that is not NULL is its own value, prefixed so it never meets a composite's encoding.
 */
function keyText(values: (string | null)[]): string {
  if (values.length === 1 && values[0] != null) return `=${values[0]}`;
  let s = '';
  for (const v of values) s += v == null ? '-' : `${v.length}:${v}`;
  return s;
}

export class ChangeBatch {
  readonly tables = new Map<string, TableBatch>();
  /** Changes received (before collapsing), for rows/s and the flush threshold. */
  changes = 0;
  /** Bytes of values received into the batch (before collapsing; an upper bound of what it holds). */
  bytes = 0;

  private table(name: string): TableBatch {
    let t = this.tables.get(name);
    if (!t) this.tables.set(name, (t = { truncated: false, ops: new Map() }));
    return t;
  }

  /** An insert or the new image of an update: merged over a pending upsert of the same key (its values fill unchanged TOAST columns). */
  upsert(table: string, key: string[], row: ChangeRow, oldKey?: (string | null)[], shape?: object): void {
    const t = this.table(table);
    const newKey = keyOf(row, key);
    const newText = keyText(newKey);
    this.changes++;
    let unchanged = false;
    for (const c in row) {
      const v = row[c];
      if (v === undefined) unchanged = true;
      this.bytes += v ? v.length + 16 : 16;
    }
    let from: (string | null)[] | undefined;
    let prior: RowOp | undefined;
    const oldText = oldKey && keyText(oldKey);
    if (oldKey && oldText !== newText) {
      // The key changed: the old key's row is gone; its pending values carry over to the new key,
      // and what is still unchanged TOAST comes from the old key's target row (or its own source).
      prior = t.ops.get(oldText!);
      t.ops.set(oldText!, { kind: 'delete', key: oldKey });
      from = prior?.kind === 'upsert' ? (prior.from ?? oldKey) : oldKey;
    } else {
      prior = t.ops.get(newText);
      if (prior?.kind === 'upsert') from = prior.from;
    }
    if (unchanged) [row, unchanged] = merge(prior, row);
    const op: RowOp = unchanged && from ? { kind: 'upsert', row, from } : !unchanged && shape ? { kind: 'upsert', row, shape } : { kind: 'upsert', row };
    t.ops.set(newText, op);
  }

  delete(table: string, key: (string | null)[]): void {
    this.changes++;
    this.bytes += 16 * key.length;
    this.table(table).ops.set(keyText(key), { kind: 'delete', key });
  }

  /** Everything pending for the table is moot: the target is emptied first, then what follows applies. */
  truncate(table: string): void {
    this.changes++;
    const t = this.table(table);
    t.truncated = true;
    t.ops.clear();
  }

  get empty(): boolean {
    return this.tables.size === 0;
  }

  /** Target rows this batch writes after collapsing. */
  get rows(): number {
    let n = 0;
    for (const t of this.tables.values()) n += t.ops.size;
    return n;
  }
}

/** The row with its unchanged TOAST values taken from a pending upsert of the same row; and whether some are still unchanged. */
function merge(prior: RowOp | undefined, row: ChangeRow): [ChangeRow, boolean] {
  if (prior?.kind !== 'upsert') return [row, true];
  const out: ChangeRow = { ...row };
  let unchanged = false;
  for (const k in row)
    if (row[k] === undefined) {
      out[k] = prior.row[k];
      if (out[k] === undefined) unchanged = true;
    }
  return [out, unchanged];
}
