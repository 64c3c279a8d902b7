// How a verify report reads, for the failure message, the UI and the CLI. Import-free: workflow code loads it.
import { count } from '../humanize';
import type { BucketRange, VerifyExcuse, VerifyReport } from '../sync/types';

const showRange = (r: BucketRange) => `[${r.lower ?? '-∞'}, ${r.upper ?? '∞'})`;

const REASONS: Record<VerifyExcuse['reason'], string> = {
  'deletes-ignore': 'gone from the source, kept by deletes: ignore',
  append: 'gone from the source, kept by mode: append',
  'after-cursor': "came after the last sync's cursor; the next sync brings it",
};

const showKey = (key: string[], values: (string | null)[]) => `${key.length === 1 ? key[0]! : `(${key.join(', ')})`}=${values.length === 1 ? values[0] : `(${values.join(', ')})`}`;

/** `; 1 difference excused: extra id=5 (gone from the source, kept by deletes: ignore)` — what was not counted, and why. */
function describeExcused(report: VerifyReport, key: string[]): string {
  if (!report.tolerated) return '';
  const n = report.tolerated;
  const named = (report.excused ?? []).map((e) => `${e.kind} ${showKey(key, e.key)} (${REASONS[e.reason]})`);
  const head = `; ${count(n, 'difference')} excused`;
  return named.length ? `${head}: ${named.join('; ')}${n > named.length ? '; …' : ''}` : `${head} (rows after the last sync's cursor, or kept by deletes: ignore)`;
}

/** The report's first line: what differs, by key where the table has one, and what was excused and why. */
export function describeVerify(report: VerifyReport, key: string[]): string {
  const point = report.at ? `; planned at the target's applied LSN ${report.at.appliedLsn ?? '(none yet)'} (source at ${report.at.sourceLsn}; the stream runs on while buckets compare)` : '';
  const totals = `source ${report.sourceRows.toLocaleString('en')} rows, target ${report.targetRows.toLocaleString('en')} in ${count(report.buckets, 'bucket')}${point}`;
  const excused = describeExcused(report, key);
  if (report.ok) return `verify ${report.pipeline} (${report.mode}): source and target match — ${totals}${excused}`;
  const named = report.differences.map((d) => `${d.kind} ${showKey(key, d.key)}`);
  const ranges = report.ranges.map((r) => `${showRange(r.range)} source ${r.sourceRows} / target ${r.targetRows} rows`);
  return (
    `verify ${report.pipeline} (${report.mode}) found ${count(report.mismatches, 'difference')} — ${totals}: ` +
    `${named.length ? named.join('; ') : ranges.join('; ')}${report.mismatches > named.length && named.length ? '; …' : ''}${excused}`
  );
}
