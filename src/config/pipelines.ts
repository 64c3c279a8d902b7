import type { PipelineConfig } from './schema';

/** The pipeline with both sides switched to `environment` of their profiles (`--env staging`); as configured without one. */
export function pipelineInEnvironment(p: PipelineConfig, environment?: string): PipelineConfig {
  if (!environment) return p;
  return { ...p, source: { ...p.source, environment }, target: { ...p.target, environment } };
}
