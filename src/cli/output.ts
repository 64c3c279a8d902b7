// Everything the CLI prints about results and errors, in one place.
import type { ScheduleSummary } from '@temporalio/client';
import { ConfigError } from '../config/load';
import { JobParamError } from '../config/jobParams';
import type { RunStatus } from '../client/runs';
import { formatProgress } from '../progress';
import { temporalClient, temporalConnection } from './lazy';
import type { JobProgress, SyncProgress } from '../workflows';

export const print = (line = ''): void => console.log(line);

/** Wrapper messages that say nothing the cause does not say better. */
const GENERIC = /^(Activity task failed|Child Workflow execution failed|Workflow execution failed|Workflow execution timed out)$/;

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

/** The messages of an error and its causes, outermost first, repeats and empty wrappers dropped. */
export function causeChain(err: unknown): string[] {
  // Loaded here, not with the CLI: only a command that failed needs them.
  const { ApplicationFailure } = temporalClient();
  const { TemporalUnreachableError } = temporalConnection();
  const out: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 10; depth++) {
    if (!(e instanceof Error)) {
      out.push(firstLine(String(e)));
      break;
    }
    let msg = firstLine(e.message);
    if (e instanceof ApplicationFailure && e.type && !msg.includes(e.type)) msg = `${msg} [${e.type}]`;
    // ServiceError etc. put the server's answer in `cause`; gRPC errors read "3 INVALID_ARGUMENT: text".
    msg = msg.replace(/^\d+ [A-Z_]+: /, '');
    if (msg && !GENERIC.test(msg) && !out.some((m) => m.includes(msg))) out.push(msg);
    // Already explained in words; the SDK's transport dump below it helps nobody.
    if (e instanceof TemporalUnreachableError) break;
    e = e.cause;
  }
  return out;
}

/** Ends a command with this message and exit status (verify: 1 = rows differ, 2 = could not run). */
export class CommandFailed extends Error {
  constructor(message: string, readonly exitStatus: number) {
    super(message);
    this.name = 'CommandFailed';
  }
}

/** One or two readable lines for any error a command ends with; never a stack trace. */
export function formatError(err: unknown): string {
  if (err instanceof CommandFailed) return err.message;
  if (err instanceof ConfigError || err instanceof JobParamError) return err.message;
  const { TemporalFailure, WorkflowFailedError } = temporalClient();
  const chain = causeChain(err);
  if (err instanceof WorkflowFailedError) {
    const inner = chain.slice(1);
    return `workflow failed: ${inner.length ? inner.join(': ') : chain[0] ?? 'unknown cause'}`;
  }
  const text = chain.join(': ') || 'unknown error';
  return err instanceof TemporalFailure ? `failed: ${text}` : text;
}

export function formatDuration(seconds: number): string {
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return m < 90 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The final line of `sync start --wait`: progress plus the workflow's own duration (server start to close). */
export function formatSyncResult(p: SyncProgress, durationSeconds: number | undefined): string {
  return `${formatProgress(p)}${durationSeconds === undefined ? '' : `; the workflow took ${formatDuration(durationSeconds)}`}`;
}

/** `sync start --dry-run`: what the run would do, then the DDL it would run. */
export function formatDryRun(p: SyncProgress): string[] {
  const report = p.dryRun ?? { actions: [], statements: [] };
  const lines = [`dry run of ${p.pipeline} (${p.mode}): nothing was changed`, ...report.actions.map((a) => `  - ${a}`)];
  if (report.statements.length) lines.push('', ...report.statements.map((st) => `${st};`));
  return lines;
}

export function formatJobResult(job: string, result: JobProgress): string[] {
  const lines: string[] = [];
  if (result.plan?.explain) for (const e of result.plan.explain) lines.push('', `-- ${e.step}`, e.plan);
  lines.push('', `${job}: ${result.status}; ${result.steps.length} steps, ${result.rowsWritten} rows written`);
  for (const st of result.steps) lines.push(`  ${st.name} (${st.kind}): ${st.rowCount} rows${st.rows?.length ? ` — ${JSON.stringify(st.rows.slice(0, 3))}` : ''}`);
  const b = result.branch;
  if (b) {
    const fate = b.deleted ? 'deleted' : b.deleteError ? `NOT deleted (${b.deleteError})${b.expireTime ? `; it expires ${b.expireTime}` : ''}` : b.created ? `kept${b.expireTime ? ` until ${b.expireTime}` : ''}` : 'existing branch, kept';
    lines.push(`  branch ${b.name}${b.created ? ' (created for this run)' : ''}: ${fate}`);
  }
  return lines;
}

export function formatRunStatus(s: RunStatus): string[] {
  const lines = [`${s.workflowId}: ${s.status} (${s.type})`];
  if (s.tags.length) lines.push(`  ${s.tags.map(([k, v]) => `${k}=${v}`).join('  ')}`);
  if (s.sync) lines.push(`  ${formatProgress(s.sync)}`);
  if (s.job) lines.push(`  ${s.job.status}${s.job.currentStep ? `, running ${s.job.currentStep}` : ''}; ${s.job.steps.length} steps done, ${s.job.rowsWritten} rows written`);
  return lines;
}

export function formatRunList(runs: { startTime: Date; status: string; workflowId: string; rowsWritten?: number }[]): string[] {
  if (runs.length === 0) return ['(nothing matches)'];
  return runs.map((w) => `${w.startTime.toISOString()}  ${w.status.padEnd(10)} ${w.workflowId}${w.rowsWritten !== undefined ? `  rows=${w.rowsWritten}` : ''}`);
}

export function formatScheduleList(list: ScheduleSummary[]): string[] {
  return list.map((s) => `${s.scheduleId}\t${s.state.paused ? 'paused' : 'active'}\tnext ${s.info.nextActionTimes[0]?.toISOString() ?? '—'}`);
}

/** Warnings (e.g. a start without search attributes) as one `warning:` line on stderr instead of Node's two-line format. */
export function installWarningPrinter(): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => console.error(`warning: ${w.message}`));
}
