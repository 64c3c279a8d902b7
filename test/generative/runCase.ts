// Runs one case through the product as a user does (config file, worker process, CLI), then
// asks the oracle, then checks `verify` against rows edited behind the worker's back.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import YAML from 'yaml';
import { eventsOf, faultsOf, keyNames, type Case, type Fault, type Mode, type Round } from './case';
import { HARNESS_APP, sleep, type CliRun, type Harness } from './harness';
import { compareReads, oracleOk, readTable, type OracleResult } from './oracle';
import { sourceTables, type SourceTable } from './source';

export type FailureKind = 'loss' | 'verify' | 'command' | 'error';

export interface CaseResult {
  seed: number;
  mode: Mode;
  ok: boolean;
  failure?: { kind: FailureKind; message: string; signature: string };
  rowsCompared: number;
  lost: number;
  duplicated: number;
  events: string[];
  faults: Fault[];
  seconds: number;
  log: string[];
}

const SOFT = 'deleted_at';

/** A pipeline's config entry for the case's mode. */
function pipelineFor(c: Case, t: SourceTable, slotName: string, envs: { source: string; target: string }): Record<string, unknown> {
  const base: Record<string, unknown> = {
    source: { profile: 'local', environment: envs.source, table: `public.${t.name}` },
    target: { profile: 'local', environment: envs.target, table: `public.${t.name}` },
    key: keyNames(t.spec),
    batchRows: c.batchRows,
  };
  switch (c.mode) {
    case 'full-refresh':
      return { ...base, mode: 'full-refresh' };
    case 'append': {
      // No key: a keyed target would refuse the new version of an updated row; append keeps history.
      const { key: _key, ...keyless } = base;
      void _key;
      return { ...keyless, mode: 'append', cursor: 'rev' };
    }
    case 'upsert-cursor':
      return { ...base, mode: 'upsert', cursor: 'rev', deletes: 'hard' };
    case 'upsert-merge':
      return { ...base, mode: 'upsert', deletes: 'hard', resync: 'merge' };
    case 'upsert-soft':
      return { ...base, mode: 'upsert', cursor: 'rev', deletes: 'soft', softDeleteColumn: SOFT };
    case 'resync':
      return { ...base, mode: 'upsert', deletes: 'hard' };
    case 'cdc':
      return { ...base, mode: 'cdc', cdc: { slot: slotName, batchRows: 2_000, batchMs: 200 } };
  }
}

class CaseFailure extends Error {
  constructor(readonly kind: FailureKind, message: string, readonly signature: string) {
    super(message);
  }
}

export interface RunOptions {
  /** Progress lines (the seed first). */
  say?: (line: string) => void;
  /** How long a cdc target may take to catch up after the workload (default 20 s; more after a fault: a killed worker's stream waits out its 30 s heartbeat timeout). */
  convergeMs?: number;
}

export async function runCase(h: Harness, c: Case, opts: RunOptions = {}): Promise<CaseResult> {
  const started = Date.now();
  const log: string[] = [];
  const say = (l: string) => {
    l = `[${((Date.now() - started) / 1000).toFixed(1)} s] ${l}`;
    log.push(l);
    opts.say?.(l);
  };
  const result: CaseResult = { seed: c.seed, mode: c.mode, ok: false, rowsCompared: 0, lost: 0, duplicated: 0, events: eventsOf(c), faults: faultsOf(c), seconds: 0, log };
  say(`case seed=${c.seed} mode=${c.mode} tables=${c.tables.map((t) => `${t.name}(${t.keyShape}/${t.layout}, ${t.columns.map((x) => x.kind).join(',')})`).join(' ')} rounds=${c.rounds.map((r) => `${r.event}${r.fault ? `+${r.fault}` : ''}`).join(',') || '-'}`);
  const cdc = c.mode === 'cdc';
  const where = cdc ? 'logical' : 'shared';
  const tag = `gen_${c.seed}_${process.pid}_${Math.floor(Math.random() * 1e5)}`;
  const cleanups: (() => Promise<unknown>)[] = [];
  const pools: pg.Pool[] = [];
  try {
    const srcDb = await h.database(`${tag}_s`, where, c.databases.source);
    cleanups.push(() => srcDb.drop());
    const tgtDb = await h.database(`${tag}_t`, where, c.databases.target);
    cleanups.push(() => tgtDb.drop());
    const pool = (url: string) => {
      const p = new pg.Pool({ connectionString: url, application_name: HARNESS_APP, max: 3 });
      p.on('error', () => undefined); // a restarted server drops them; the next query reconnects
      pools.push(p);
      return p;
    };
    const source = pool(srcDb.url);
    const target = pool(tgtDb.url);
    const tables = sourceTables(c.tables, c.seed);
    for (const [i, t] of tables.entries()) {
      await source.query(t.ddl());
      if (c.mode === 'upsert-soft') await target.query(t.ddl(`${SOFT} timestamptz`));
      else if (c.precreateTarget) await target.query(t.ddl('', true));
      await withClient(source, (db) => t.run(db, { table: i, ops: [{ op: 'insert', rows: c.initialRows[i]! }] }));
    }
    // Slot names are cluster-wide: one per run, so a case run again (shrinking) never meets its last slot.
    const pipelines = Object.fromEntries(tables.map((t, i) => [`p${i}`, pipelineFor(c, t, tag.toLowerCase(), { source: 'src', target: 'tgt' })]));
    const raw = {
      temporal: { address: h.temporalAddress, taskQueue: `gen-${tag}` },
      worker: { opsPort: 0 },
      profiles: { local: { auth: { method: 'password', password: 'trust' }, environments: { src: srcDb.env, tgt: tgtDb.env } } },
      pipelines,
      syncGroups: { g: { pipelines: Object.keys(pipelines) } },
    };
    const file = path.join(h.workDir, `${tag}.yaml`);
    await writeFile(file, YAML.stringify(raw));
    h.useConfig(file);
    h.startWorker();
    cleanups.unshift(() => (cdc ? h.killWorker(false) : h.stopWorker()));

    const must = async (r: CliRun, what: string, want = 0) => {
      say(r.out.split('\n').slice(0, 6).join('\n'));
      if (r.code !== want) throw new CaseFailure('command', `${what}: exit ${r.code}, expected ${want}${h.workerExit ? ` (${h.workerExit})` : ''}\n${r.out}`, `command:${what}`);
    };
    const injectFault = async (fault: Fault | undefined) => {
      if (!fault) return;
      say(`fault: ${fault}`);
      if (fault === 'worker-kill') await h.killWorker(true);
      else if (fault === 'terminate-backends') say(`terminated ${await h.terminateBackends(where, [`${tag}_s`, `${tag}_t`])} connection(s)`);
      else if (fault === 'pg-restart') await h.restartLogicalServer();
      else await h.restartTemporal();
    };
    /** A command with a fault striking `afterMs` into it; a faulted command that fails is followed by one plain re-run. */
    const faulted = async (args: string[], round: Round, what: string) => {
      const cmd = h.cli(args);
      const fault = (async () => {
        await sleep(round.faultAfterMs);
        await injectFault(round.fault);
      })();
      const [r] = await Promise.all([cmd, fault]);
      if (round.fault && r.code !== 0) {
        say(`${what} under ${round.fault} exited ${r.code} (allowed under a fault); waiting, then running it again`);
        say(r.out.split('\n').slice(0, 6).join('\n'));
        await waitIdle(h, 'p0');
        return must(await h.cli(args), `${what} (re-run after ${round.fault})`);
      }
      return must(r, what);
    };

    const everSynced = tables.map(() => new Set<string>());
    const noteSynced = async () => {
      if (c.mode !== 'upsert-soft') return;
      for (const [i, t] of tables.entries()) {
        const read = await withClient(source, (db) => readTable(db, t.name, t.allColumns(), keyNames(t.spec)));
        for (const r of read?.rows ?? []) everSynced[i]!.add(r.key);
      }
    };
    const check = async (only?: number[]): Promise<OracleResult[]> => {
      const out: OracleResult[] = [];
      for (const [i, t] of tables.entries()) {
        if (only && !only.includes(i)) continue;
        const cols = t.allColumns();
        const [s, d] = await Promise.all([
          withClient(source, (db) => readTable(db, t.name, cols, keyNames(t.spec))),
          withClient(target, (db) => readTable(db, t.name, cols, keyNames(t.spec), c.mode === 'upsert-soft' ? SOFT : undefined)),
        ]);
        out.push(compareReads(c.mode, s!, d, cols, everSynced[i], !!c.precreateTarget));
      }
      return out;
    };
    const joined = new Set<number>();
    /**
     * The product's word first: a pipeline still copying its table (a big one in small chunks takes
     * minutes) is judged once `cdc status` no longer says snapshot, up to 10 minutes; only then the
     * convergence window starts. A copy that never ends still fails, at its deadline.
     */
    const copied = async () => {
      const deadline = Date.now() + 600_000;
      for (const i of joined)
        while (Date.now() < deadline) {
          const r = await h.cli(['cdc', 'status', '--pipeline', `p${i}`], 60_000);
          if (!new RegExp(`^pipeline p${i}: snapshot`, 'm').test(r.out)) break;
          await sleep(1_000);
        }
    };
    const converge = async (ms: number) => {
      await copied();
      const deadline = Date.now() + ms;
      for (;;) {
        const r = await check([...joined]).catch((err: Error) => [{ rowsCompared: 0, lost: 0, duplicated: 0, differing: 0, extra: 0, problems: [`oracle could not read: ${err.message}`] }]);
        if (r.every(oracleOk) || Date.now() > deadline) return r;
        await sleep(500);
      }
    };
    const judge = (r: OracleResult[], when: string) => {
      result.rowsCompared += r.reduce((n, x) => n + x.rowsCompared, 0);
      result.lost += r.reduce((n, x) => n + x.lost, 0);
      result.duplicated += r.reduce((n, x) => n + x.duplicated, 0);
      const bad = r.flatMap((x, i) => x.problems.map((p) => `p${i}: ${p}`));
      if (bad.length) throw new CaseFailure('loss', `${when}: ${bad.join('\n  ')}`, `loss:${bad[0]!.replace(/^p\d+: /, '').replace(/:.*$/, '')}`);
    };

    const convergeMs = opts.convergeMs ?? 20_000;
    if (!cdc) {
      await must(await h.cli(['sync', 'start', '--pipeline', 'p0', '--wait']), 'sync-start');
      await noteSynced();
      for (const [ri, round] of c.rounds.entries()) {
        for (const txn of round.txns) await withClient(source, (db) => tables[txn.table]!.run(db, txn));
        const args = round.event === 'group-run' ? ['sync', 'group', '--group', 'g'] : ['sync', 'start', '--pipeline', 'p0', '--wait'];
        await faulted(args, round, `round ${ri + 1} ${round.event}`);
        await noteSynced();
      }
      judge(await check(), 'after the last sync');
    } else {
      await must(await h.cli(['cdc', 'start', '--pipeline', 'p0']), 'cdc-start');
      joined.add(0);
      judge(await converge(convergeMs), 'after cdc start');
      for (const [ri, round] of c.rounds.entries()) {
        const workload = async (which: (t: number) => boolean) => {
          for (const txn of round.txns) if (which(txn.table)) await withClient(source, (db) => tables[txn.table]!.run(db, txn));
        };
        let fire!: () => void;
        const go = new Promise<void>((r) => (fire = r));
        const fault = (async () => {
          if (round.fault === 'pg-restart') await go;
          await sleep(round.faultAfterMs);
          await injectFault(round.fault);
        })();
        const workloadThenFault = async (which: (t: number) => boolean) => {
          await workload(which);
          fire();
        };
        if (round.event === 'stop-start') {
          await must(await h.cli(['cdc', 'stop', '--pipeline', 'p0']), `round ${ri + 1} cdc stop`);
          await workloadThenFault(() => true);
          await fault;
          await must(await h.cli(['cdc', 'start', '--pipeline', 'p0']), `round ${ri + 1} cdc start`);
        } else if (round.event === 'join' && tables.length > 1 && !joined.has(1)) {
          // The stream is busy with t0 while t1 joins; t1 changes right after its join answer
          // (seen losing them: the stream confirms past t1's start while t1 copies).
          const [answer] = await Promise.all([h.cli(['cdc', 'start', '--pipeline', 'p1']), workload((t) => t === 0)]);
          await must(answer, `round ${ri + 1} join`);
          joined.add(1);
          await workloadThenFault((t) => t === 1);
          await fault;
        } else if (round.fault === 'pg-restart') {
          // The harness's own transactions would die with the server (their outcome unknown to the model):
          // the restart strikes after them, while the stream is still applying.
          await workloadThenFault(() => true);
          await fault;
        } else {
          fire();
          await Promise.all([workload(() => true), fault]);
        }
        const extra = round.fault === 'worker-kill' ? 40_000 : round.fault ? 15_000 : 0;
        judge(await converge(convergeMs + extra), `round ${ri + 1} (${round.event}${round.fault ? ` + ${round.fault}` : ''})`);
      }
    }

    if (c.mode !== 'append') await checkVerify(h, c, tables[0]!, target, say, c.mode === 'upsert-soft' ? SOFT : undefined);
    // No closing `cdc stop` (it waits out the segment, ~25 s; stop is exercised by the stop-start event):
    // the worker is killed and the slot dropped with the databases; the per-file dev server forgets the workflow.
    result.ok = true;
    say(`seed=${c.seed}: ok (${result.rowsCompared} rows compared)`);
  } catch (err) {
    const f = err instanceof CaseFailure ? err : new CaseFailure('error', (err as Error).stack ?? String(err), `error:${(err as Error).message.split('\n')[0]!.slice(0, 60)}`);
    result.failure = { kind: f.kind, message: f.message, signature: f.signature };
    say(`seed=${c.seed}: FAILED (${f.kind}) ${f.message}`);
  } finally {
    for (const p of pools) await p.end().catch(() => undefined);
    for (const step of cleanups) await step().catch((err: Error) => say(`cleanup: ${err.message}`));
    result.seconds = (Date.now() - started) / 1000;
  }
  return result;
}

async function withClient<T>(p: pg.Pool, fn: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let db: pg.PoolClient | undefined;
    try {
      db = await p.connect();
    } catch (err) {
      // The private server may be restarting (a fault): connecting is retried, statements are not.
      if (attempt >= 30) throw err;
      await sleep(500);
      continue;
    }
    // A server restart or a terminated backend errors the checked-out client too: the statement fails, the process must not.
    const ignore = () => undefined;
    db.on('error', ignore);
    try {
      return await fn(db);
    } finally {
      db.off('error', ignore);
      db.release();
    }
  }
}

/** Waits until no run of the pipeline is in flight (as `lakebase-worker list` shows). */
async function waitIdle(h: Harness, pipeline: string): Promise<void> {
  const deadline = Date.now() + 240_000;
  while (Date.now() < deadline) {
    const r = await h.cli(['list', '--pipeline', pipeline, '--status', 'Running']);
    if (r.code === 0 && !/sync:/.test(r.out.split('\n').slice(1).join('\n'))) return;
    await sleep(2_000);
  }
}

/**
 * The product's verify against the oracle: edit target rows behind the worker (change, delete,
 * insert), then `verify` must exit 1 naming exactly those rows, or 0 when nothing was edited.
 */
async function checkVerify(h: Harness, c: Case, t: SourceTable, target: pg.Pool, say: (l: string) => void, softColumn?: string): Promise<void> {
  const keys = keyNames(t.spec);
  const keyName = keys.length === 1 ? keys[0]! : `(${keys.join(', ')})`;
  const show = (vals: string[]) => (vals.length === 1 ? vals[0]! : `(${vals.join(', ')})`);
  const expected: string[] = [];
  await withClient(target, async (db) => {
    const live = softColumn ? `WHERE ${softColumn} IS NULL` : '';
    const rows = (await db.query(`SELECT ${keys.map((k) => `${k}::text AS ${k}`).join(', ')} FROM ${t.name} ${live} ORDER BY md5(${keys.map((k) => `${k}::text`).join(" || '|' || ")}) LIMIT $1`, [c.tamper.update + c.tamper.delete])).rows as Record<string, string>[];
    const match = (r: Record<string, string>, n: number) => keys.map((k, i) => `${k}::text = $${i + n}`).join(' AND ');
    for (const [i, r] of rows.entries()) {
      const vals = keys.map((k) => r[k]!);
      if (i < c.tamper.update) {
        await db.query(`UPDATE ${t.name} SET rev = -rev - 1 WHERE ${match(r, 1)}`, vals);
        expected.push(`differs ${keyName}=${show(vals)}`);
      } else {
        await db.query(`DELETE FROM ${t.name} WHERE ${match(r, 1)}`, vals);
        expected.push(`missing ${keyName}=${show(vals)}`);
      }
    }
    if (c.tamper.insert && rows.length) {
      const one = rows[0]!;
      const fresh: Record<string, string> = { k_int: '-424242', k_text: 'zz-tampered', k_uuid: '00000000-0000-4000-a000-000000000042' };
      const cols = t.allColumns().filter((x) => !keys.includes(x));
      const vals = keys.map((k) => fresh[k]!);
      // A copy of an existing row under a key the source never had.
      const n = (await db.query(`INSERT INTO ${t.name} (${[...keys, ...cols].join(', ')}) SELECT ${[...keys.map((k, i) => `$${i + 1}::${t.spec.keyShape === 'uuid' ? 'uuid' : k === 'k_int' ? 'int' : 'text'}`), ...cols].join(', ')} FROM ${t.name} WHERE ${keys.map((k, i) => `${k}::text = $${i + 1 + keys.length}`).join(' AND ')}`, [...vals, ...keys.map((k) => one[k]!)])).rowCount;
      if (n) expected.push(`extra ${keyName}=${show(vals)}`);
    }
  });
  const r = await h.cli(['verify', '--pipeline', 'p0']);
  say(r.out.split('\n').slice(0, 4).join('\n'));
  const want = expected.length ? 1 : 0;
  const missing = expected.filter((e) => !r.out.includes(e));
  const count = /found ([\d,]+) difference(?:s|\(s\))?\b/.exec(r.out)?.[1]?.replace(/,/g, '');
  const countOk = expected.length ? Number(count) === expected.length : true;
  if (r.code !== want || missing.length || !countOk)
    throw new CaseFailure('verify', `verify after editing ${expected.length} target row(s) (${expected.join('; ') || 'none'}): exit ${r.code} (want ${want}); not named: ${missing.join('; ') || '-'}; reported ${count ?? '?'} difference(s)\n${r.out}`, `verify:exit${r.code}`);
}
