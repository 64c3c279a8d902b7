// PostgreSQL's own logical replication (`CREATE SUBSCRIPTION`), the peer every PostgreSQL user
// already has, on the same server as the cdc bench's source. Source and subscriber in one cluster
// need the slot made apart: `CREATE SUBSCRIPTION … create_slot = true` there waits for its own
// transaction and never returns (PostgreSQL's documentation says so), so the slot is created first
// with pg_create_logical_replication_slot and the subscription told to use it.
import pg from 'pg';

export interface NativeSubscription {
  /** Seconds from CREATE SUBSCRIPTION until every table's initial copy is done ('r' in pg_subscription_rel). */
  loadSeconds: number;
  /** The last source commit the apply worker has applied (its replication origin's remote_lsn), or null before any. */
  appliedLsn(): Promise<string | null>;
  /** Stops and removes the subscription, its origin and its slot. */
  drop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Subscribes `subscriberUrl` (a database with the same table, empty, keyed) to `table` of
 * `sourceUrl`, copying the data first as native tablesync does, and waits for the copy.
 */
export async function subscribeNatively(sourceUrl: string, subscriberUrl: string, table: string, timeoutMs = 600_000): Promise<NativeSubscription> {
  const name = 'lbw_bench_native';
  const source = new pg.Client({ connectionString: sourceUrl });
  const subscriber = new pg.Client({ connectionString: subscriberUrl });
  await source.connect();
  await subscriber.connect();
  try {
    await source.query(`CREATE PUBLICATION ${name} FOR TABLE ${table}`);
    await source.query(`SELECT pg_create_logical_replication_slot('${name}', 'pgoutput')`);
    const u = new URL(sourceUrl);
    const conninfo = `host=${u.hostname} port=${u.port || 5432} dbname=${u.pathname.slice(1)} user=${decodeURIComponent(u.username)} password=${decodeURIComponent(u.password)}`;
    const t0 = performance.now();
    // Defaults otherwise (streaming off, synchronous_commit off in the apply worker), as a user gets them.
    await subscriber.query(`CREATE SUBSCRIPTION ${name} CONNECTION '${conninfo.replace(/'/g, "''")}' PUBLICATION ${name} WITH (create_slot = false, slot_name = '${name}', copy_data = true)`);
    for (;;) {
      const { rows } = await subscriber.query<{ pending: string; all: string }>(
        `SELECT count(*) FILTER (WHERE srsubstate <> 'r')::text AS pending, count(*)::text AS all FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1`,
        [name],
      );
      if (Number(rows[0]!.all) > 0 && rows[0]!.pending === '0') break;
      if (performance.now() - t0 > timeoutMs) throw new Error(`the native subscription's initial copy did not finish within ${timeoutMs / 1000} s`);
      await sleep(50);
    }
    const loadSeconds = (performance.now() - t0) / 1000;
    const { rows: sub } = await subscriber.query<{ oid: string }>(`SELECT oid::text FROM pg_subscription WHERE subname = $1`, [name]);
    const origin = `pg_${sub[0]!.oid}`;
    return {
      loadSeconds,
      async appliedLsn() {
        const { rows } = await subscriber.query<{ lsn: string | null }>(`SELECT remote_lsn::text AS lsn FROM pg_replication_origin_status WHERE external_id = $1`, [origin]);
        const lsn = rows[0]?.lsn ?? null;
        return lsn === '0/0' ? null : lsn;
      },
      async drop() {
        await subscriber.query(`ALTER SUBSCRIPTION ${name} DISABLE`);
        await subscriber.query(`ALTER SUBSCRIPTION ${name} SET (slot_name = NONE)`);
        await subscriber.query(`DROP SUBSCRIPTION ${name}`);
        for (let i = 0; ; i++) {
          // The walsender may still hold the slot for a moment after the apply worker stopped.
          const r = await source.query(`SELECT pg_drop_replication_slot('${name}')`).then(() => true, (err: Error) => (i > 100 ? Promise.reject(err) : false));
          if (r) break;
          await sleep(100);
        }
        await source.query(`DROP PUBLICATION ${name}`);
        await Promise.all([source.end(), subscriber.end()]);
      },
    };
  } catch (err) {
    await Promise.all([source.end(), subscriber.end()]).catch(() => undefined);
    throw err;
  }
}
