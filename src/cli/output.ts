// Everything the CLI prints about results and errors, in one place.
import type { ScheduleSummary } from '@temporalio/client';
import { ConfigError } from '../config/load';
import { JobParamError } from '../config/jobParams';
import type { RunStatus } from '../client/runs';
import { formatProgress } from '../progress';
import { count, duration } from '../humanize';
import { temporalClient, temporalConnection } from './lazy';
import type { JobProgress, SyncProgress } from '../workflows';

export const print = (line = ''): void => console.log(line);

/** What a waiting command notices beside its result (no worker, an activity retrying): stderr, so stdout stays the result. */
export const printNotice = (line: string): void => console.error(line);

/** `started <id>`, then the run's page in the Temporal UI when its address is known. */
export function printStarted(workflowId: string, uiUrl: string | undefined): void {
  print(`started ${workflowId}`);
  if (uiUrl) print(`  Temporal UI: ${uiUrl}`);
}

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

/** The final line of `sync start --wait`: progress plus the workflow's own duration (server start to close). */
export function formatSyncResult(p: SyncProgress, durationSeconds: number | undefined): string {
  return `${formatProgress(p)}${durationSeconds === undefined ? '' : `; the workflow took ${duration(durationSeconds * 1000)}`}`;
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
  // A dry run runs no step: say what it planned, not "0 steps".
  const planned = result.plan?.units.reduce((n, u) => n + u.steps.length, 0) ?? 0;
  if (result.status === 'dry run') lines.push('', `${job}: dry run; ${count(planned, 'step')} planned, nothing written`);
  else lines.push('', `${job}: ${result.status}; ${count(result.steps.length, 'step')}, ${count(result.rowsWritten, 'row')} written`);
  for (const st of result.steps) lines.push(`  ${st.name} (${st.kind}): ${count(st.rowCount, 'row')}${st.rows?.length ? ` — ${JSON.stringify(st.rows.slice(0, 3))}` : ''}`);
  const b = result.branch;
  if (b) {
    const fate = b.deleted ? 'deleted' : b.deleteError ? `NOT deleted (${b.deleteError})${b.expireTime ? `; it expires ${b.expireTime}` : ''}` : b.created ? `kept${b.expireTime ? ` until ${b.expireTime}` : ''}` : 'existing branch, kept';
    lines.push(`  branch ${b.name}${b.created ? ' (created for this run)' : ''}: ${fate}`);
  }
  return lines;
}

export function formatRunStatus(s: RunStatus, uiUrl?: string): string[] {
  const lines = [`${s.workflowId}: ${s.status} (${s.type})`];
  if (s.tags.length) lines.push(`  ${s.tags.map(([k, v]) => `${k}=${v}`).join('  ')}`);
  if (s.config) lines.push(`  started with config ${s.config}`);
  if (s.sync) lines.push(`  ${formatProgress(s.sync)}`);
  if (s.job) lines.push(`  ${s.job.status}${s.job.currentStep ? `, running ${s.job.currentStep}` : ''}; ${count(s.job.steps.length, 'step')} done, ${count(s.job.rowsWritten, 'row')} written`);
  if (s.noWorker) lines.push(`  ${s.noWorker}`);
  if (s.drift) lines.push(`  ${s.drift}`);
  if (s.lastFailure) lines.push(`  last failure: ${s.lastFailure}`);
  if (s.failure) lines.push(`  failure: ${s.failure}`);
  if (uiUrl) lines.push(`  Temporal UI: ${uiUrl}`);
  return lines;
}

export function formatRunList(runs: { startTime: Date; status: string; workflowId: string; rowsWritten?: number }[]): string[] {
  if (runs.length === 0) return ['(nothing matches)'];
  return runs.map((w) => `${w.startTime.toISOString()}  ${w.status.padEnd(10)} ${w.workflowId}${w.rowsWritten !== undefined ? `  written=${w.rowsWritten}` : ''}`);
}

export function formatScheduleList(list: ScheduleSummary[]): string[] {
  return list.map((s) => `${s.scheduleId}\t${s.state.paused ? 'paused' : 'active'}\tnext ${s.info.nextActionTimes[0]?.toISOString() ?? '—'}`);
}

/** Warnings (e.g. a start without search attributes) as one `warning:` line on stderr instead of Node's two-line format. */
export function installWarningPrinter(): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => console.error(`warning: ${w.message}`));
}
