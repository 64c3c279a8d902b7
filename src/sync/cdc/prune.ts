// A copy into a target that already has rows (a pipeline whose checkpoint could not be kept: its
// slot moved on for other pipelines, or was dropped) merges the source's rows but cannot see the
// ones deleted meanwhile. Before the pipeline turns to streaming, the target rows whose key is not
// in the source go. Safe then: the stream applies nothing to this pipeline while it copies, and the
// replay from its start LSN brings back any row written after the keys were read.
import type pg from 'pg';
import type { PipelineConfig } from '../../config/schema';
import { relayCopy } from '../../db/copyFrames';
import { copySourceKeysInSql, copySourceKeysOutSql, deleteKeysNotInSourceSql, SOURCE_KEYS, sourceKeysTableSql } from '../../db/cdcPrune';
import { withTransaction } from '../../db/transaction';

/** Deletes the target rows whose key the source no longer has; returns how many. */
export async function pruneVanishedRows(s: pg.ClientBase, t: pg.ClientBase, p: PipelineConfig): Promise<number> {
  const target = p.target.table!;
  const sourceName = (k: string) => Object.entries(p.transform.rename).find(([, to]) => to === k)?.[0] ?? k;
  return withTransaction(t, async () => {
    await t.query(sourceKeysTableSql(target, p.key));
    await relayCopy(s, t, copySourceKeysOutSql(p.source.table!, p.key.map(sourceName)), copySourceKeysInSql(p.key));
    await t.query(`ANALYZE ${SOURCE_KEYS}`);
    return (await t.query(deleteKeysNotInSourceSql(target, p.key))).rowCount ?? 0;
  });
}
