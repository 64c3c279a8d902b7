// The benchmark's result file shape and the markdown table made from it (pasted into README).

export interface CaseResult {
  id: string;
  label: string;
  /** peer: another tool; ours: lakebase-worker; remote: through the throttling proxy; compare: delete detection and verify. */
  group: 'yardstick' | 'peer' | 'ours' | 'remote' | 'compare';
  rows: number;
  /**
   * Wall time as its user sees it: command start to exit, or workflow start request to result.
   * compare: the phase's own time from the workflow history (first plan activity scheduled to the last bucket closed).
   */
  seconds: number | null;
  rowsPerSecond: number | null;
  /** Pipe seconds / these seconds, the pipe of the same run and path (direct or through the proxy). */
  ratioToPipe: number | null;
  /** Ours: start to close of the workflow, from its history. */
  workflowSeconds?: number;
  /** Ours: pipe seconds / workflowSeconds (the workflow alone, without the CLI around it). */
  workflowRatioToPipe?: number | null;
  /** Ours: the worker process's CPU seconds during the case, per million rows of the table. */
  workerCpuSecondsPerMillionRows?: number | null;
  /** compare: where the phase's time went (plan activity, buckets, keys streamed to the target). */
  breakdown?: Record<string, number | null>;
  parallelism?: number;
  chunks?: number;
  rowsWritten?: number;
  /** Ours: the worker process's VmHWM after the sync (one fresh worker per case). */
  workerPeakRssMb?: number | null;
  /** Ours: VmHWM when the worker began polling, before the sync. */
  workerStartupRssMb?: number | null;
  command?: string;
  skipped?: string;
  /** The case failed (its error, first line); the run went on. */
  failed?: string;
  note?: string;
}

export interface BenchResult {
  measuredAt: string;
  engine: { commit: string; branch: string; dirty: boolean };
  machine: { cpus: number; cpuModel: string | undefined; memoryGb: number; node: string; os: string; loadAverageAtStart: number[]; loadAverageAtEnd: number[] };
  postgres: string;
  settings: {
    rows: number;
    remoteRows: number;
    changedRows: number;
    remote: { bytesPerSecondPerConnection: number; latencyMsEachWay: number };
    batchRows: number;
    defaultParallelism: number;
    pgcopydbJobs: number;
    /** Whether a CHECKPOINT ran before each timed case, or why not. */
    checkpoints: string;
  };
  pipe: { seconds: number[]; meanSeconds: number; rowsPerSecond: number; command: string };
  cases: CaseResult[];
  remote: { pipeSeconds: number; p1RowsPerSecond: number | null; p4RowsPerSecond: number | null; speedup: number | null } | null;
  twoWorkers: {
    workers: string[];
    /** syncChunk-like activities (type name contains "chunk") per worker identity, from ActivityTaskStarted events. */
    chunkActivitiesByWorker: Record<string, number>;
    activityTypes: Record<string, number>;
    /** Every chunk activity in history order, with the worker that ran it. */
    chunkActivities: { type: string; identity: string }[];
    bothRanPartitions: boolean;
    seconds: number | null;
  } | null;
  cliStart: { runsSeconds: number[]; medianSeconds: number } | null;
  /** Delete detection and verify: their table, what changed in it, and its own pipe (the compare rows' yardstick). */
  compare?: { table: string; rows: number; deleted: number; changed: number; pipeSeconds: number[]; meanPipeSeconds: number; firstLoadSeconds: number } | null;
  targets: { name: string; target: string; measured: string; met: boolean | null }[];
  note: string;
  /** Cases that failed (id: first line of the error); their rows say FAILED. */
  failures: string[];
  totalSeconds: number;
}

const fmt = (n: number | null | undefined, digits = 2) => (n === null || n === undefined ? '—' : n.toFixed(digits));
/** Table cells: a literal | would end the cell. */
const cell = (text: string) => text.replace(/\|/g, '\\|');
const int = (n: number | null | undefined) => (n === null || n === undefined ? '—' : Math.round(n).toLocaleString('en'));

export function markdown(r: BenchResult): string {
  const lines: string[] = [];
  lines.push(
    `Measured ${r.measuredAt.slice(0, 16).replace('T', ' ')} UTC on ${r.machine.cpus} × ${r.machine.cpuModel ?? 'CPU'}, ${r.machine.memoryGb} GB, ` +
      `${r.postgres.split(' on ')[0]}, Node ${r.machine.node} (load average ${r.machine.loadAverageAtStart.map((l) => l.toFixed(1)).join(' ')} at start); ` +
      `commit ${r.engine.commit.slice(0, 10)}${r.engine.dirty ? ' (uncommitted changes)' : ''}. ` +
      `\`pgbench_accounts\`, ${int(r.settings.rows)} rows, database to database; ratio = seconds of the raw binary pipe ` +
      `(${fmt(r.pipe.meanSeconds)} s, mean of ${r.pipe.seconds.length} runs) / the tool's seconds — higher is better. ` +
      `Ours: end to end is \`sync start --wait\` from spawn to exit; workflow is its start-to-close time in Temporal.`,
    '',
    '| case | rows | seconds end to end | rows/s | ratio to pipe | workflow seconds | workflow ratio | worker CPU s / M rows | worker peak RSS |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const c of r.cases) {
    if (c.skipped || c.failed) {
      lines.push(`| ${cell(c.label)} | — | — | — | ${c.failed ? `FAILED: ${cell(c.failed)}` : `skipped: ${cell(c.skipped!)}`} | — | — | — | — |`);
      continue;
    }
    // compare cases: seconds are their phase's own (from history), the whole workflow beside them.
    const workflow = c.workflowSeconds === undefined ? '' : fmt(c.workflowSeconds);
    const rss = c.workerPeakRssMb === undefined ? '' : `${int(c.workerPeakRssMb)} MB`;
    const cpu = c.workerCpuSecondsPerMillionRows === undefined ? '' : fmt(c.workerCpuSecondsPerMillionRows);
    const ratio = c.ratioToPipe === null ? '—' : fmt(c.ratioToPipe);
    const wfRatio = c.workflowRatioToPipe === undefined ? '' : fmt(c.workflowRatioToPipe);
    lines.push(`| ${cell(c.label)}${c.note && c.group === 'ours' ? ` (${cell(c.note)})` : ''} | ${int(c.rows)} | ${fmt(c.seconds)} | ${int(c.rowsPerSecond)} | ${ratio} | ${workflow} | ${wfRatio} | ${cpu} | ${rss} |`);
  }
  if (r.remote)
    lines.push(
      '',
      `Remote (through a proxy adding ${r.settings.remote.latencyMsEachWay} ms each way and limiting each connection to ` +
        `${fmt(r.settings.remote.bytesPerSecondPerConnection / 1e6, 1)} MB/s per direction; ${int(r.settings.remoteRows)} rows): ` +
        `parallelism 4 moved ${fmt(r.remote.speedup)}× the rows/s of parallelism 1 (pipe through the proxy: ${fmt(r.remote.pipeSeconds)} s).`,
    );
  if (r.twoWorkers)
    lines.push(
      '',
      `Two workers on one task queue, one sync: chunk activities per worker ${Object.entries(r.twoWorkers.chunkActivitiesByWorker)
        .map(([w, n]) => `${w.replace(/@.*/, '')}: ${n}`)
        .join(', ')} — ${r.twoWorkers.bothRanPartitions ? 'both ran partitions' : 'only one ran partitions'}.`,
    );
  if (r.compare)
    lines.push(
      '',
      `Delete detection and verify (\`${r.compare.table}\`, ${int(r.compare.rows)} rows; then ${int(r.compare.deleted)} deleted and ${int(r.compare.changed)} changed, ` +
        `spread evenly over the keys): seconds are the phase's own, from the workflow history (first plan activity scheduled → last bucket closed), ` +
        `with the whole workflow in brackets; ratio to the raw pipe of the same table (${fmt(r.compare.meanPipeSeconds)} s, mean of ${r.compare.pipeSeconds.length} runs).`,
    );
  if (r.cliStart) lines.push('', `CLI start (\`node bin/lakebase-worker.js --help\`, median of ${r.cliStart.runsSeconds.length}): ${fmt(r.cliStart.medianSeconds, 3)} s.`);
  // A run of some groups only lists the targets it measured.
  const measured = r.targets.filter((t) => t.met !== null || t.measured !== '—');
  if (measured.length) lines.push('', '| target (issues 12, 22, 28) | wanted | measured | met |', '|---|---|---|---|');
  for (const t of measured) lines.push(`| ${cell(t.name)} | ${t.target} | ${t.measured} | ${t.met === null ? '—' : t.met ? 'yes' : 'no'} |`);
  return `${lines.join('\n')}\n`;
}
