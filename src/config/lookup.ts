import { workerConfigNote } from '../configSource';
import type { Config, EnvironmentConfig, JobConfig, PipelineConfig, SyncGroupConfig } from './schema';

/** A pipeline, job, sync group, profile or environment named by a user that the config does not have. */
export class UnknownNameError extends Error {
  override name = 'UnknownNameError';
}

function known(names: string[]): string {
  return names.join(', ') || '(none)';
}

export function lookupPipeline(config: Config, name: string): PipelineConfig {
  const p = config.pipelines[name];
  if (!p) throw new UnknownNameError(`unknown pipeline "${name}"; configured pipelines: ${known(Object.keys(config.pipelines))}${workerConfigNote(config)}`);
  return p;
}

export function lookupJob(config: Config, name: string): JobConfig {
  const j = config.jobs[name];
  if (!j) throw new UnknownNameError(`unknown job "${name}"; configured jobs: ${known(Object.keys(config.jobs))}${workerConfigNote(config)}`);
  return j;
}

export function lookupGroup(config: Config, name: string): SyncGroupConfig {
  const g = config.syncGroups[name];
  if (!g) throw new UnknownNameError(`unknown sync group "${name}"; configured: ${known(Object.keys(config.syncGroups))}${workerConfigNote(config)}`);
  return g;
}

export function lookupEnvironment(config: Config, profile: string, environment: string): EnvironmentConfig {
  const prof = config.profiles[profile];
  if (!prof) throw new UnknownNameError(`unknown profile "${profile}"; configured profiles: ${known(Object.keys(config.profiles))}`);
  const env = prof.environments[environment];
  if (!env) throw new UnknownNameError(`profile "${profile}" has no environment "${environment}"; defined: ${known(Object.keys(prof.environments))}`);
  return env;
}

/** The pipeline with both sides switched to `environment` of their profiles (`--env staging`); as configured without one. */
export function pipelineInEnvironment(p: PipelineConfig, environment?: string): PipelineConfig {
  if (!environment) return p;
  return { ...p, source: { ...p.source, environment }, target: { ...p.target, environment } };
}

/** A pipeline by name, optionally switched to another environment that both of its profiles define. */
export function resolvePipeline(config: Config, name: string, environment?: string): PipelineConfig {
  const p = lookupPipeline(config, name);
  if (!environment) return p;
  for (const side of ['source', 'target'] as const) {
    const prof = config.profiles[p[side].profile];
    if (!prof?.environments[environment])
      throw new UnknownNameError(
        `--env ${environment}: profile "${p[side].profile}" (the ${side} of ${name}) has no environment "${environment}"; defined: ${known(Object.keys(prof?.environments ?? {}))}`,
      );
  }
  return pipelineInEnvironment(p, environment);
}
