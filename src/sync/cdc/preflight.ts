// What `cdc start`, `test-connection --pipeline` and the join check on the source before anything
// is touched. A table added to a publication without a replica identity makes the SOURCE refuse
// every UPDATE and DELETE on it, so these checks come before any ALTER PUBLICATION.
import type pg from 'pg';
import type { Config, PipelineConfig } from '../../config/schema';
import { publicationInfo, replicaIdentities, replicationRights, slotHealth, type ReplicaIdentity } from '../../db/cdcChecks';
import { publicationTables, qualifiedSourceTable } from '../../db/cdcSql';
import { quoteIdent } from '../../db/identifiers';
import type { CheckStep, ConnectionReport } from '../../db/diagnose';
import { NON_RETRYABLE_FAILURES } from '../../failureTypes';
import { withConnection, type Connector } from '../context';
import { SyncError } from '../errors';
import { cdcPipeline, slotNames } from './names';

export interface CdcPreflightInput {
  pipeline: string;
  config: PipelineConfig;
  slot: string;
  publication: string;
}

const sameSet = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));
const list = (cols: string[]) => cols.map((c) => quoteIdent(c)).join(', ');

/** Why a table's replica identity cannot serve the pipeline's key, with the statement that fixes it; null when it can. */
export function identityProblem(r: ReplicaIdentity, key: string[], rename: Record<string, string>, path: string): { detail: string; fix: string } | null {
  if (r.mode === 'full') return null;
  const target = (cols: string[]) => cols.map((c) => rename[c] ?? c);
  const usable = r.candidateIndexes.find((x) => sameSet(target(x.columns), key));
  const full = `ALTER TABLE ${r.table} REPLICA IDENTITY FULL`;
  if (!r.columns || r.columns.length === 0) {
    const why = r.mode === 'nothing' ? 'has REPLICA IDENTITY NOTHING' : 'has no primary key';
    const fixes = [
      usable ? `ALTER TABLE ${r.table} REPLICA IDENTITY USING INDEX ${usable.name}` : `ALTER TABLE ${r.table} ADD PRIMARY KEY (${list(key)})`,
      full,
    ];
    return {
      detail: `${r.table} ${why}: once it is in a publication the source refuses every UPDATE and DELETE on it ("does not have a replica identity and publishes updates"), and deletes could not be matched`,
      fix: `run ${fixes.join(', or ')}; then cdc start again`,
    };
  }
  const ident = target(r.columns);
  if (sameSet(ident, key)) return null;
  const what = r.mode === 'default' ? 'primary key' : 'replica identity index';
  return {
    detail: `${path}.key is [${key.join(', ')}] but the ${what} of ${r.table} is (${ident.join(', ')}): deletes and key changes carry only the ${what}'s columns, so the key would be NULL in them`,
    fix: usable && r.mode === 'default'
      ? `set ${path}.key to [${ident.join(', ')}], or run ALTER TABLE ${r.table} REPLICA IDENTITY USING INDEX ${usable.name}, or ${full}`
      : `set ${path}.key to [${ident.join(', ')}], or run ${full}`,
  };
}

/**
 * Every check, each with what it found and, when it fails, the fix. Read-only: nothing is created
 * or altered. `step` names match what test-connection prints.
 */
export async function cdcPreflight(s: pg.ClientBase, input: CdcPreflightInput): Promise<CheckStep[]> {
  const { pipeline, config: p, slot, publication } = input;
  const path = `pipelines.${pipeline}`;
  const steps: CheckStep[] = [];
  const step = async (name: string, fn: () => Promise<{ ok: boolean; detail: string; fix?: string }>) => {
    const t0 = Date.now();
    const r = await fn();
    steps.push({ step: name, ok: r.ok, ms: Date.now() - t0, detail: r.detail, ...(r.fix && !r.ok && { fix: r.fix }) });
  };
  const rights = await replicationRights(s);
  await step('wal_level', async () =>
    rights.walLevel === 'logical'
      ? { ok: true, detail: 'wal_level is logical' }
      : {
          ok: false,
          detail: `wal_level is ${rights.walLevel} on the source: logical replication needs wal_level = logical`,
          fix: 'run ALTER SYSTEM SET wal_level = logical and restart the source server (Lakebase runs logical already)',
        },
  );
  await step('replication', async () =>
    rights.canReplicate
      ? { ok: true, detail: `role ${rights.user} may open replication connections` }
      : {
          ok: false,
          detail: `role ${rights.user} has no REPLICATION right: it cannot read a replication slot`,
          fix: `as a superuser run ALTER ROLE ${quoteIdent(rights.user)} WITH REPLICATION (on Lakebase: a role with databricks_superuser)`,
        },
  );
  const table = await qualifiedSourceTable(s, p.source.table!);
  if (!table) {
    steps.push({ step: 'table', ok: false, ms: 0, detail: `${path}.source.table: table ${p.source.table} does not exist in the source database`, fix: `create it, or correct ${path}.source.table` });
    return steps;
  }
  const identities = await replicaIdentities(s, table.name);
  await step('replica identity', async () => {
    const problems = identities.map((r) => identityProblem(r, p.key, p.transform.rename, path)).filter((x) => x !== null);
    if (problems.length === 0) {
      const modes = [...new Set(identities.map((r) => (r.mode === 'full' ? 'FULL' : `(${(r.columns ?? []).join(', ')})`)))];
      return { ok: true, detail: `${table.name}: replica identity ${modes.join(', ')} serves key [${p.key.join(', ')}]` };
    }
    // Partitions usually share one problem: say it once, with the fix for each.
    return { ok: false, detail: problems.map((x) => x.detail).join('; '), fix: problems.map((x) => x.fix).join('; ') };
  });
  const pub = await publicationTables(s, publication);
  const pubOwner = await publicationInfo(s, publication);
  const unowned = identities.filter((r) => !r.owned).map((r) => r.table);
  await step('publication', async () => {
    if (!pub) {
      if (p.cdc.publication)
        return { ok: false, detail: `${path}.cdc.publication: publication "${publication}" does not exist on the source`, fix: `create it (CREATE PUBLICATION ${quoteIdent(publication)} FOR TABLE ${table.name} WITH (publish_via_partition_root = true); on Lakebase this needs databricks_superuser), or leave cdc.publication out and let the worker create one` };
      if (unowned.length)
        return { ok: false, detail: `the worker would create publication "${publication}" for ${table.name}, but role ${rights.user} does not own ${unowned.join(', ')}`, fix: `create the publication as the table's owner and name it in ${path}.cdc.publication` };
      return { ok: true, detail: `publication "${publication}" does not exist yet: cdc start creates it for ${table.name}` };
    }
    if (table.partitioned && !pub.viaRoot)
      return { ok: false, detail: `${table.name} is partitioned but publication "${publication}" does not publish via the partition root`, fix: `run ALTER PUBLICATION ${quoteIdent(publication)} SET (publish_via_partition_root = true)` };
    if (pub.all || pub.tables.includes(table.name)) return { ok: true, detail: `publication "${publication}" publishes ${table.name}` };
    const add = `ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${table.name}`;
    if (p.cdc.publication) return { ok: false, detail: `${path}.cdc.publication: publication "${publication}" does not publish ${table.name}`, fix: `run ${add}` };
    if (!pubOwner.owned || unowned.length)
      return { ok: false, detail: `cdc start would add ${table.name} to publication "${publication}", but role ${rights.user} does not own ${pubOwner.owned ? unowned.join(', ') : `the publication`}`, fix: `run ${add} as the owner` };
    return { ok: true, detail: `publication "${publication}" exists: cdc start adds ${table.name} to it` };
  });
  const health = await slotHealth(s, slot);
  await step('slot', async () => {
    if (health) {
      if (health.walStatus === 'lost') return { ok: false, ...slotInvalidatedText(slot) };
      if (health.plugin !== 'pgoutput') return { ok: false, detail: `slot "${slot}" exists with plugin ${health.plugin}, not pgoutput`, fix: `name another slot in ${path}.cdc.slot, or drop it: SELECT pg_drop_replication_slot('${slot}')` };
      const reserve = health.safeWalSize === null ? '' : `, ${health.safeWalSize.toLocaleString('en')} bytes of WAL before max_slot_wal_keep_size invalidates it`;
      return { ok: true, detail: `slot "${slot}" exists (wal_status ${health.walStatus ?? '-'}${reserve})` };
    }
    if (rights.usedSlots >= rights.maxSlots)
      return {
        ok: false,
        detail: `no free replication slot on the source: ${rights.usedSlots} of max_replication_slots ${rights.maxSlots} are in use`,
        fix: 'drop a slot nobody reads (SELECT slot_name FROM pg_replication_slots WHERE NOT active), or raise max_replication_slots and restart the source',
      };
    if (rights.usedWalSenders >= rights.maxWalSenders)
      return { ok: false, detail: `no free WAL sender: ${rights.usedWalSenders} of max_wal_senders ${rights.maxWalSenders} are in use`, fix: 'raise max_wal_senders and restart the source, or stop another replication reader' };
    return { ok: true, detail: `slot "${slot}" does not exist yet: cdc start creates it (${rights.maxSlots - rights.usedSlots} of ${rights.maxSlots} slots free)` };
  });
  return steps;
}

/** What an invalidated slot means and what to do, shared by the preflight, the status and the stream's failure. */
export function slotInvalidatedText(slot: string): { detail: string; fix: string } {
  return {
    detail: `replication slot "${slot}" was invalidated by the source (wal_status lost: it fell behind by more than max_slot_wal_keep_size and the WAL it needed was removed); the changes in that WAL are lost to its pipelines`,
    fix: `drop the slot (cdc stop --drop-slot, or SELECT pg_drop_replication_slot('${slot}')) and cdc start again: the tables are copied anew; raise max_slot_wal_keep_size on the source so a stopped stream is not invalidated again`,
  };
}

/** The join's gate: throws a typed non-retryable failure naming every failed check and its fix. */
export async function assertCdcReady(s: pg.ClientBase, input: CdcPreflightInput): Promise<void> {
  const failed = (await cdcPreflight(s, input)).filter((x) => !x.ok);
  if (failed.length === 0) return;
  const type = failed.some((x) => x.step === 'slot' && /invalidated/.test(x.detail)) ? NON_RETRYABLE_FAILURES.cdcSlotInvalidated : NON_RETRYABLE_FAILURES.cdcSourceNotReady;
  throw new SyncError(type, `pipelines.${input.pipeline}: the source is not ready for cdc, nothing was changed: ${failed.map((x) => `${x.step}: ${x.detail}; fix: ${x.fix}`).join(' | ')}`);
}

/**
 * test-connection for a cdc pipeline: the connection checks of its source, then (when they pass)
 * the cdc checks, as one report. `diagnose` is the connection report of the source environment.
 */
export async function cdcPipelineReport(
  config: Config,
  pipeline: string,
  diagnose: (profile: string, environment: string) => Promise<ConnectionReport>,
  connect: Connector,
): Promise<ConnectionReport & { pipeline: string }> {
  const p = cdcPipeline(config, pipeline);
  const base = await diagnose(p.source.profile, p.source.environment);
  if (!base.ok) return { ...base, pipeline, steps: [...base.steps, { step: 'cdc', ok: false, skipped: true, ms: 0, detail: 'skipped' }] };
  const { slot, publication } = slotNames(config, pipeline);
  const steps = await withConnection(connect, p.source, (s) => cdcPreflight(s, { pipeline, config: p, slot, publication }));
  const all = [...base.steps, ...steps.map((x) => ({ ...x, step: `cdc ${x.step}` }))];
  return { ...base, pipeline, ok: all.every((x) => x.ok || x.skipped), steps: all };
}
