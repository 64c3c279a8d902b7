// Values the CDC engine hands to activities and, through them, to workflows. No runtime imports.

export type CdcPhase = 'snapshot' | 'streaming';

export interface StreamProgress {
  /** Commit LSN of the last transaction applied to every target. */
  appliedLsn: string | null;
  /** The LSN confirmed to the source (WAL before it may be recycled). */
  confirmedLsn: string | null;
  /** The newest position the server reported. */
  receivedLsn: string | null;
  /** Source commit time of the last applied transaction (ISO). */
  lastCommitTime: string | null;
  rowsApplied: number;
  changesReceived: number;
  batches: number;
  /** Rows written per second over the last few seconds. */
  rowsPerSecond: number;
  /** Age of the oldest source commit received and not yet applied; 0 when caught up. */
  lagSeconds?: number;
  /** The last batch applied: changes received, target rows written, and how long its transactions took. */
  lastBatch?: { changes: number; rows: number; applyMs: number };
}

export interface CdcJoin {
  pipeline: string;
  slot: string;
  publication: string;
  phase: CdcPhase;
  startLsn: string;
  createdSlot: boolean;
  createdPublication: boolean;
}

export interface CdcStatus {
  pipeline: string;
  slot: string;
  publication: string;
  /** not-started: the pipeline never joined its slot (or left it). */
  phase: CdcPhase | 'not-started';
  slotExists: boolean;
  slotActive: boolean;
  startLsn: string | null;
  /** Commit LSN of the last source transaction in the target. */
  appliedLsn: string | null;
  /** What the source was told is applied (the slot's confirmed_flush_lsn). */
  confirmedLsn: string | null;
  currentLsn: string | null;
  lagBytes: number;
  /**
   * Age of the oldest source commit the reader received and has not applied (0 when caught up), as
   * the reading worker sees it; with no reader, the age of the last applied commit while WAL is outstanding.
   */
  lagSeconds: number;
  retainedWalBytes: number;
  rowsApplied: number;
  batches: number;
  /** Retained WAL past the pipeline's limit, a missing slot. */
  warnings: string[];
  /** pg_replication_slots.wal_status: reserved, extended, unreserved (about to be invalidated), lost (invalidated). */
  walStatus?: 'reserved' | 'extended' | 'unreserved' | 'lost' | null;
  /** WAL that may still be written before max_slot_wal_keep_size invalidates the slot (null: no limit). */
  safeWalSize?: number | null;
  /** A change of this pipeline could not be applied: the reader goes on without it (the way out is in warnings). */
  parked?: { type: string; reason: string; at: string } | null;
  /** Stopped with its slot kept: nobody applies for it until cdc start. */
  stopped?: boolean;
}
