// Which slot and publication a cdc pipeline uses, from the config alone (the CLI needs it without a database).
import { lookupEnvironment, lookupPipeline } from '../../config/lookup';
import type { Config, PipelineConfig } from '../../config/schema';
import { configError } from '../errors';

/** A slot name is [a-z0-9_]{1,63}, so the database name is folded into that. */
export function defaultSlotName(database: string): string {
  return `lbw_${database.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

export function cdcPipeline(config: Config, name: string): PipelineConfig {
  const p = lookupPipeline(config, name);
  if (p.mode !== 'cdc') throw configError(`pipelines.${name}: mode is ${p.mode}; cdc commands need mode: cdc`);
  return p;
}

export function slotNames(config: Config, name: string): { slot: string; publication: string } {
  const p = cdcPipeline(config, name);
  const fallback = defaultSlotName(lookupEnvironment(config, p.source.profile, p.source.environment).database);
  return { slot: p.cdc.slot ?? fallback, publication: p.cdc.publication ?? fallback };
}

/** The cdc pipelines reading the same slot: one reader applies for all of them. */
export function slotGroup(config: Config, name: string): string[] {
  const p = cdcPipeline(config, name);
  const { slot } = slotNames(config, name);
  return Object.entries(config.pipelines)
    .filter(([n, q]) => q.mode === 'cdc' && q.source.profile === p.source.profile && q.source.environment === p.source.environment && slotNames(config, n).slot === slot)
    .map(([n]) => n);
}
