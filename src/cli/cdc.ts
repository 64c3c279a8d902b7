// `cdc start | status | stop`: the logical-replication stream of a pipeline's slot.
import type { Command } from 'commander';
import type { CdcProgress } from '../workflows/cdcStream';
import { print } from './output';
import { loadConfig, requireNamed, withClient, withConfigOption, type ConfigOption } from './shared';

const cdcClient = () => require('../client/cdc') as typeof import('../client/cdc');

const bytes = (n: number) => (n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GiB` : n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${n.toLocaleString('en')} B`);

export function formatCdcStatus(pipeline: string, slot: string, p: CdcProgress, warnBytes: number): string[] {
  const snap = p.snapshots[pipeline];
  const phase = snap ? `snapshot: ${snap.done}/${snap.partitions} partitions, ${snap.rowsCopied.toLocaleString('en')} rows copied` : (p.pipelines[pipeline] ?? 'not in this stream');
  const lines = [
    `pipeline ${pipeline}: ${phase}`,
    `slot ${slot} (publication ${p.publication || '-'})${p.slotExists ? (p.slotActive ? ', reading' : ', idle') : ', missing'}`,
    `applied LSN ${p.appliedLsn ?? '-'} · confirmed ${p.confirmedLsn ?? '-'} · current ${p.currentLsn ?? '-'}`,
    `lag ${bytes(p.lagBytes)}, ${p.lagSeconds.toFixed(1)} s · ${Math.round(p.rowsPerSecond).toLocaleString('en')} rows/s · ${p.rowsApplied.toLocaleString('en')} rows applied`,
    `retained WAL ${bytes(p.retainedWalBytes)}`,
  ];
  if (p.retainedWalBytes > warnBytes) lines.push(`warning: the slot retains ${bytes(p.retainedWalBytes)} of WAL on the source, over the limit of ${bytes(warnBytes)} (cdc.retainedWalWarnBytes)`);
  for (const w of p.warnings) if (!w.includes('retains')) lines.push(`warning: ${w}`);
  return lines;
}

export function registerCdc(program: Command): void {
  const cdc = program.command('cdc').description('continuous sync by logical replication (pipelines with mode: cdc)');
  const pipelineOption = (cmd: Command) => withConfigOption(cmd.requiredOption('-p, --pipeline <name>', 'cdc pipeline name from the configuration'));

  pipelineOption(cdc.command('start').description("start the stream of the pipeline's slot, or join it; returns at once")).action(async (opts: ConfigOption & { pipeline: string }) => {
    const config = loadConfig(opts);
    requireNamed(config.pipelines, opts.pipeline, '--pipeline', 'pipeline');
    await withClient(config, async (client) => {
      const { workflowId, slot } = await cdcClient().startCdc(client, { config, pipeline: opts.pipeline, taskQueue: config.temporal.taskQueue });
      print(`${opts.pipeline} joined ${workflowId} (slot ${slot})`);
    });
  });

  pipelineOption(cdc.command('status').description('phase, LSNs, lag, rows/s and the WAL the slot retains')).action(async (opts: ConfigOption & { pipeline: string }) => {
    const config = loadConfig(opts);
    const p = requireNamed(config.pipelines, opts.pipeline, '--pipeline', 'pipeline');
    await withClient(config, async (client) => {
      const { slot, progress } = await cdcClient().cdcProgress(client, config, opts.pipeline);
      if (!progress) {
        print(`no cdc stream is running for slot ${slot}; start it with: lakebase-worker cdc start --pipeline ${opts.pipeline}`);
        process.exitCode = 1;
        return;
      }
      for (const line of formatCdcStatus(opts.pipeline, slot, progress, p.cdc.retainedWalWarnBytes)) print(line);
    });
  });

  pipelineOption(cdc.command('stop').description('stop applying changes for the pipeline'))
    .option('--drop-slot', 'drop the replication slot when this is its last pipeline (the source stops keeping WAL for it)')
    .action(async (opts: ConfigOption & { pipeline: string; dropSlot?: boolean }) => {
      const config = loadConfig(opts);
      requireNamed(config.pipelines, opts.pipeline, '--pipeline', 'pipeline');
      await withClient(config, async (client) => {
        const { slot, ended } = await cdcClient().stopCdc(client, { config, pipeline: opts.pipeline, dropSlot: !!opts.dropSlot });
        if (!ended) print(`${opts.pipeline} left the stream of slot ${slot}; other pipelines keep it`);
        else print(`stream of slot ${slot} stopped${ended.slotExists ? (opts.dropSlot ? '' : '; the slot is kept (it retains WAL until the next start, or cdc stop --drop-slot)') : '; slot dropped'}`);
      });
    });
}
