import type { SyncProgress } from './workflows';

/** One line describing a sync's progress; with `width`, a bar for terminals. */
export function formatProgress(p: SyncProgress, width?: number): string {
  // Before the plan there is no total: "0% 0/0 rows" would read as an empty table.
  if (p.mode === 'planning' && !p.done) return `${p.pipeline}: planning (reading columns, cursor and row estimate)…${p.waitingForRelogin ? ' — waiting for re-login' : ''}`;
  // Once done, the planner's estimate (table statistics) gives way to what was actually copied.
  const total = p.done ? p.rowsCopied : Math.max(p.estimatedRows, p.rowsCopied);
  const fraction = p.done ? 1 : total > 0 ? Math.min(1, p.rowsCopied / total) : 0;
  const eta = p.etaSeconds === null || p.done ? '' : p.etaSeconds < 90 ? ` ETA ${Math.round(p.etaSeconds)}s` : ` ETA ${Math.round(p.etaSeconds / 60)}m`;
  const deletes = p.deletes ? `, ${p.deletes.rowsDeleted.toLocaleString('en')} deleted` : '';
  const verify = p.verify ? (p.verify.report ? `, verified (${p.verify.mode})` : `, verifying ${p.verify.bucketsDone}/${p.verify.buckets}`) : '';
  const stats =
    `${p.rowsCopied.toLocaleString('en')}/${total.toLocaleString('en')} rows, ${p.rowsWritten.toLocaleString('en')} written${deletes}, ` +
    `chunk ${p.chunks}, ${Math.round(p.rowsPerSecond).toLocaleString('en')} rows/s${eta}${verify}` +
    (p.targetShape?.created ? ', target created' : p.targetShape?.changes?.length ? `, ${p.targetShape.changes.length} schema change(s)` : '') +
    (p.waitingForRelogin ? ' — waiting for re-login' : p.done ? ' — done' : '');
  if (width === undefined) return `${p.pipeline}: ${(fraction * 100).toFixed(0)}% ${stats}`;
  const barWidth = Math.max(10, Math.min(40, width - stats.length - 10));
  const filled = Math.round(fraction * barWidth);
  return `[${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${stats}`;
}

/**
 * Follows a sync: a live bar redrawn in place on a TTY, a plain line every few seconds otherwise
 * (logs and CI stay readable). Returns a stop function.
 */
export function followProgress(poll: () => Promise<SyncProgress>, out: NodeJS.WriteStream = process.stdout): () => Promise<void> {
  const tty = out.isTTY === true;
  const every = tty ? 500 : 5_000;
  let last = '';
  let inFlight: Promise<void> = Promise.resolve();
  const tick = () =>
    (inFlight = poll()
      .then((p) => {
        const line = formatProgress(p, tty ? out.columns : undefined);
        if (tty) out.write(`\r${line.padEnd(last.length)}`);
        else if (line !== last) out.write(`${line}\n`);
        last = line;
      })
      .catch(() => undefined)); // not started yet, or between runs
  const timer = setInterval(tick, every);
  void tick();
  // Resolves once a poll still under way has ended: the caller may then close the connection
  // (seen: closing it under a query in flight crashed the CLI with "Channel has been shut down").
  return async () => {
    clearInterval(timer);
    await inFlight;
    if (tty && last) out.write('\n');
  };
}
