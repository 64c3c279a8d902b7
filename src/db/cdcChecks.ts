import type pg from 'pg';

/**
 * Read-only questions a cdc pipeline asks its source before it touches anything (publication,
 * slot): can this server and role replicate, and can the table publish updates without the
 * source refusing them? Nothing here writes.
 */

export interface ReplicationRights {
  walLevel: string;
  user: string;
  /** REPLICATION attribute or superuser. */
  canReplicate: boolean;
  maxSlots: number;
  usedSlots: number;
  maxWalSenders: number;
  usedWalSenders: number;
}

export async function replicationRights(c: pg.ClientBase): Promise<ReplicationRights> {
  const { rows } = await c.query<{ wal_level: string; usr: string; can: boolean; max_slots: number; used_slots: number; max_senders: number; used_senders: number }>(
    `SELECT current_setting('wal_level') AS wal_level, current_user AS usr,
            coalesce((SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), false) AS can,
            current_setting('max_replication_slots')::int AS max_slots, (SELECT count(*)::int FROM pg_replication_slots) AS used_slots,
            current_setting('max_wal_senders')::int AS max_senders, (SELECT count(*)::int FROM pg_stat_replication) AS used_senders`,
  );
  const r = rows[0]!;
  return { walLevel: r.wal_level, user: r.usr, canReplicate: r.can, maxSlots: r.max_slots, usedSlots: r.used_slots, maxWalSenders: r.max_senders, usedWalSenders: r.used_senders };
}

/** How one table (a leaf partition, or a plain table) identifies the old row of an UPDATE or DELETE in the WAL. */
export interface ReplicaIdentity {
  /** schema.table as format('%I.%I') writes it. */
  table: string;
  /** default (primary key), full, index (USING INDEX), nothing; `default` without a primary key publishes no old key. */
  mode: 'default' | 'full' | 'index' | 'nothing';
  /** The columns the old-row tuple carries: the primary key's (default), the index's (index), none (nothing, or default without a key); null for full (every column). */
  columns: string[] | null;
  primaryKey: string[] | null;
  /** Unique indexes whose columns are all NOT NULL and that are not partial or on expressions: usable with REPLICA IDENTITY USING INDEX. */
  candidateIndexes: { name: string; columns: string[] }[];
  /** Does the current role own it (needed to add it to a publication, or to create one for it)? */
  owned: boolean;
}

const MODES: Record<string, ReplicaIdentity['mode']> = { d: 'default', f: 'full', i: 'index', n: 'nothing' };

/** The replica identity of a table and, when it is partitioned, of each of its leaf partitions (where the WAL records are written). */
export async function replicaIdentities(c: pg.ClientBase, table: string): Promise<ReplicaIdentity[]> {
  const { rows } = await c.query<{ tbl: string; mode: string; ident: string[] | null; pk: string[] | null; owned: boolean; oid: number }>(
    `WITH rels AS (
       SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf
       UNION SELECT $1::regclass WHERE (SELECT relkind FROM pg_class WHERE oid = $1::regclass) <> 'p')
     SELECT r.oid::int AS oid, format('%I.%I', n.nspname, r.relname) AS tbl, r.relreplident AS mode,
            pg_has_role(current_user, r.relowner, 'USAGE') AS owned,
            (SELECT array_agg(a.attname::text ORDER BY k.i) FROM pg_index x CROSS JOIN unnest(x.indkey) WITH ORDINALITY k(att, i)
               JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.att
              WHERE x.indrelid = r.oid AND x.indisreplident) AS ident,
            (SELECT array_agg(a.attname::text ORDER BY k.i) FROM pg_index x CROSS JOIN unnest(x.indkey) WITH ORDINALITY k(att, i)
               JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.att
              WHERE x.indrelid = r.oid AND x.indisprimary) AS pk
       FROM rels JOIN pg_class r ON r.oid = rels.relid JOIN pg_namespace n ON n.oid = r.relnamespace
      ORDER BY 2`,
    [table],
  );
  const { rows: idx } = await c.query<{ oid: number; name: string; cols: string[] }>(
    `SELECT x.indrelid::int AS oid, format('%I', i.relname) AS name, array_agg(a.attname::text ORDER BY k.i) AS cols
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
       CROSS JOIN unnest(x.indkey) WITH ORDINALITY k(att, i)
       JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.att
      WHERE x.indrelid = ANY($1::oid[]) AND x.indisunique AND x.indimmediate AND x.indisvalid AND x.indpred IS NULL AND x.indexprs IS NULL
      GROUP BY x.indrelid, i.relname
     HAVING bool_and(a.attnotnull)`,
    [rows.map((r) => r.oid)],
  );
  return rows.map((r) => {
    const mode = MODES[r.mode] ?? 'nothing';
    return {
      table: r.tbl,
      mode,
      columns: mode === 'full' ? null : mode === 'default' ? r.pk : mode === 'index' ? r.ident : [],
      primaryKey: r.pk,
      candidateIndexes: idx.filter((x) => x.oid === r.oid).map((x) => ({ name: x.name, columns: x.cols })),
      owned: r.owned,
    };
  });
}

export interface PublicationInfo {
  exists: boolean;
  /** Does the current role own it (needed to add a table)? */
  owned: boolean;
}

export async function publicationInfo(c: pg.ClientBase, publication: string): Promise<PublicationInfo> {
  const { rows } = await c.query<{ owned: boolean }>(`SELECT pg_has_role(current_user, pubowner, 'USAGE') AS owned FROM pg_publication WHERE pubname = $1`, [publication]);
  return { exists: rows.length > 0, owned: rows[0]?.owned ?? false };
}

/** The slot's health as PostgreSQL 13+ reports it: reserved, extended, unreserved (about to be lost) or lost (invalidated). */
export interface SlotHealth {
  slot: string;
  database: string | null;
  plugin: string | null;
  active: boolean;
  /** PID of the process reading it (null when nobody reads). */
  activePid: number | null;
  walStatus: 'reserved' | 'extended' | 'unreserved' | 'lost' | null;
  /** Bytes of WAL that may still be written before the slot is in danger of being invalidated (null: no max_slot_wal_keep_size limit). */
  safeWalSize: number | null;
}

export async function slotHealth(c: pg.ClientBase, slot: string): Promise<SlotHealth | null> {
  const { rows } = await c.query<{ database: string | null; plugin: string | null; active: boolean; pid: number | null; wal_status: SlotHealth['walStatus']; safe: string | null }>(
    `SELECT database, plugin, active, active_pid AS pid, wal_status, safe_wal_size::text AS safe FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const r = rows[0];
  if (!r) return null;
  return { slot, database: r.database, plugin: r.plugin, active: r.active, activePid: r.pid, walStatus: r.wal_status, safeWalSize: r.safe === null ? null : Number(r.safe) };
}

/**
 * Waits up to `ms` for no one to read `slot` (the server lets go of it only once the reader's
 * walsender exits, a moment after the client closed); returns the slot's last health.
 */
export async function untilSlotIdle(c: pg.ClientBase, slot: string, ms: number, pollMs = 200): Promise<SlotHealth | null> {
  const deadline = Date.now() + ms;
  let h = await slotHealth(c, slot);
  while (h?.active && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, pollMs));
    h = await slotHealth(c, slot);
  }
  return h;
}

export const dropSlotSql = (slot: string) => `SELECT pg_drop_replication_slot('${slot.replace(/'/g, "''")}')`;
