import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { markdown, type BenchResult } from '../bench/report';

const result: BenchResult = {
  measuredAt: '2026-11-25T08:00:00.000Z',
  engine: { commit: '0123456789abcdef', branch: 'x', dirty: false },
  machine: { cpus: 2, cpuModel: 'AMD EPYC', memoryGb: 24, node: 'v20.20.2', os: 'Linux', loadAverageAtStart: [1, 1, 1], loadAverageAtEnd: [1, 1, 1] },
  postgres: 'PostgreSQL 15.20 on x86_64',
  settings: { rows: 200000, remoteRows: 200000, changedRows: 1000, remote: { bytesPerSecondPerConnection: 2e6, latencyMsEachWay: 10 }, batchRows: 100000, defaultParallelism: 4, pgcopydbJobs: 4, checkpoints: 'before each timed case' },
  pipe: { seconds: [0.8, 0.6], meanSeconds: 0.7, rowsPerSecond: 285714, command: 'psql | psql' },
  cases: [
    { id: 'pipe', label: 'raw pipe `psql | psql`', group: 'yardstick', rows: 200000, seconds: 0.7, rowsPerSecond: 285714, ratioToPipe: 1 },
    { id: 'pgcopydb', label: 'pgcopydb', group: 'peer', rows: 200000, seconds: null, rowsPerSecond: null, ratioToPipe: null, skipped: 'not installed' },
    { id: 'full-refresh', label: 'full-refresh', group: 'ours', rows: 200000, seconds: 1.4, workflowSeconds: 1.0, workflowRatioToPipe: 0.7, rowsPerSecond: 142857, ratioToPipe: 0.5, workerPeakRssMb: 231, workerCpuSecondsPerMillionRows: 1.25 },
    { id: 'incremental', label: 'incremental', group: 'ours', rows: 1000, seconds: 0.43, workflowSeconds: 0.42, rowsPerSecond: 2326, ratioToPipe: null, workerPeakRssMb: 219 },
    { id: 'deletes-hard', label: 'delete detection', group: 'compare', rows: 200000, seconds: 0.8, workflowSeconds: 1.3, rowsPerSecond: 250000, ratioToPipe: 1.1, workerPeakRssMb: 220 },
  ],
  compare: { table: 'pgbench_accounts_dv', rows: 200000, deleted: 2000, changed: 2000, pipeSeconds: [0.9, 0.86], meanPipeSeconds: 0.88, firstLoadSeconds: 1.5 },
  remote: { pipeSeconds: 12.4, p1RowsPerSecond: 15000, p4RowsPerSecond: 50000, speedup: 3.33 },
  twoWorkers: { workers: ['1@h', '2@h'], chunkActivitiesByWorker: { '1@h': 2, '2@h': 1 }, activityTypes: { syncChunk: 3 }, chunkActivities: [], bothRanPartitions: true, seconds: 1.9 },
  cliStart: { runsSeconds: [0.3, 0.2, 0.4, 0.3, 0.3], medianSeconds: 0.3 },
  targets: [
    { name: 'full-refresh', target: 'ratio ≥ 1', measured: '0.50', met: false },
    { name: 'not measured in this run', target: '< 1 s', measured: '—', met: null },
  ],
  note: '',
  failures: [],
  totalSeconds: 100,
};

describe('bench report (README table)', () => {
  const md = markdown(result);
  const rows = md.split('\n').filter((l) => l.startsWith('| '));

  test('every table row has as many cells as its header (a | inside a label is escaped)', () => {
    const cells = (l: string) => l.replace(/\\\|/g, '').split('|').length;
    const header = cells(rows[0]!);
    for (const l of rows.slice(0, 5)) assert.equal(cells(l), header, l);
    assert.match(md, /`psql \\\| psql`/);
  });

  test('skipped tools say why; end to end and workflow side by side; ratios, worker CPU and RSS are printed', () => {
    assert.match(md, /\| pgcopydb \| — \| — \| — \| skipped: not installed \| — \| — \| — \| — \|/);
    assert.match(md, /\| incremental \| 1,000 \| 0\.43 \| 2,326 \| — \| 0\.42 \| {2}\| {2}\| 219 MB \|/);
    assert.match(md, /\| full-refresh \| 200,000 \| 1\.40 \| 142,857 \| 0\.50 \| 1\.00 \| 0\.70 \| 1\.25 \| 231 MB \|/);
    assert.match(md, /parallelism 4 moved 3\.33× the rows\/s of parallelism 1/);
    assert.match(md, /1: 2, 2: 1 — both ran partitions/);
    assert.match(md, /\| full-refresh \| ratio ≥ 1 \| 0\.50 \| no \|/);
  });

  test('delete detection and verify show the phase with the workflow beside it, and their own pipe; unmeasured targets are left out', () => {
    assert.match(md, /\| delete detection \| 200,000 \| 0\.80 \| 250,000 \| 1\.10 \| 1\.30 \| {2}\| {2}\| 220 MB \|/);
    assert.match(md, /`pgbench_accounts_dv`, 200,000 rows; then 2,000 deleted and 2,000 changed.*raw pipe of the same table \(0\.88 s, mean of 2 runs\)/);
    assert.doesNotMatch(md, /not measured in this run/);
  });
});
