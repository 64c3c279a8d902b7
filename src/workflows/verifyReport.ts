// How a verify report reads, for the failure message, the UI and the CLI. Import-free: workflow code loads it.
import type { BucketRange, VerifyReport } from '../sync/types';

const showRange = (r: BucketRange) => `[${r.lower ?? '-∞'}, ${r.upper ?? '∞'})`;

/** The report's first line: what differs, by key where the table has one. */
export function describeVerify(report: VerifyReport, key: string[]): string {
  const point = report.at ? `; planned at the target's applied LSN ${report.at.appliedLsn ?? '(none yet)'} (source at ${report.at.sourceLsn}; the stream runs on while buckets compare)` : '';
  const totals = `source ${report.sourceRows.toLocaleString('en')} rows, target ${report.targetRows.toLocaleString('en')} in ${report.buckets} bucket(s)${point}`;
  if (report.ok) return `verify ${report.pipeline} (${report.mode}): source and target match — ${totals}${report.tolerated ? `; ${report.tolerated} difference(s) excused (rows after the last sync's cursor, or kept by deletes: ignore)` : ''}`;
  const keyName = key.length === 1 ? key[0]! : `(${key.join(', ')})`;
  const named = report.differences.map((d) => `${d.kind} ${keyName}=${d.key.length === 1 ? d.key[0] : `(${d.key.join(', ')})`}`);
  const ranges = report.ranges.map((r) => `${showRange(r.range)} source ${r.sourceRows} / target ${r.targetRows} rows`);
  return (
    `verify ${report.pipeline} (${report.mode}) found ${report.mismatches.toLocaleString('en')} difference(s) — ${totals}: ` +
    `${named.length ? named.join('; ') : ranges.join('; ')}${report.mismatches > named.length && named.length ? '; …' : ''}`
  );
}
