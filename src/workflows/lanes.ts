/** What a lane's work can ask: whether the run stopped (a failure, or the caller's own `stop`), so it starts nothing new. */
export interface Lane {
  stopped(): boolean;
}

export interface LaneOptions<T> {
  /** Start no new item (the ones in flight finish), e.g. when continue-as-new is due. */
  stop?: () => boolean;
  /** Called as an item starts and as it ends (either way). */
  onStart?: (item: T) => void;
  onEnd?: (item: T) => void;
}

/**
 * The one lane runner of the workflows (sync partitions, delete buckets, verify buckets): runs
 * `work` over `items`, `lanes` at a time, in a deterministic order; after a failure no new item
 * starts, the ones in flight finish, and the first failure is thrown.
 */
export async function inLanes<T>(items: T[], lanes: number, work: (item: T, lane: Lane) => Promise<void>, opts: LaneOptions<T> = {}): Promise<void> {
  const queue = [...items];
  let failure: unknown;
  const lane: Lane = { stopped: () => failure !== undefined || (opts.stop?.() ?? false) };
  await Promise.all(
    Array.from({ length: Math.min(Math.max(1, lanes), queue.length) }, async () => {
      for (let item = queue.shift(); item !== undefined && !lane.stopped(); item = queue.shift()) {
        opts.onStart?.(item);
        try {
          await work(item, lane);
        } catch (err) {
          failure ??= err;
        } finally {
          opts.onEnd?.(item);
        }
      }
    }),
  );
  if (failure !== undefined) throw failure;
}
