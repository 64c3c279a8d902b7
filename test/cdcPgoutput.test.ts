import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PgoutputPlugin } from 'pg-logical-replication';
import { PgoutputDecoder, type Tuple } from '../src/sync/cdc/pgoutput';

// The reader's pgoutput decoder (src/sync/cdc/pgoutput.ts) against the replication library's own
// parser on the same bytes: messages built as the server sends them (protocol version 1), values of
// every kind (text with multi-byte UTF-8, NULL, unchanged TOAST, empty), keys changed and not.

const u8 = (v: number) => Buffer.from([v]);
const i16 = (v: number) => { const b = Buffer.alloc(2); b.writeInt16BE(v); return b; };
const i32 = (v: number) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; };
const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(v); return b; };
const cstr = (s: string) => Buffer.concat([Buffer.from(s, 'utf8'), u8(0)]);
const ch = (c: string) => u8(c.charCodeAt(0));
const lsn = (hi: number, lo: number) => Buffer.concat([u32(hi), u32(lo)]);
const time = (us: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(us); return b; };

function tuple(values: Tuple): Buffer {
  const parts = [i16(values.length)];
  for (const v of values) {
    if (v === null) parts.push(ch('n'));
    else if (v === undefined) parts.push(ch('u'));
    else {
      const b = Buffer.from(v, 'utf8');
      parts.push(ch('t'), i32(b.length), b);
    }
  }
  return Buffer.concat(parts);
}

const OID = 16_385;
const relation = (columns: { name: string; key: boolean }[], ident = 'd') =>
  Buffer.concat([ch('R'), u32(OID), cstr('public'), cstr('tåble "x"'), ch(ident), i16(columns.length), ...columns.flatMap((c) => [u8(c.key ? 1 : 0), cstr(c.name), u32(25), i32(-1)])]);

const COLUMNS = [{ name: 'id', key: true }, { name: 'näme', key: false }, { name: 'big', key: false }];

/** The library's tuple object as an array in column order (its text parser keeps strings). */
const asArray = (o: Record<string, unknown> | null | undefined): Tuple | null => (o ? COLUMNS.map((c) => o[c.name] as string | null | undefined) : null);

function both(...messages: Buffer[]) {
  const ours = new PgoutputDecoder();
  const theirs = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  return messages.map((m) => ({ ours: ours.decode(m), theirs: theirs.parse(m) as unknown as Record<string, unknown> }));
}

describe('pgoutput decoder', () => {
  test('begin and commit: LSNs as PostgreSQL prints them, commit time to the millisecond', () => {
    const us = 818_000_000_123_456n; // 2025-12-02 … after 2000-01-01
    const [b, c] = both(Buffer.concat([ch('B'), lsn(0x16, 0xb374d848), time(us), i32(7)]), Buffer.concat([ch('C'), u8(0), lsn(0x16, 0xb374d848), lsn(0x16, 0xb374d900), time(us)]));
    assert.deepEqual(b!.ours, { tag: 'begin', commitLsn: '16/B374D848', commitTime: new Date(Number(us / 1000n) + 946_684_800_000), xid: 7 });
    assert.equal(b!.theirs.commitLsn, '00000016/B374D848');
    assert.equal(Number(BigInt(String(b!.theirs.commitTime)) / 1000n), (b!.ours as { commitTime: Date }).commitTime.getTime());
    assert.deepEqual(c!.ours, { tag: 'commit', commitLsn: '16/B374D848', commitEndLsn: '16/B374D900', commitTime: new Date(Number(us / 1000n) + 946_684_800_000) });
  });

  test('relation, insert, update (key kept, key changed, REPLICA IDENTITY FULL), delete, truncate: the same values as the library', () => {
    const big = 'x'.repeat(70_000) + '€';
    const cases: Buffer[] = [
      relation(COLUMNS),
      Buffer.concat([ch('I'), u32(OID), ch('N'), tuple(['1', 'zoë 漢字', big])]),
      Buffer.concat([ch('I'), u32(OID), ch('N'), tuple(['2', null, ''])]),
      // An update with an unchanged TOAST value, key kept.
      Buffer.concat([ch('U'), u32(OID), ch('N'), tuple(['1', 'b', undefined])]),
      // Key changed: the old key tuple (other columns null), then the new row.
      Buffer.concat([ch('U'), u32(OID), ch('K'), tuple(['1', null, null]), ch('N'), tuple(['10', 'c', undefined])]),
      Buffer.concat([ch('D'), u32(OID), ch('K'), tuple(['2', null, null])]),
      relation(COLUMNS, 'f'),
      // REPLICA IDENTITY FULL: the old row, then the new one whose unchanged TOAST comes from it.
      Buffer.concat([ch('U'), u32(OID), ch('O'), tuple(['10', 'c', big]), ch('N'), tuple(['10', 'd', undefined])]),
      Buffer.concat([ch('D'), u32(OID), ch('O'), tuple(['10', 'd', big])]),
      Buffer.concat([ch('T'), i32(1), u8(0), u32(OID)]),
    ];
    for (const { ours, theirs } of both(...cases)) {
      assert.equal(ours.tag, theirs.tag);
      if (ours.tag === 'relation') {
        assert.equal(ours.relationOid, theirs.relationOid);
        assert.equal(ours.name, theirs.name);
        assert.equal(ours.schema, theirs.schema);
        assert.equal(ours.replicaIdentity, theirs.replicaIdentity);
        assert.deepEqual(ours.columns.map((c) => [c.name, c.key, c.typeOid]), (theirs.columns as { name: string; flags: number; typeOid: number }[]).map((c) => [c.name, (c.flags & 1) === 1, c.typeOid]));
      } else if (ours.tag === 'insert') assert.deepEqual(ours.new, asArray(theirs.new as Record<string, unknown>));
      else if (ours.tag === 'update') {
        assert.deepEqual(ours.new, asArray(theirs.new as Record<string, unknown>));
        assert.deepEqual(ours.old, asArray(theirs.old as Record<string, unknown>));
        // The library keeps only the key columns of a key tuple; ours keeps the tuple (others null).
        if (ours.key) assert.equal(ours.key[0], (theirs.key as Record<string, string>).id);
        else assert.equal(theirs.key, null);
      } else if (ours.tag === 'delete') {
        assert.equal((ours.key ?? ours.old)![0], ((theirs.key ?? theirs.old) as Record<string, string>).id);
      } else if (ours.tag === 'truncate') assert.deepEqual(ours.relations.map((r) => r.relationOid), (theirs.relations as { relationOid: number }[]).map((r) => r.relationOid));
    }
    const decoded = both(...cases).map((x) => x.ours);
    const insert = decoded[1] as { tag: string; relation: { relationOid: number; name: string }; new: Tuple };
    assert.deepEqual([insert.tag, insert.relation.relationOid, insert.relation.name, insert.new], ['insert', OID, 'tåble "x"', ['1', 'zoë 漢字', big]]);
    assert.deepEqual((decoded[3] as { new: Tuple }).new, ['1', 'b', undefined]);
    assert.deepEqual((decoded[7] as { new: Tuple }).new, ['10', 'd', big]);
  });

  test('bad input fails loudly: a change before its relation, a truncated value, a binary value', () => {
    const d = new PgoutputDecoder();
    assert.throws(() => d.decode(Buffer.concat([ch('I'), u32(OID), ch('N'), tuple(['1', 'a', 'b'])])), /before its relation message/);
    d.decode(relation(COLUMNS));
    const cut = Buffer.concat([ch('I'), u32(OID), ch('N'), tuple(['1', 'abcdef', 'b'])]);
    assert.throws(() => d.decode(cut.subarray(0, cut.length - 4)), /unexpected end|out of range/i);
    assert.throws(() => d.decode(Buffer.concat([ch('I'), u32(OID), ch('N'), i16(1), ch('b'), i32(1), u8(1)])), /binary values are not requested/);
    assert.throws(() => d.decode(Buffer.from('Z')), /unknown message Z/);
  });
});
