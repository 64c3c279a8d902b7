// `schedule create | list | describe | pause | unpause | trigger | delete | backfill`
import type { ScheduleOverlapPolicy } from '@temporalio/client';
import type { Command } from 'commander';
import type { ScheduleAction } from '../client/schedules';
import { schedulesClient, temporalClient } from './lazy';
import { ConfigError } from '../config/load';
import { formatScheduleList, print } from './output';
import { configPath, loadConfig, requireNamed, withClient, withConfigOption, type ConfigOption } from './shared';

const OVERLAP_NAMES = { skip: 'SKIP', 'buffer-one': 'BUFFER_ONE', 'cancel-other': 'CANCEL_OTHER', 'allow-all': 'ALLOW_ALL' } as const;
const overlapPolicy = (name: string): ScheduleOverlapPolicy | undefined =>
  name in OVERLAP_NAMES ? temporalClient().ScheduleOverlapPolicy[OVERLAP_NAMES[name as keyof typeof OVERLAP_NAMES]] : undefined;

const ACTIONS: [ScheduleAction, string][] = [
  ['describe', 'show a schedule: spec, policies, next and recent runs'],
  ['pause', 'pause a schedule'],
  ['unpause', 'resume a paused schedule'],
  ['trigger', 'start a run now (overlap policy applies)'],
  ['delete', 'delete a schedule (running syncs continue)'],
];

export function registerSchedule(program: Command): void {
  const schedule = program.command('schedule').description('Temporal schedules that start syncs (overlap: skip by default)');

  withConfigOption(
    schedule
      .command('create')
      .description('create a schedule for a pipeline')
      .requiredOption('-p, --pipeline <name>', 'pipeline name')
      .option('--cron <expr>', 'cron expression, e.g. "*/15 * * * *"')
      .option('--every <interval>', 'fixed interval, e.g. "15 minutes"')
      .option('--overlap <policy>', 'skip | buffer-one | cancel-other | allow-all', 'skip')
      .option('--catchup-window <duration>', 'how far back missed runs are caught up', '1 hour')
      .option('--paused', 'create it paused'),
  ).action((opts: ConfigOption & { pipeline: string; cron?: string; every?: string; overlap: string; catchupWindow: string; paused?: boolean }) => {
    const config = loadConfig(opts);
    requireNamed(config.pipelines, opts.pipeline, '--pipeline', 'pipeline');
    const overlap = overlapPolicy(opts.overlap);
    if (!overlap) throw new ConfigError([`--overlap: expected one of ${Object.keys(OVERLAP_NAMES).join(', ')}, got "${opts.overlap}"`]);
    return withClient(config, async (client) => {
      const { createSyncSchedule, describeSchedule } = schedulesClient();
      const h = await createSyncSchedule(client, { ...opts, overlap, taskQueue: config.temporal.taskQueue, config, configFile: configPath(opts) });
      print(describeSchedule(await h.describe()));
    });
  });

  withConfigOption(schedule.command('list').description('list schedules')).action((opts: ConfigOption) =>
    withClient(loadConfig(opts), async (client) => formatScheduleList(await schedulesClient().listSchedules(client)).forEach((l) => print(l))),
  );

  for (const [action, description] of ACTIONS) {
    withConfigOption(schedule.command(action).description(description).argument('<scheduleId>', 'e.g. sync:orders-to-reporting')).action(
      (id: string, opts: ConfigOption) =>
        withClient(loadConfig(opts), async (client) => {
          const after = await schedulesClient().scheduleAction(client, id, action);
          print(after ? schedulesClient().describeSchedule(after) : `${id}: deleted`);
        }),
    );
  }

  withConfigOption(
    schedule
      .command('backfill')
      .description('run the schedule for a past time range (overlap policy applies)')
      .argument('<scheduleId>', 'e.g. sync:orders-to-reporting')
      .requiredOption('--from <time>', 'ISO time, e.g. 2026-11-01T00:00:00Z')
      .requiredOption('--to <time>', 'ISO time'),
  ).action((id: string, opts: ConfigOption & { from: string; to: string }) => {
    const [start, end] = [new Date(opts.from), new Date(opts.to)];
    if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end <= start)
      throw new ConfigError([`--from/--to: expected two ISO times with --from before --to, got "${opts.from}" and "${opts.to}"`]);
    return withClient(loadConfig(opts), async (client) => print(schedulesClient().describeSchedule(await schedulesClient().backfillSchedule(client, id, start, end))));
  });
}
