// Builds a case's tables in the source database and runs its workload there: plain SQL, no
// product code. It keeps a model of the live keys (so updates and deletes pick existing rows,
// deterministically from the seed) and of the live columns (DDL changes them).
import type pg from 'pg';
import { Rng } from './rng';
import { KEY_COLUMNS, keyNames, type Column, type Op, type TableSpec, type Txn } from './case';
import { columnType, columnValue, textValue, uuidValue } from './values';

const TEXT_KEY_PREFIXES = ['a', 'B', 'b', 'Ä', 'é', 'E', 'z', 'Z', '_', 'ñ', 'ß', ' ', 'Ö', '日', 'aa', 'AB'];

const castType = (c: Column, t: TableSpec) => columnType(c, t).replace(/ COLLATE .*$/, '');

/** One table's live state as the harness knows it. */
export class SourceTable {
  readonly spec: TableSpec;
  /** Live key tuples, in text form. */
  keys: string[][] = [];
  columns: Column[];
  private nextKey = 1;
  /** Set during writes of thousands of rows: fewer TOASTed values. */
  private bulk = false;
  /** Enum labels committed so far (a label is usable after the ALTER TYPE commits). */
  labels: string[];

  constructor(spec: TableSpec, private readonly rng: Rng) {
    this.spec = spec;
    this.columns = [...spec.columns];
    this.labels = [...spec.enumLabels];
  }

  get name(): string {
    return this.spec.name;
  }

  /** Column names in table order (key not first when the case says so), `rev` last. */
  allColumns(): string[] {
    const payload = this.columns.map((c) => c.name);
    const keys = keyNames(this.spec);
    const ordered = this.spec.keyFirst || !payload.length ? [...keys, ...payload] : [payload[0]!, ...keys, ...payload.slice(1)];
    return [...ordered, 'rev'];
  }

  /** DDL for the types and the table (also run on a target the harness creates itself). */
  ddl(extraTargetColumns = '', keyInDatabaseCollation = false): string {
    const t = this.spec;
    const keyCollation = keyInDatabaseCollation ? 'default' : t.keyCollation;
    const keyCols = KEY_COLUMNS[t.keyShape].map((k) => `${k.name} ${k.type}${k.type === 'text' && keyCollation !== 'default' ? ` COLLATE "${keyCollation}"` : ''} NOT NULL`);
    const payload = t.columns.map((c) => `${c.name} ${columnType(c, t)}${c.notNull ? ' NOT NULL' : ''}`);
    const cols = t.keyFirst || !payload.length ? [...keyCols, ...payload] : [payload[0]!, ...keyCols, ...payload.slice(1)];
    cols.push(`rev bigint NOT NULL DEFAULT nextval('${t.name}_rev')`);
    if (extraTargetColumns) cols.push(extraTargetColumns);
    const pk = t.layout === 'replica-full' ? '' : `, PRIMARY KEY (${keyNames(t).join(', ')})`;
    const partitioned = t.layout === 'partitioned';
    const parts = partitioned
      ? `CREATE TABLE ${t.name}_p0 PARTITION OF ${t.name} FOR VALUES FROM (MINVALUE) TO (250);
         CREATE TABLE ${t.name}_p1 PARTITION OF ${t.name} FOR VALUES FROM (250) TO (500);
         CREATE TABLE ${t.name}_p2 PARTITION OF ${t.name} FOR VALUES FROM (500) TO (1000);
         CREATE TABLE ${t.name}_p3 PARTITION OF ${t.name} FOR VALUES FROM (1000) TO (MAXVALUE);`
      : '';
    return `
      CREATE TYPE ${t.name}_enum AS ENUM (${t.enumLabels.map((l) => `'${l}'`).join(', ')});
      CREATE DOMAIN ${t.name}_dom AS int CHECK (VALUE > 0);
      CREATE SEQUENCE ${t.name}_rev;
      CREATE TABLE ${t.name} (${cols.join(', ')}${pk})${partitioned ? ' PARTITION BY RANGE (k_int)' : ''};
      ${parts}
      CREATE INDEX ON ${t.name} (rev);
      ${t.layout === 'replica-full' ? `ALTER TABLE ${t.name} REPLICA IDENTITY FULL;` : ''}`;
  }

  private freshKey(): string[] {
    const n = this.nextKey++;
    return KEY_COLUMNS[this.spec.keyShape].map((k) =>
      k.type === 'int' ? String(n) : k.type === 'uuid' ? uuidValue(this.rng) : `${this.rng.pick(TEXT_KEY_PREFIXES)}${textValue(this.rng, 1)}#${n}`,
    );
  }

  private row(key: string[], columns: Column[]): Record<string, string | null> {
    const r: Record<string, string | null> = {};
    keyNames(this.spec).forEach((k, i) => (r[k] = key[i]!));
    for (const c of columns) r[c.name] = columnValue(this.rng, c, { ...this.spec, enumLabels: this.labels }, this.bulk);
    return r;
  }

  /** Distinct live rows chosen at random. */
  private choose(n: number): number[] {
    const idx = new Set<number>();
    const want = Math.min(n, this.keys.length);
    while (idx.size < want) idx.add(this.rng.int(0, this.keys.length - 1));
    return [...idx];
  }

  private recordset(cols: { name: string; type: string }[]): string {
    return `json_to_recordset($1::json) AS x(${cols.map((c) => `"${c.name}" text`).join(', ')})`;
  }

  private keyMatch(prefix = ''): string {
    return KEY_COLUMNS[this.spec.keyShape].map((k) => `${this.spec.name}.${k.name} = x."${prefix}${k.name}"::${k.type}`).join(' AND ');
  }

  async insert(db: pg.ClientBase, n: number): Promise<void> {
    for (let done = 0; done < n; ) {
      const size = Math.min(5_000, n - done);
      const rows = Array.from({ length: size }, () => {
        const key = this.freshKey();
        this.keys.push(key);
        return this.row(key, this.columns);
      });
      const keyCols = KEY_COLUMNS[this.spec.keyShape];
      const cols = [...keyCols.map((k) => ({ name: k.name, type: k.type })), ...this.columns.map((c) => ({ name: c.name, type: castType(c, this.spec) }))];
      await db.query(
        `INSERT INTO ${this.name} (${cols.map((c) => c.name).join(', ')}) SELECT ${cols.map((c) => `x."${c.name}"::${c.type}`).join(', ')} FROM ${this.recordset(cols)}`,
        [JSON.stringify(rows)],
      );
      done += size;
    }
  }

  async update(db: pg.ClientBase, n: number, keyChange: boolean, touchToast: boolean): Promise<void> {
    const chosen = this.choose(n);
    if (!chosen.length) return;
    const set = this.columns.filter((c) => touchToast || c.kind !== 'toast');
    const keyCols = KEY_COLUMNS[this.spec.keyShape];
    const rows = chosen.map((i) => {
      const old = this.keys[i]!;
      const next = keyChange ? this.freshKey() : old;
      this.keys[i] = next;
      const r = this.row(next, set);
      keyCols.forEach((k, j) => (r[`o_${k.name}`] = old[j]!));
      return r;
    });
    const cols = [
      ...keyCols.map((k) => ({ name: `o_${k.name}`, type: k.type })),
      ...keyCols.map((k) => ({ name: k.name, type: k.type })),
      ...set.map((c) => ({ name: c.name, type: castType(c, this.spec) })),
    ];
    const assign = [...(keyChange ? keyCols.map((k) => ({ name: k.name, type: k.type })) : []), ...set.map((c) => ({ name: c.name, type: castType(c, this.spec) }))];
    await db.query(
      `UPDATE ${this.name} SET ${[...assign.map((c) => `${c.name} = x."${c.name}"::${c.type}`), `rev = nextval('${this.name}_rev')`].join(', ')} FROM ${this.recordset(cols)} WHERE ${this.keyMatch('o_')}`,
      [JSON.stringify(rows)],
    );
  }

  async delete(db: pg.ClientBase, n: number): Promise<void> {
    const chosen = new Set(this.choose(n));
    if (!chosen.size) return;
    const keyCols = KEY_COLUMNS[this.spec.keyShape];
    const rows = [...chosen].map((i) => Object.fromEntries(keyCols.map((k, j) => [k.name, this.keys[i]![j]!])));
    this.keys = this.keys.filter((_, i) => !chosen.has(i));
    await db.query(`DELETE FROM ${this.name} USING ${this.recordset(keyCols)} WHERE ${this.keyMatch()}`, [JSON.stringify(rows)]);
  }

  async apply(db: pg.ClientBase, op: Op): Promise<void> {
    this.bulk = 'rows' in op && op.rows > 2_000;
    switch (op.op) {
      case 'insert':
        return this.insert(db, op.rows);
      case 'update':
        return this.update(db, op.rows, op.keyChange, op.touchToast);
      case 'hot': {
        const picked = this.choose(op.rows).map((i) => this.keys[i]!);
        const rows = picked.map((k) => Object.fromEntries(KEY_COLUMNS[this.spec.keyShape].map((c, j) => [c.name, k[j]!])));
        const target = this.columns.find((c) => c.kind !== 'toast' && !c.notNull);
        for (let i = 0; i < op.times && rows.length; i++) {
          const assign = target ? `${target.name} = ${this.valueSql(target)}, ` : '';
          await db.query(`UPDATE ${this.name} SET ${assign}rev = nextval('${this.name}_rev') FROM ${this.recordset(KEY_COLUMNS[this.spec.keyShape])} WHERE ${this.keyMatch()}`, [JSON.stringify(rows)]);
        }
        return;
      }
      case 'delete':
        return this.delete(db, op.rows);
      case 'truncate':
        this.keys = [];
        await db.query(`TRUNCATE ${this.name}`);
        return;
      case 'add-column': {
        const c = op.column;
        if (this.columns.some((x) => x.name === c.name)) return;
        await db.query(`ALTER TABLE ${this.name} ADD COLUMN ${c.name} ${columnType(c, this.spec)}${c.default ? ` DEFAULT ${c.default}` : ''}`);
        this.columns.push(c);
        return;
      }
      case 'drop-column':
        if (!this.columns.some((x) => x.name === op.name)) return;
        await db.query(`ALTER TABLE ${this.name} DROP COLUMN ${op.name}`);
        this.columns = this.columns.filter((x) => x.name !== op.name);
        return;
      case 'add-enum-label':
        await db.query(`ALTER TYPE ${this.name}_enum ADD VALUE IF NOT EXISTS '${op.label}'`);
        this.pendingLabels.push(op.label);
        return;
    }
  }

  private pendingLabels: string[] = [];

  /** A literal for one column, for statements that set a value in SQL text. */
  private valueSql(c: Column): string {
    const v = columnValue(this.rng, c, { ...this.spec, enumLabels: this.labels });
    return v === null ? 'NULL' : `'${v.replace(/'/g, "''")}'::${castType(c, this.spec)}`;
  }

  /** One source transaction. */
  async run(db: pg.ClientBase, txn: Txn): Promise<void> {
    await db.query('BEGIN');
    try {
      for (const op of txn.ops) await this.apply(db, op);
      await db.query('COMMIT');
    } catch (err) {
      await db.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    this.labels.push(...this.pendingLabels.splice(0));
  }
}

export function sourceTables(specs: TableSpec[], seed: number): SourceTable[] {
  return specs.map((s) => new SourceTable(s, new Rng(seed).fork(`rows:${s.name}`)));
}
