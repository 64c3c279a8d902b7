import type pg from 'pg';
import type { PipelineConfig } from '../config/schema';
import { sourceColumns } from '../db/catalog';
import { planColumns } from '../db/syncSql';
import { addEnumValueSql, labelLiteral } from '../db/targetDdl';
import { enumTypesNamed, enumTypesOf, outputColumns, targetEnumColumns, typeKey, type EnumType, type WireColumn } from '../db/typeCatalog';
import type { DdlStatement } from './createTarget';
import { schemaChangedError } from './errors';

/**
 * Enum labels the source's types gained since the target's types were made. A row with such a
 * label fails the target's COPY with 22P02, so batch runs add the labels before they copy
 * (schemaChanges: evolve) or refuse the run naming them. A label added by ALTER TYPE … ADD VALUE
 * cannot be used in the transaction that added it, so the statements run on their own (plan,
 * and before each chunk's transaction), never inside a chunk's.
 */

export interface EnumLabelPlan {
  /** evolve: ALTER TYPE … ADD VALUE statements, in order. */
  statements: DdlStatement[];
  /** What changed and what the run does about it, for the plan's report and a dry run. */
  notes: string[];
  /** What the run refuses (LakebaseSchemaChanged). */
  problems: string[];
}

/** PostgreSQL's FirstNormalObjectId: every user-defined type (an enum, its array) has an oid from here on. */
const FIRST_NORMAL_OID = 16384;

const list = (labels: string[]) => labels.map(labelLiteral).join(', ');

/**
 * Where each label of `source` that `target` lacks goes: after the nearest earlier label the target
 * has, else before the nearest later one (a label added BEFORE the first), else at the end.
 */
export function labelAdditions(source: string[], target: string[]): { label: string; place?: { before: string } | { after: string } }[] {
  const have = new Set(target);
  const out: { label: string; place?: { before: string } | { after: string } }[] = [];
  source.forEach((label, i) => {
    if (have.has(label)) return;
    const after = source.slice(0, i).reverse().find((l) => have.has(l));
    const before = source.slice(i + 1).find((l) => have.has(l));
    out.push({ label, ...(after !== undefined ? { place: { after } } : before !== undefined ? { place: { before } } : {}) });
    have.add(label);
  });
  return out;
}

/** Compares the enum labels of the pipeline's output columns with those of the target types they are written to. */
export async function planEnumLabels(s: pg.ClientBase, t: pg.ClientBase, p: PipelineConfig, wire: WireColumn[]): Promise<EnumLabelPlan> {
  const plan: EnumLabelPlan = { statements: [], notes: [], problems: [] };
  // Built-in types (and their arrays) have oids below FirstNormalObjectId: none is an enum, no look-up.
  if (!wire.some((w) => w.oid >= FIRST_NORMAL_OID)) return plan;
  const sources = await enumTypesOf(s, wire.map((w) => w.oid));
  if (!sources.some(Boolean)) return plan;
  const byColumn = await targetEnumColumns(t, p.target.table!);
  // A column the run is about to add uses the target's type of the source type's name (prepareTypes).
  const unmatched = wire.flatMap((w, i) => (sources[i] && !byColumn.has(w.name) ? [sources[i]!] : []));
  const byName = await enumTypesNamed(t, unmatched);
  // Labels as this plan leaves them: an enum shared by two columns (or tables) is changed once.
  const planned = new Map<string, string[]>();
  wire.forEach((w, i) => {
    const src = sources[i];
    if (!src) return;
    const tgt = byColumn.get(w.name) ?? byName.get(typeKey(src.schema, src.name));
    if (!tgt) return; // not an enum in the target (text, say), or a type the run creates with every label
    const have = planned.get(tgt.qualified) ?? tgt.labels;
    compare(p, w.name, src, tgt, have, plan);
    planned.set(tgt.qualified, [...new Set([...have, ...src.labels])]);
  });
  return plan;
}

function compare(p: PipelineConfig, column: string, src: EnumType, tgt: EnumType, have: string[], plan: EnumLabelPlan): void {
  const adds = labelAdditions(src.labels, have);
  if (!adds.length) return;
  const missing = adds.map((a) => a.label);
  const where = `column "${column}": the source's enum ${src.qualified} has ${missing.length === 1 ? 'label' : 'labels'} ${list(missing)} that the target's type ${tgt.qualified} lacks`;
  const extra = have.filter((l) => !src.labels.includes(l));
  if (extra.length) {
    // Labels are never dropped: the target's own labels next to new ones look like RENAME VALUE in the source.
    const renames =
      extra.length === missing.length ? extra.map((old, i) => `ALTER TYPE ${tgt.qualified} RENAME VALUE ${labelLiteral(old)} TO ${labelLiteral(missing[i]!)}`).join('; ') : `ALTER TYPE ${tgt.qualified} RENAME VALUE … TO …`;
    plan.problems.push(
      `${where}, and the target's has ${list(extra)} that the source's lacks (a label renamed in the source?). ` +
        `If it was renamed, rename it in the target too (${renames}); if the target's labels are its own, add the source's yourself (ALTER TYPE ${tgt.qualified} ADD VALUE …)`,
    );
    return;
  }
  if (p.schemaChanges === 'evolve') {
    for (const a of adds) plan.statements.push({ sql: addEnumValueSql(tgt.qualified, a.label, a.place) });
    plan.notes.push(`${where}: added to it (ALTER TYPE … ADD VALUE), in the source's order`);
    return;
  }
  plan.problems.push(`${where} (schemaChanges: ${p.schemaChanges}; rows with ${missing.length === 1 ? 'it' : 'them'} cannot be written): add ${missing.length === 1 ? 'it' : 'them'} yourself (${adds.map((a) => addEnumValueSql(tgt.qualified, a.label, a.place)).join('; ')}) or set schemaChanges: evolve`);
}

/** The LakebaseSchemaChanged error for refused label changes. */
export const labelsRefused = (pipeline: string, problems: string[]) =>
  schemaChangedError(`pipelines.${pipeline}: the source's enum labels and the target's differ: ${problems.join('; ')}`);

/** Runs the additions, each committed on its own (the connection must not be in a transaction). */
export async function addEnumLabels(t: pg.ClientBase, statements: DdlStatement[]): Promise<void> {
  for (const st of statements) await t.query(st.sql);
}

/**
 * Before a chunk's transaction: labels added to the source since the plan reach the target's
 * types before rows that use them are copied (or the chunk fails, naming them).
 */
export async function followEnumLabels(s: pg.ClientBase, t: pg.ClientBase, p: PipelineConfig, pipeline: string): Promise<void> {
  const wire = await outputColumns(s, p, planColumns(p, await sourceColumns(s, p), pipeline));
  const plan = await planEnumLabels(s, t, p, wire);
  if (plan.problems.length) throw labelsRefused(pipeline, plan.problems);
  await addEnumLabels(t, plan.statements);
}
