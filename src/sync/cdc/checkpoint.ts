// The one rule for which LSN a slot's reader may confirm to the source (WAL before it may be
// recycled, and a restarted reader starts there). Pure: the reader re-reads every pipeline's state
// row just before each confirm and asks this module; nothing else decides it.
import { compareLsn, minLsn } from './lsn';

/** A pipeline's state row as the checkpoint needs it (re-read from its target before each confirm). */
export interface CheckpointMember {
  pipeline: string;
  phase: 'snapshot' | 'streaming';
  startLsn: string;
  appliedLsn: string | null;
  /** Parked (a change could not be applied) or stopped with its slot kept: nobody applies for it, so nothing waits for it. */
  parked: boolean;
  stopped: boolean;
}

export interface CheckpointInput {
  /** The position the reader would like to confirm: the end of the last commit it applied, or an idle keepalive's position. */
  wanted: string;
  /** Every state row naming this slot, as just re-read. */
  members: CheckpointMember[];
  /** What this reader committed to each pipeline it applies for (commit LSN of its last transaction in that target). */
  applying: Map<string, string | null>;
}

export type CheckpointDecision =
  /** Confirm up to lsn (null: nothing may be confirmed yet). */
  | { kind: 'confirm'; lsn: string | null; holdBack: string[] }
  /** A pipeline streams that this reader does not apply for (it joined and copied meanwhile): read the slot again with it. */
  | { kind: 'restart'; pipeline: string }
  /** Another reader committed past this one for a pipeline: this reader is stale and must stop. */
  | { kind: 'fenced'; pipeline: string; ours: string | null; theirs: string };

/**
 * The confirmable LSN is the lowest of what every target has committed and the start of every
 * pipeline still copying (its copy replays every change from its start). A pipeline streaming
 * without this reader, or committed past it, ends the decision before anything is confirmed.
 */
export function confirmable({ wanted, members, applying }: CheckpointInput): CheckpointDecision {
  let lsn: string | null = wanted;
  const holdBack: string[] = [];
  const cap = (pipeline: string, at: string | null) => {
    holdBack.push(pipeline);
    lsn = lsn === null || at === null ? null : minLsn(lsn, at);
  };
  for (const m of members) {
    if (m.parked || m.stopped) continue;
    if (m.phase === 'snapshot') {
      cap(m.pipeline, m.startLsn);
      continue;
    }
    if (!applying.has(m.pipeline)) return { kind: 'restart', pipeline: m.pipeline };
    const ours = applying.get(m.pipeline) ?? null;
    if (m.appliedLsn && (!ours || compareLsn(m.appliedLsn, ours) > 0)) return { kind: 'fenced', pipeline: m.pipeline, ours, theirs: m.appliedLsn };
    // Everything this reader received was committed to this target by the time it asks (its flush
    // writes every streaming target, changes or not), so the target does not lower `wanted`.
  }
  return { kind: 'confirm', lsn, holdBack };
}
