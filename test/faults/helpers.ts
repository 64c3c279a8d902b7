import { appendFile } from 'node:fs/promises';
import net from 'node:net';
import pg from 'pg';
import { relationChecksum } from '../../src/db/checksum';

/** One row of docs/reliability.md, written by each scenario from what it observed. */
export interface FaultResult {
  scenario: string;
  injected: string;
  expected: string;
  observed: string;
  rowsLost: number;
  rowsDuplicated: number;
  recoverySeconds: number | null;
}

export async function record(r: FaultResult): Promise<void> {
  const file = process.env.FAULT_RESULTS;
  if (file) await appendFile(file, `${JSON.stringify(r)}\n`);
}

/** Rows missing from the target and rows present more than once (by key), plus checksum equality. */
export async function compare(db: pg.Client, source: string, target: string, columns: string[], key: string) {
  const lost = Number((await db.query(`SELECT count(*) AS n FROM ${source} s WHERE NOT EXISTS (SELECT 1 FROM ${target} t WHERE t.${key} = s.${key})`)).rows[0].n);
  const dup = Number((await db.query(`SELECT coalesce(sum(c - 1), 0) AS n FROM (SELECT count(*) AS c FROM ${target} GROUP BY ${key} HAVING count(*) > 1) x`)).rows[0].n);
  const [a, b] = await Promise.all([relationChecksum(db, source, columns, [key]), relationChecksum(db, target, columns, [key])]);
  return { lost, dup, equal: a.rows === b.rows && a.md5 === b.md5 };
}

/**
 * `compare` for a source and target in different databases: keys and row digests of both are
 * read (no join is possible) and compared here; equality needs no common collation.
 */
export async function compareAcross(sourceDb: pg.Client, source: string, targetDb: pg.Client, target: string, columns: string[], key: string) {
  const read = async (db: pg.Client, table: string) =>
    (await db.query<{ k: string; h: string }>(`SELECT ${key}::text AS k, md5(ROW(${columns.join(', ')})::text) AS h FROM ${table}`)).rows;
  const [src, tgt] = await Promise.all([read(sourceDb, source), read(targetDb, target)]);
  const inTarget = new Map<string, string[]>();
  for (const r of tgt) inTarget.set(r.k, [...(inTarget.get(r.k) ?? []), r.h]);
  const lost = src.filter((r) => !inTarget.has(r.k)).length;
  const dup = [...inTarget.values()].reduce((n, hs) => n + hs.length - 1, 0);
  const equal = src.length === tgt.length && dup === 0 && src.every((r) => inTarget.get(r.k)?.[0] === r.h);
  return { lost, dup, equal };
}

/**
 * A TCP proxy between the worker and PostgreSQL that can blackhole traffic (bytes are swallowed,
 * connections stay open) or reset every connection, and can add latency.
 */
export class FaultyProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  blackhole = false;
  latencyMs = 0;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<this> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      const forward = (from: net.Socket, to: net.Socket) =>
        from.on('data', (chunk) => {
          if (this.blackhole) return;
          if (this.latencyMs) setTimeout(() => to.write(chunk), this.latencyMs);
          else to.write(chunk);
        });
      forward(client, upstream);
      forward(upstream, client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  /** Resets every open connection (RST), as a network device dropping state would. */
  resetAll(): void {
    for (const s of this.sockets) s.resetAndDestroy();
  }

  async stop(): Promise<void> {
    this.resetAll();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
