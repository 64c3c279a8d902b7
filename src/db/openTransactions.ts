import type pg from 'pg';
import { RETRYABLE_FAILURES } from '../failureTypes';

/**
 * Waiting out the source transactions that were open when a table joined a publication.
 *
 * Logical decoding publishes a change only if its table was in the publication at the change's
 * place in the WAL. A transaction that wrote the table before `ALTER PUBLICATION … ADD TABLE` and
 * commits after the joining pipeline's copy read those rows is in neither: the copy did not see it
 * (uncommitted), the stream does not carry it (written before the table was published). Once every
 * transaction open at the join has ended, the copy sees all writes made before, and the stream
 * carries all made after (what a new slot's consistent point, or a tablesync worker, waits for).
 */

export interface OpenTransaction {
  xid: string;
  pid: number | null;
  since: Date | null;
  /** "prepared" for a two-phase transaction (it lasts until COMMIT PREPARED or ROLLBACK PREPARED). */
  kind: 'session' | 'prepared';
}

/**
 * Transactions with an xid running now, on the whole server (xids are server-wide), as xid8 text:
 * the snapshot's in-progress list, and the xids at or past its xmax (assigned, not yet in any
 * snapshot's range) up to one taken now, past all of them.
 */
async function runningXids(c: pg.ClientBase): Promise<string[]> {
  const { rows } = await c.query<{ x: string }>(
    `WITH s AS (SELECT pg_current_snapshot() AS snap, pg_current_xact_id()::text::numeric AS now)
     SELECT x::text AS x FROM s, pg_snapshot_xip(s.snap) x
     UNION ALL
     SELECT (pg_snapshot_xmax(s.snap)::text::numeric + g)::text FROM s, generate_series(0, least(100000, s.now - pg_snapshot_xmax(s.snap)::text::numeric - 1)::bigint) g`,
  );
  return rows.map((r) => r.x);
}

/**
 * Which of `xids` are still in progress and could have written this database. Another database's
 * transactions (a cdc target on the same server, say) cannot touch the table and are left out when
 * the server says where they run; a session whose database this role may not see counts as ours.
 */
async function stillOpen(c: pg.ClientBase, xids: string[]): Promise<OpenTransaction[]> {
  if (!xids.length) return [];
  const { rows } = await c.query<{ xid: string; pid: number | null; since: Date | null; prepared: boolean }>(
    `WITH open AS (SELECT x FROM unnest($1::xid8[]) x WHERE pg_xact_status(x) = 'in progress' AND x IS DISTINCT FROM pg_current_xact_id_if_assigned())
     SELECT o.x::text AS xid, a.pid, a.xact_start AS since, p.transaction IS NOT NULL AS prepared
       FROM open o
       LEFT JOIN pg_stat_activity a ON a.backend_xid::text = (o.x::text::numeric % 4294967296)::text
       LEFT JOIN pg_prepared_xacts p ON p.transaction::text = (o.x::text::numeric % 4294967296)::text
      WHERE coalesce(a.datname, p.database, current_database()) = current_database()
      ORDER BY a.xact_start NULLS LAST`,
    [xids],
  );
  return rows.map((r) => ({ xid: r.xid, pid: r.pid, since: r.since, kind: r.prepared ? 'prepared' : 'session' }));
}

/**
 * Resolves once every transaction of this database open at the call has ended; null then. Past
 * `ms`, resolves with those still open (the caller names them), having changed nothing.
 */
export async function untilOpenTransactionsEnd(c: pg.ClientBase, ms: number, pollMs = 200, onWait?: (open: OpenTransaction[]) => void): Promise<OpenTransaction[] | null> {
  const deadline = Date.now() + ms;
  let xids = await runningXids(c);
  let reported = false;
  for (;;) {
    const open = await stillOpen(c, xids);
    if (!open.length) return null;
    if (Date.now() >= deadline) return open;
    if (!reported && onWait) {
      onWait(open);
      reported = true;
    }
    xids = open.map((o) => o.xid);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** One line per transaction for an error or a log: "pid 123 (open since …)" or "prepared transaction 456". */
export function describeOpenTransactions(open: OpenTransaction[]): string {
  return open
    .slice(0, 5)
    .map((o) => (o.kind === 'prepared' ? `prepared transaction ${o.xid} (COMMIT PREPARED or ROLLBACK PREPARED ends it)` : `pid ${o.pid ?? '?'}${o.since ? ` (open since ${o.since.toISOString()})` : ''}`))
    .join(', ') + (open.length > 5 ? ` and ${open.length - 5} more` : '');
}

/** Transactions open at a join outlived the wait: retryable (the activity tries again), the message names them. */
export class OpenTransactionsWait extends Error {
  override name = 'OpenTransactionsWait';
  readonly type = RETRYABLE_FAILURES.cdcJoinWaiting;
}
