// Shrinking: fewer rounds, transactions, operations, rows and columns, keeping the same failure
// (its signature); the smallest case found is written as a regression test file.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Case } from './case';
import type { FindingId } from './findings';
import type { Harness } from './harness';
import { runCase, type CaseResult } from './runCase';

const clone = (c: Case): Case => structuredClone(c);

/** Smaller variants of a case, the biggest cuts first; `failedRound`: rounds after it never ran. */
export function* candidates(c: Case, failedRound?: number): Generator<Case> {
  if (failedRound !== undefined && failedRound < c.rounds.length) {
    const d = clone(c);
    d.rounds = d.rounds.slice(0, failedRound);
    yield d;
  }
  for (let i = 0; i < c.rounds.length; i++) {
    const d = clone(c);
    d.rounds.splice(i, 1);
    if (!d.rounds.some((r) => r.event === 'join')) {
      d.tables = d.tables.slice(0, 1);
      d.initialRows = d.initialRows.slice(0, 1);
      for (const r of d.rounds) r.txns = r.txns.filter((t) => t.table === 0);
    }
    yield d;
  }
  for (let i = 0; i < c.rounds.length; i++)
    if (c.rounds[i]!.fault) {
      const d = clone(c);
      delete d.rounds[i]!.fault;
      yield d;
    }
  for (let i = 0; i < c.rounds.length; i++)
    for (let j = 0; j < c.rounds[i]!.txns.length; j++) {
      const d = clone(c);
      d.rounds[i]!.txns.splice(j, 1);
      yield d;
    }
  for (let i = 0; i < c.rounds.length; i++)
    for (let j = 0; j < c.rounds[i]!.txns.length; j++)
      for (let k = 0; k < c.rounds[i]!.txns[j]!.ops.length; k++) {
        if (c.rounds[i]!.txns[j]!.ops.length < 2) continue;
        const d = clone(c);
        d.rounds[i]!.txns[j]!.ops.splice(k, 1);
        yield d;
      }
  for (let i = 0; i < c.initialRows.length; i++)
    if (c.initialRows[i]! > 1) {
      const d = clone(c);
      d.initialRows[i] = Math.max(1, Math.floor(c.initialRows[i]! / 4));
      yield d;
    }
  for (let i = 0; i < c.rounds.length; i++)
    for (let j = 0; j < c.rounds[i]!.txns.length; j++)
      for (let k = 0; k < c.rounds[i]!.txns[j]!.ops.length; k++) {
        const op = c.rounds[i]!.txns[j]!.ops[k]!;
        if (!('rows' in op) || op.rows <= 1) continue;
        const d = clone(c);
        const o = d.rounds[i]!.txns[j]!.ops[k]!;
        if ('rows' in o) o.rows = Math.max(1, Math.floor(op.rows / 4));
        yield d;
      }
  for (let t = 0; t < c.tables.length; t++)
    for (const col of c.tables[t]!.columns) {
      const d = clone(c);
      d.tables[t]!.columns = d.tables[t]!.columns.filter((x) => x.name !== col.name);
      for (const r of d.rounds) for (const x of r.txns) x.ops = x.ops.filter((o) => !(o.op === 'drop-column' && o.name === col.name));
      yield d;
    }
  if (c.databases.source !== 'default' || c.databases.target !== 'default') yield { ...clone(c), databases: { source: 'default', target: 'default' } };
  if (c.tamper.update + c.tamper.delete + c.tamper.insert > 0) yield { ...clone(c), tamper: { update: 0, delete: 0, insert: 0 } };
}

/** The same failure: same kind and the same first kind of problem. */
const same = (a: CaseResult, b: CaseResult) => !b.ok && a.failure?.signature === b.failure?.signature;

export async function shrink(h: Harness, c: Case, failed: CaseResult, opts: { minutes: number; say?: (l: string) => void }): Promise<{ case: Case; result: CaseResult }> {
  const deadline = Date.now() + opts.minutes * 60_000;
  let best = { case: c, result: failed };
  let progress = true;
  while (progress && Date.now() < deadline) {
    progress = false;
    const round = /^round (\d+)/.exec(best.result.failure?.message ?? '')?.[1];
    for (const d of candidates(best.case, round ? Number(round) : best.result.failure?.message.startsWith('after cdc start') ? 0 : undefined)) {
      if (Date.now() > deadline) break;
      const r = await runCase(h, d);
      opts.say?.(`tried ${describe(d)}: ${r.ok ? 'passes' : r.failure?.signature}`);
      if (same(failed, r)) {
        best = { case: d, result: r };
        opts.say?.(`kept a smaller case (${describe(d)})`);
        progress = true;
        break;
      }
    }
  }
  return best;
}

export const describe = (c: Case): string =>
  `${c.rounds.length} round(s), ${c.rounds.reduce((n, r) => n + r.txns.reduce((m, t) => m + t.ops.length, 0), 0)} op(s), ${c.initialRows.join('+')} initial row(s), columns ${c.tables.map((t) => t.columns.map((x) => x.kind).join(',')).join(' / ')}`;

/** Writes the case as a test file under test/generative/regressions/ and returns its path. */
export async function writeRegression(c: Case, r: CaseResult, finding: FindingId | undefined, dir = path.join(__dirname, 'regressions')): Promise<string> {
  const name = `${finding ?? 'seed'}-${c.seed}.test.ts`;
  const file = path.join(dir, name);
  const body = [
    `// Shrunk by the generative suite from seed ${c.seed} (${c.mode}); it failed with: ${r.failure?.signature ?? 'ok'}.`,
    `// ${(r.failure?.message ?? '').split('\n')[0]!.slice(0, 200)}`,
    `import { regressionTest } from '../suite';`,
    '',
    `regressionTest(${finding ? `'${finding}'` : 'undefined'}, ${JSON.stringify(c, null, 2)});`,
    '',
  ].join('\n');
  await writeFile(file, body);
  return path.relative(path.join(__dirname, '..', '..'), file);
}
