// `cdc start | status | stop | resync`: the logical-replication stream of a pipeline's slot, for one
// pipeline (--pipeline) or a sync group's cdc pipelines (--group).
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { Config } from '../config/schema';
import type { ConnectionReport } from '../db/diagnose';
import type { CdcStatus } from '../sync/cdc/types';
import type { CdcProgress } from '../workflows/cdcStream';
import type { ActivityFailureView } from '../client/runHealth';
import { count, duration } from '../humanize';
import { print, printNotice } from './output';
import { configPath, loadConfig, positive, requireNamed, withClient, withConfigOption, type ConfigOption } from './shared';

const cdcClient = () => require('../client/cdc') as typeof import('../client/cdc');
const health = () => require('../client/runHealth') as typeof import('../client/runHealth');
const direct = () => require('./cdcDirect') as typeof import('./cdcDirect');
/** The park type `cdc resync` writes: the pipeline's next join copies its table anew (sync/cdc join). */
const CDC_RESYNC = 'LakebaseCdcResync';

const bytes = (n: number) => (n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GiB` : n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${n.toLocaleString('en')} B`);

interface StatusView {
  pipeline: string;
  slot: string;
  /** The running stream's figures, or null when no stream of the slot runs. */
  progress: CdcProgress | null;
  /** What the target's state and the source's slot say now (null: the CLI could not reach them; why in liveError). */
  live: CdcStatus | null;
  liveError?: string;
  lastFailure?: ActivityFailureView | null;
  /** A stream runs but no worker polls its task queue (so it cannot answer, nor apply anything). */
  noWorker?: string;
}

/** The phase: the running stream's word for the pipeline, else what its state row says. */
function phaseOf(v: StatusView): string {
  const snap = v.progress?.snapshots[v.pipeline];
  if (snap) return `snapshot: ${snap.done}/${snap.partitions} partitions, ${snap.rowsCopied.toLocaleString('en')} rows copied${snap.child ? ` (workflow ${snap.child})` : ''}`;
  const inStream = v.progress?.pipelines[v.pipeline];
  if (inStream) return inStream;
  if (v.noWorker) return 'a stream of its slot is running, but no worker runs it';
  if (v.live && v.live.phase !== 'not-started')
    return v.live.slotExists
      ? `stopped (no stream running; its checkpoint is kept at ${v.live.appliedLsn ?? v.live.startLsn}: cdc start resumes from it)`
      : 'stopped, and its slot is gone: cdc start copies the table anew';
  return 'not started';
}

export function formatCdcStatus(v: StatusView, warnBytes: number): string[] {
  const s = v.live;
  const p = v.progress;
  const lines = [`pipeline ${v.pipeline}: ${phaseOf(v)}`];
  if (s) {
    const reading = s.slotExists ? (s.slotActive ? 'being read (active)' : 'not being read') : 'missing';
    const health = s.walStatus ? `; wal_status ${s.walStatus}, safe_wal_size ${s.safeWalSize === null || s.safeWalSize === undefined ? 'unlimited' : bytes(s.safeWalSize)}` : '';
    lines.push(`slot ${v.slot} (publication ${s.publication}): ${reading}${health}`);
    lines.push(`applied LSN ${s.appliedLsn ?? '-'} · confirmed ${s.confirmedLsn ?? '-'} · current ${s.currentLsn ?? '-'}`);
    lines.push(`lag ${s.lagBytes.toLocaleString('en')} bytes, ${s.lagSeconds.toFixed(1)} s · ${count(s.rowsApplied, 'row')} applied in ${count(s.batches, 'batch', 'batches')}${p ? ` · ${Math.round(p.rowsPerSecond).toLocaleString('en')} rows/s` : ''}`);
    lines.push(`retained WAL ${bytes(s.retainedWalBytes)}`);
    if (s.retainedWalBytes > warnBytes) lines.push(`warning: the slot retains ${bytes(s.retainedWalBytes)} of WAL on the source, over the limit of ${bytes(warnBytes)} (cdc.retainedWalWarnBytes)`);
    for (const w of s.warnings) if (!w.includes('retains')) lines.push(`warning: ${w}`);
  } else if (p) {
    // The databases could not be read from here: the stream's figures as of its last segment.
    lines.push(`slot ${v.slot} (publication ${p.publication || '-'}), as of the stream's last segment`);
    lines.push(`applied LSN ${p.appliedLsn ?? '-'} · confirmed ${p.confirmedLsn ?? '-'} · current ${p.currentLsn ?? '-'}`);
    lines.push(`lag ${p.lagBytes.toLocaleString('en')} bytes, ${p.lagSeconds.toFixed(1)} s · ${Math.round(p.rowsPerSecond).toLocaleString('en')} rows/s · ${count(p.rowsApplied, 'row')} applied`);
  }
  if (v.liveError) lines.push(`note: could not read the slot and state from here (${v.liveError})`);
  if (v.noWorker) lines.push(v.noWorker);
  if (v.lastFailure) lines.push(`last failure: ${health().formatActivityFailure(v.lastFailure)}`);
  return lines;
}

const reportLines = (r: ConnectionReport, all: boolean) =>
  r.steps.filter((s) => all || (!s.ok && !s.skipped)).flatMap((s) => [`  ${s.skipped ? '·' : s.ok ? '✓' : '✗'} ${s.step}: ${s.detail}`, ...(s.fix ? [`      fix: ${s.fix}`] : [])]);

/** No worker on the task queue means no answer: say so instead of waiting for ever. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]).finally(() => clearTimeout(timer));
}

type Target = ConfigOption & { pipeline?: string; group?: string };

/** --pipeline P or --group G (its cdc pipelines), exactly one. */
function pipelinesOf(config: Config, opts: Target): string[] {
  if (!!opts.pipeline === !!opts.group) throw new Error('give --pipeline <name> or --group <name> (one of them)');
  if (opts.group) {
    requireNamed(config.syncGroups, opts.group, '--group', 'sync group');
    return cdcClient().cdcGroupPipelines(config, opts.group);
  }
  const p = requireNamed(config.pipelines, opts.pipeline!, '--pipeline', 'pipeline');
  if (p.mode !== 'cdc') throw new Error(`--pipeline ${opts.pipeline}: mode is ${p.mode}; cdc commands need mode: cdc`);
  return [opts.pipeline!];
}

/** The checks on a worker, then the start (pipelines of one slot together), then each join's answer; false when any did not join. */
async function startPipelines(client: Client, config: Config, pipelines: string[], opts: { dryRun?: boolean; timeoutMs: number; configFile: string }): Promise<boolean> {
  const c = cdcClient();
  const taskQueue = config.temporal.taskQueue;
  const noWorker = `no worker on task queue ${taskQueue} answered within ${duration(opts.timeoutMs)}: ${health().noWorkerMessage(taskQueue, opts.configFile)}`;
  const ready: string[] = [];
  for (const pipeline of pipelines) {
    const report = await within(c.checkCdc(client, { config, pipeline, taskQueue }), opts.timeoutMs, noWorker);
    if (!report.ok) {
      print(`${pipeline}: not started, the source is not ready for cdc (nothing was changed):`);
      reportLines(report, false).forEach((l) => print(l));
    } else if (opts.dryRun) {
      print(`${pipeline}: every check passed; cdc start would:`);
      reportLines(report, true).filter((l) => /cdc /.test(l)).forEach((l) => print(l));
      ready.push(pipeline);
    } else ready.push(pipeline);
  }
  let ok = ready.length === pipelines.length;
  if (opts.dryRun || !ready.length) return ok;
  for (const { pipeline, workflowId, slot } of await c.startCdcPipelines(client, { config, pipelines: ready, taskQueue })) {
    const answer = await c.awaitJoin(client, { workflowId, pipeline, timeoutMs: opts.timeoutMs });
    if (!answer.joined) {
      print(`${pipeline}: did not join ${workflowId}: ${answer.message}`);
      ok = false;
    } else {
      print(`${pipeline} joined ${workflowId} (slot ${slot}): ${answer.phase === 'snapshot' ? 'copying the table, then streaming' : 'streaming'}`);
      const ui = health().temporalUiUrl(config.temporal.address, config.temporal.namespace, workflowId);
      if (ui) print(`  Temporal UI: ${ui}`);
    }
  }
  return ok;
}

export function registerCdc(program: Command): void {
  const cdc = program.command('cdc').description('continuous sync by logical replication (pipelines with mode: cdc)');
  const targetOptions = (cmd: Command) =>
    withConfigOption(cmd.option('-p, --pipeline <name>', 'cdc pipeline name from the configuration').option('-g, --group <name>', "a sync group's cdc pipelines"));

  targetOptions(cdc.command('start').description("check the source, then start the stream of the pipeline's slot (or join it) and wait for the join's answer"))
    .option('--dry-run', 'run the checks on a worker (wal_level, REPLICATION right, replica identity against key, publication, free slots) and change nothing')
    .option('--timeout <seconds>', 'how long to wait for the checks and the join', positive, 120)
    .action(async (opts: Target & { dryRun?: boolean; timeout: number }) => {
      const config = loadConfig(opts);
      const names = pipelinesOf(config, opts);
      await withClient(config, async (client) => {
        // The checks and the joins run on a worker: say within seconds when none polls the queue.
        const watch = { taskQueue: config.temporal.taskQueue, configFile: configPath(opts), say: printNotice };
        const ok = await health().waitWatched(client, watch, () => startPipelines(client, config, names, { dryRun: opts.dryRun, timeoutMs: opts.timeout * 1000, configFile: configPath(opts) }));
        if (!ok) process.exitCode = 1;
      });
    });

  targetOptions(cdc.command('status').description('phase, whether the slot is being read, applied/confirmed/current LSNs, lag, wal_status, the last failure'))
    .action(async (opts: Target) => {
      const config = loadConfig(opts);
      const names = pipelinesOf(config, opts);
      const c = cdcClient();
      const d = direct().directCdc(config);
      try {
        await withClient(config, async (client) => {
          for (const pipeline of names) {
            const { slot, progress, noWorker } = await c.cdcProgress(client, config, pipeline, configPath(opts));
            const view: StatusView = { pipeline, slot, progress, live: null, ...(noWorker && { noWorker }) };
            await d.status(pipeline).then((s) => void (view.live = s), (err: unknown) => void (view.liveError = (err as Error).message));
            if (progress || noWorker) view.lastFailure = await health().lastActivityFailure(client.workflow.getHandle(c.cdcWorkflowId(slot))).catch(() => null);
            for (const line of formatCdcStatus(view, config.pipelines[pipeline]!.cdc.retainedWalWarnBytes)) print(line);
            if (!progress?.pipelines[pipeline]) process.exitCode = 1;
          }
        });
      } finally {
        await d.close();
      }
    });

  targetOptions(
    cdc
      .command('resync')
      .description("copy the pipeline's table anew into its target, then stream on, with no new slot: the slot's other pipelines keep streaming; target rows the source does not have are deleted"),
  )
    .option('--timeout <seconds>', 'how long to wait for the stop, the checks and the join', positive, 120)
    .action(async (opts: Target & { timeout: number }) => {
      const config = loadConfig(opts);
      const names = pipelinesOf(config, opts);
      const d = direct().directCdc(config);
      try {
        await withClient(config, async (client) => {
          const watch = { taskQueue: config.temporal.taskQueue, configFile: configPath(opts), say: printNotice };
          const ready: string[] = [];
          for (const pipeline of names) {
            if ((await d.status(pipeline)).phase === 'not-started') {
              print(`${pipeline}: not started, so there is nothing to copy anew; cdc start --pipeline ${pipeline} copies it`);
              process.exitCode = 1;
              continue;
            }
            const { progress } = await cdcClient().cdcProgress(client, config, pipeline, configPath(opts));
            if (progress?.snapshots[pipeline]) {
              print(`${pipeline}: still copying its table; resync it once the copy has ended (cdc status --pipeline ${pipeline})`);
              process.exitCode = 1;
              continue;
            }
            // The same steps as stop, then start: the stream stops applying this pipeline before it is
            // marked, and the mark makes the join copy anew instead of resuming from the checkpoint.
            await health().waitWatched(client, watch, () => cdcClient().stopCdc(client, { config, pipeline, dropSlot: false }));
            await d.park(pipeline, CDC_RESYNC, `cdc resync at ${new Date().toISOString()}: the next start copies the table anew`);
            ready.push(pipeline);
          }
          if (!ready.length) return;
          const ok = await health().waitWatched(client, watch, () => startPipelines(client, config, ready, { timeoutMs: opts.timeout * 1000, configFile: configPath(opts) }));
          if (!ok) {
            process.exitCode = 1;
            print(`a pipeline that did not join is not streaming: once the cause is fixed, cdc start --pipeline <name> copies it anew`);
          }
        });
      } finally {
        await d.close();
      }
    });

  targetOptions(cdc.command('stop').description('stop applying changes for the pipeline; its checkpoint is kept unless --drop-slot'))
    .option('--drop-slot', 'drop the replication slot when this is its last pipeline (the source stops keeping WAL for it)')
    .action(async (opts: Target & { dropSlot?: boolean }) => {
      const config = loadConfig(opts);
      const names = pipelinesOf(config, opts);
      const dropSlot = !!opts.dropSlot;
      const d = direct().directCdc(config);
      try {
        await withClient(config, async (client) => {
          const watch = { taskQueue: config.temporal.taskQueue, configFile: configPath(opts), say: printNotice };
          for (const pipeline of names) {
            // The stop is a signal the stream processes on a worker: say at once when none runs it.
            const r = await health().waitWatched(client, watch, () => cdcClient().stopCdc(client, { config, pipeline, dropSlot }));
            if (r.notStreaming) {
              // No running stream holds the pipeline (it failed, or was never started): leave the slot from here.
              const left = await d.leave(pipeline, dropSlot);
              if (left.slotDropped) print(`${pipeline}: no stream was running; slot ${r.slot} dropped`);
              else if (left.stillUsedBy.length) print(`${pipeline}: no stream was running for it; slot ${r.slot} kept for ${left.stillUsedBy.join(', ')}`);
              else print(`${pipeline}: no stream was running${dropSlot ? `; slot ${r.slot} did not exist` : `; slot ${r.slot} and the pipeline's checkpoint are kept`}`);
              continue;
            }
            if (!r.ended) {
              print(`${pipeline} left the stream of slot ${r.slot}; ${r.others.join(', ')} keep${r.others.length === 1 ? 's' : ''} it${dropSlot ? '' : `; ${pipeline} copies its table anew at the next start (the slot moves on for the others)`}`);
              continue;
            }
            if (!r.ended.slotExists && dropSlot) print(`stream of slot ${r.slot} stopped; slot dropped`);
            else print(`stream of slot ${r.slot} stopped; the slot and ${pipeline}'s checkpoint are kept (the slot retains WAL until cdc start resumes, or cdc stop --drop-slot)`);
          }
        });
      } finally {
        await d.close();
      }
    });
}
