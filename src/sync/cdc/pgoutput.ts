// pgoutput (protocol version 1) messages decoded for the reader: tuples are arrays of text values
// in the relation's column order, with no object, parser call or copy per cell. The replication
// library's own parser builds an object per tuple through a type parser per value, which was the
// largest part of the reader's CPU for a burst (a profile of 700k changes, 2026-12-07).
// https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html

/** A tuple's values as text, in the relation's column order: null = SQL NULL, undefined = an unchanged TOAST value (not in the WAL). */
export type Tuple = (string | null | undefined)[];

export interface RelationColumn {
  name: string;
  typeOid: number;
  typeMod: number;
  /** Part of the replica identity (flag 1). */
  key: boolean;
}

export interface Relation {
  relationOid: number;
  schema: string;
  name: string;
  replicaIdentity: 'default' | 'nothing' | 'full' | 'index';
  columns: RelationColumn[];
}

export type Decoded =
  | { tag: 'begin'; commitLsn: string; commitTime: Date; xid: number }
  | { tag: 'commit'; commitLsn: string; commitEndLsn: string; commitTime: Date }
  | ({ tag: 'relation' } & Relation)
  | { tag: 'insert'; relation: Relation; new: Tuple }
  /** `key`: the old replica-identity values when they changed (K); `old`: the whole old row under REPLICA IDENTITY FULL (O). */
  | { tag: 'update'; relation: Relation; key: Tuple | null; old: Tuple | null; new: Tuple }
  | { tag: 'delete'; relation: Relation; key: Tuple | null; old: Tuple | null }
  | { tag: 'truncate'; relations: Relation[] }
  | { tag: 'type' | 'origin' | 'message' };

const hex = (v: number) => v.toString(16).toUpperCase();
// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MS = 946_684_800_000;
const IDENTITY = { d: 'default', n: 'nothing', f: 'full', i: 'index' } as const;

export class PgoutputDecoder {
  private readonly relations = new Map<number, Relation>();
  private b: Buffer = Buffer.alloc(0);
  private p = 0;

  decode(buf: Buffer): Decoded {
    this.b = buf;
    this.p = 1;
    switch (buf[0]) {
      case 0x42 /* B */:
        return { tag: 'begin', commitLsn: this.lsn(), commitTime: this.time(), xid: this.int32() };
      case 0x43 /* C */: {
        this.p++; // flags, unused
        return { tag: 'commit', commitLsn: this.lsn(), commitEndLsn: this.lsn(), commitTime: this.time() };
      }
      case 0x52 /* R */:
        return this.relation();
      case 0x49 /* I */: {
        const relation = this.relationOf();
        this.p++; // 'N'
        return { tag: 'insert', relation, new: this.tuple(relation, null) };
      }
      case 0x55 /* U */: {
        const relation = this.relationOf();
        let key: Tuple | null = null;
        let old: Tuple | null = null;
        let kind = this.b[this.p++];
        if (kind === 0x4b /* K */) key = this.tuple(relation, null);
        else if (kind === 0x4f /* O */) old = this.tuple(relation, null);
        if (key || old) kind = this.b[this.p++];
        if (kind !== 0x4e /* N */) throw new Error(`pgoutput: unknown update submessage ${String.fromCharCode(kind ?? 0)}`);
        return { tag: 'update', relation, key, old, new: this.tuple(relation, old) };
      }
      case 0x44 /* D */: {
        const relation = this.relationOf();
        const kind = this.b[this.p++];
        if (kind !== 0x4b && kind !== 0x4f) throw new Error(`pgoutput: unknown delete submessage ${String.fromCharCode(kind ?? 0)}`);
        const t = this.tuple(relation, null);
        return kind === 0x4b ? { tag: 'delete', relation, key: t, old: null } : { tag: 'delete', relation, key: null, old: t };
      }
      case 0x54 /* T */: {
        const n = this.int32();
        this.p++; // flags (cascade, restart identity)
        const relations: Relation[] = [];
        for (let i = 0; i < n; i++) relations.push(this.relationOf());
        return { tag: 'truncate', relations };
      }
      case 0x59 /* Y */:
        return { tag: 'type' };
      case 0x4f /* O */:
        return { tag: 'origin' };
      case 0x4d /* M */:
        return { tag: 'message' };
      default:
        throw new Error(`pgoutput: unknown message ${String.fromCharCode(buf[0] ?? 0)}`);
    }
  }

  private relation(): Decoded {
    const relationOid = this.uint32();
    const schema = this.cstring();
    const name = this.cstring();
    const ident = String.fromCharCode(this.b[this.p++]!) as keyof typeof IDENTITY;
    const replicaIdentity = IDENTITY[ident];
    if (!replicaIdentity) throw new Error(`pgoutput: unknown replica identity ${ident}`);
    const n = this.int16();
    const columns: RelationColumn[] = [];
    for (let i = 0; i < n; i++) {
      const flags = this.b[this.p++]!;
      columns.push({ key: (flags & 1) === 1, name: this.cstring(), typeOid: this.uint32(), typeMod: this.int32() });
    }
    const r: Relation = { relationOid, schema, name, replicaIdentity, columns };
    this.relations.set(relationOid, r);
    return { tag: 'relation', ...r };
  }

  private relationOf(): Relation {
    const oid = this.uint32();
    const r = this.relations.get(oid);
    // The server sends a relation before its first change in a session: this would be a protocol break.
    if (!r) throw new Error(`pgoutput: a change of relation ${oid} before its relation message`);
    return r;
  }

  /** `fallback`: the old row (REPLICA IDENTITY FULL), whose values stand for the new row's unchanged TOAST ones. */
  private tuple(relation: Relation, fallback: Tuple | null): Tuple {
    const n = this.int16();
    if (n > relation.columns.length) throw new Error(`pgoutput: a tuple of ${n} columns for ${relation.schema}.${relation.name}, which has ${relation.columns.length}`);
    const out: Tuple = new Array<string | null | undefined>(n);
    const b = this.b;
    for (let i = 0; i < n; i++) {
      const kind = b[this.p++];
      if (kind === 0x74 /* t */) {
        const len = this.int32();
        const end = this.p + len;
        if (end > b.length) throw new Error('pgoutput: unexpected end of message');
        out[i] = b.toString('utf8', this.p, end);
        this.p = end;
      } else if (kind === 0x6e /* n */) out[i] = null;
      else if (kind === 0x75 /* u */) out[i] = fallback ? fallback[i] : undefined;
      else throw new Error(`pgoutput: unknown tuple value kind ${String.fromCharCode(kind ?? 0)} (binary values are not requested)`);
    }
    return out;
  }

  private int16(): number {
    const v = this.b.readInt16BE(this.p);
    this.p += 2;
    return v;
  }

  private int32(): number {
    const v = this.b.readInt32BE(this.p);
    this.p += 4;
    return v;
  }

  private uint32(): number {
    const v = this.b.readUInt32BE(this.p);
    this.p += 4;
    return v;
  }

  /** As PostgreSQL prints it ("0/16B3748"). */
  private lsn(): string {
    const hi = this.uint32();
    return `${hex(hi)}/${hex(this.uint32())}`;
  }

  private time(): Date {
    const hi = this.uint32();
    const lo = this.uint32();
    // Microseconds since 2000-01-01: exact in a double for another 285 years.
    return new Date(Math.floor((hi * 2 ** 32 + lo) / 1000) + PG_EPOCH_MS);
  }

  private cstring(): string {
    const end = this.b.indexOf(0, this.p);
    if (end < 0) throw new Error('pgoutput: unexpected end of message');
    const s = this.b.toString('utf8', this.p, end);
    this.p = end + 1;
    return s;
  }
}
