// Numbers as people read them: counts with their noun in the right number, durations in units.
// Import-free: the CLI, the worker's logs and workflow code (current details) all use it.

/** `1 row`, `2 rows`, `10,000 rows`; `plural` for nouns that do not just take an s. */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n.toLocaleString('en')} ${n === 1 ? singular : plural}`;
}

/** A duration in the two largest units that matter: `850 ms`, `12.0 s`, `4 min 10 s`, `1 h`, `2 h 30 min`, `7 days`. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    const s = Math.round(seconds % 60);
    return s ? `${minutes} min ${s} s` : `${minutes} min`;
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 48) {
    const m = minutes % 60;
    return m ? `${hours} h ${m} min` : `${hours} h`;
  }
  const days = Math.floor(hours / 24);
  const h = hours % 24;
  return h ? `${count(days, 'day')} ${h} h` : count(days, 'day');
}

/** A rate: `1,234 rows/s`. */
export const rate = (perSecond: number, unit = 'rows'): string => `${Math.round(perSecond).toLocaleString('en')} ${unit}/s`;
