import type { SyncProgress } from './workflows';
import { count, rate } from './humanize';

/** One line describing a sync's progress; with `width`, a bar for terminals. */
export function formatProgress(p: SyncProgress, width?: number): string {
  // Before the plan there is no total: "0% 0/0 rows" would read as an empty table.
  if (p.mode === 'planning' && !p.done) return `${p.pipeline}: planning (reading columns, cursor and row estimate)…${p.waitingForRelogin ? ' — waiting for re-login' : ''}`;
  // The figures (docs/sync.md, "Figures"): read = source rows copied out; written = target rows
  // inserted, changed or deleted (deleted also on its own); compared = rows a compare covered.
  const r = p.resync?.method === 'compare' ? p.resync : undefined;
  // Once done, the planner's estimate (table statistics) gives way to what was actually copied.
  const total = p.done ? p.rowsCopied : Math.max(p.estimatedRows, p.rowsCopied);
  const fraction = p.done ? 1 : r ? r.done / Math.max(1, r.buckets) : total > 0 ? Math.min(1, p.rowsCopied / total) : 0;
  const eta = p.etaSeconds === null || p.done ? '' : p.etaSeconds < 90 ? ` ETA ${Math.round(p.etaSeconds)}s` : ` ETA ${Math.round(p.etaSeconds / 60)}m`;
  const deleted = r ? r.rowsDeleted : p.deletes?.rowsDeleted;
  const deletes = deleted !== undefined ? `, ${deleted.toLocaleString('en')} deleted` : '';
  const verify = p.verify ? (p.verify.report ? `, verified (${p.verify.mode})` : `, verifying ${p.verify.bucketsDone}/${p.verify.buckets}`) : '';
  // A compare-then-copy re-sync reads only the rows that differ: its measure is the buckets compared, not rows of a total.
  const head = r
    ? `compared ${r.done}/${count(r.buckets, 'bucket')} (~${count(p.estimatedRows, 'row')}), ${count(p.rowsCopied, 'row')} read, ${p.rowsWritten.toLocaleString('en')} written${deletes}`
    : `${p.rowsCopied.toLocaleString('en')}/${count(total, 'row')}, ${p.rowsWritten.toLocaleString('en')} written${deletes}, ${count(p.chunks, 'chunk')}`;
  const stats =
    `${head}, ${rate(p.rowsPerSecond)}${eta}${verify}` +
    (p.targetShape?.created ? ', target created' : p.targetShape?.changes?.length ? `, ${count(p.targetShape.changes.length, 'schema change')}` : '') +
    (p.waitingForRelogin ? ' — waiting for re-login' : p.done ? ' — done' : '');
  if (width === undefined) return `${p.pipeline}: ${(fraction * 100).toFixed(0)}% ${stats}`;
  const barWidth = Math.max(10, Math.min(40, width - stats.length - 10));
  const filled = Math.round(fraction * barWidth);
  return `[${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${stats}`;
}

/**
 * Calls `poll` every `everyMs`, one call at a time, handing each answer to `onValue` (failures are
 * skipped: not started yet, between runs). Each call gets a signal that stop aborts. Returns a stop
 * function that resolves once no call is in flight, so the caller may close the Temporal
 * connection after it: a query still running (or retrying: its worker just died) when the
 * connection closes would fail later and crash a command whose result is already known.
 */
export function pollUntilStopped<T>(poll: (signal: AbortSignal) => Promise<T>, onValue: (value: T) => void, everyMs: number): () => Promise<void> {
  let stopped = false;
  // One controller per call: the SDK adds a listener to the signal per call.
  let current: AbortController | undefined;
  let inFlight: Promise<void> | undefined;
  const tick = () => {
    if (inFlight || stopped) return;
    current = new AbortController();
    inFlight = poll(current.signal)
      .then((v) => {
        if (!stopped) onValue(v);
      })
      .catch(() => undefined)
      .finally(() => (inFlight = undefined));
  };
  const timer = setInterval(tick, everyMs);
  tick();
  return async () => {
    stopped = true;
    clearInterval(timer);
    current?.abort();
    await inFlight;
  };
}

/**
 * Follows a sync: a live bar redrawn in place on a TTY, a plain line every few seconds otherwise
 * (logs and CI stay readable). Returns a stop function that settles the query in flight
 * (pollUntilStopped).
 */
export function followProgress(poll: (signal: AbortSignal) => Promise<SyncProgress>, out: NodeJS.WriteStream = process.stdout, intervalMs?: number): () => Promise<void> {
  const tty = out.isTTY === true;
  let last = '';
  const stop = pollUntilStopped(
    poll,
    (p) => {
      const line = formatProgress(p, tty ? out.columns : undefined);
      if (tty) out.write(`\r${line.padEnd(last.length)}`);
      else if (line !== last) out.write(`${line}\n`);
      last = line;
    },
    intervalMs ?? (tty ? 500 : 5_000),
  );
  return async () => {
    await stop();
    if (tty && last) out.write('\n');
  };
}
