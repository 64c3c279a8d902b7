// A pipeline resolved once per engine call (so once per activity): its name, config, row transform
// and sides, plus a fingerprint of the config that a plan hands to its chunks and buckets, so a
// worker whose config changed since planning refuses to go on with the run instead of mixing two.
import { createHash } from 'node:crypto';
import { resolvePipeline } from '../config/lookup';
import type { PipelineConfig } from '../config/schema';
import type { RecordTransform } from '../db/copyText';
import { configError, SyncError } from './errors';
import { NON_RETRYABLE_FAILURES } from '../failureTypes';
import type { SyncEngineDeps } from './context';

export interface Side {
  profile: string;
  environment: string;
}

export interface ResolvedRun {
  /** The pipeline's name, for errors and state rows. */
  name: string;
  /** Its config, switched to the run's environment when one was asked for. */
  pipeline: PipelineConfig;
  /** The named TypeScript row transform, when the pipeline has one. */
  transform?: RecordTransform;
  source: Side;
  target: Side;
  /** Of the config that decides which rows go where (see fingerprintOf). */
  fingerprint: string;
}

/** Settings that change how fast a run goes, not what it writes: tuning them mid-run is no drift. */
const TUNING: (keyof PipelineConfig)[] = ['parallelism', 'batchRows', 'verify', 'resync'];

/** JSON with object keys sorted, so equal configs print equal whatever the order they were written in. */
function canonical(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonical).join(',')}]`;
  if (x && typeof x === 'object')
    return `{${Object.keys(x)
      .sort()
      .filter((k) => (x as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((x as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(x);
}

/** 16 hex digits of SHA-256 over the pipeline's config without its tuning settings (no secrets live there). */
export function fingerprintOf(p: PipelineConfig): string {
  const kept = Object.fromEntries(Object.entries(p).filter(([k]) => !TUNING.includes(k as keyof PipelineConfig)));
  return createHash('sha256').update(canonical(kept)).digest('hex').slice(0, 16);
}

/** Resolves `name` (in `environment`) against the engine's config: the one lookup an engine call makes. */
export function resolveRun(deps: SyncEngineDeps, name: string, environment?: string): ResolvedRun {
  const pipeline = resolvePipeline(deps.config, name, environment);
  return {
    name,
    pipeline,
    transform: rowTransformFor(deps, pipeline, name),
    source: { profile: pipeline.source.profile, environment: pipeline.source.environment },
    target: { profile: pipeline.target.profile, environment: pipeline.target.environment },
    fingerprint: fingerprintOf(pipeline),
  };
}

function rowTransformFor(deps: SyncEngineDeps, p: PipelineConfig, pipeline: string): RecordTransform | undefined {
  const name = p.transform.rowTransform;
  if (!name) return undefined;
  const fn = deps.rowTransforms?.[name];
  if (!fn)
    throw configError(
      `pipelines.${pipeline}.transform.rowTransform: no row transform "${name}" is registered with this worker; registered: ${Object.keys(deps.rowTransforms ?? {}).join(', ') || '(none)'}`,
    );
  return fn;
}

/**
 * The pipeline's config changed between planning a run and one of its chunks or buckets (a worker
 * with another config picked it up). Its failure type is LakebaseConfigError: fix the config or
 * start the run again; retrying the same step cannot help.
 */
export class PipelineDriftError extends SyncError {
  override name = 'PipelineDriftError';
  constructor(
    readonly pipeline: string,
    readonly planned: string,
    readonly current: string,
  ) {
    super(
      NON_RETRYABLE_FAILURES.config,
      `pipelines.${pipeline}: its config changed since this run was planned (fingerprint ${planned} then, ${current} on this worker); ` +
        `this step stops rather than write by another config. Give every worker the same config, then start the sync again (it resumes from what was committed)`,
    );
  }
}

/** Fails a chunk or bucket planned under another config; steps of plans that carry no fingerprint (older workers) go on. */
export function checkDrift(run: ResolvedRun, planned: string | undefined): void {
  if (planned !== undefined && planned !== run.fingerprint) throw new PipelineDriftError(run.name, planned, run.fingerprint);
}
