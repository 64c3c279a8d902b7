import { z } from 'zod';
import type { JobConfig, JobParamConfig } from './schema';

/** Job parameters as PostgreSQL text, ready to bind. */
export type BoundParams = Record<string, string | null>;

export type RawParam = string | number | boolean | null;

const DATE = /^\d{4}-\d{2}-\d{2}$/;

function schemaFor(name: string, p: JobParamConfig): z.ZodType<string> {
  const at = (what: string) => `expected ${what}`;
  switch (p.type) {
    case 'integer':
      return z
        .union([z.number(), z.string().regex(/^-?\d+$/, at('an integer'))], { error: at('an integer') })
        .transform((v) => Number(v))
        .refine((v) => Number.isSafeInteger(v), at('an integer'))
        .refine((v) => p.min === undefined || v >= p.min, at(`an integer ≥ ${p.min}`))
        .refine((v) => p.max === undefined || v <= p.max, at(`an integer ≤ ${p.max}`))
        .transform(String);
    case 'number':
      return z
        .union([z.number(), z.string().regex(/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/, at('a number'))], { error: at('a number') })
        .transform((v) => Number(v))
        .refine((v) => Number.isFinite(v), at('a finite number'))
        .refine((v) => p.min === undefined || v >= p.min, at(`a number ≥ ${p.min}`))
        .refine((v) => p.max === undefined || v <= p.max, at(`a number ≤ ${p.max}`))
        .transform(String);
    case 'boolean':
      return z
        .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])], { error: at('true or false') })
        .transform((v) => String(v === true || v === 'true' || v === '1' || v === 'yes'));
    case 'date':
      return z
        .string({ error: at('a date YYYY-MM-DD') })
        .regex(DATE, at('a date YYYY-MM-DD'))
        .refine((v) => !Number.isNaN(Date.parse(`${v}T00:00:00Z`)) && new Date(`${v}T00:00:00Z`).toISOString().startsWith(v), at('a real calendar date'));
    case 'timestamp':
      return z.iso.datetime({ offset: true, error: at('an ISO 8601 timestamp with offset, e.g. 2026-11-24T10:00:00Z') });
    case 'uuid':
      return z.uuid({ error: at('a UUID') });
    case 'json':
      return z
        .union([z.string(), z.number(), z.boolean()], { error: at('JSON text') })
        .transform((v, ctx) => {
          if (typeof v !== 'string') return JSON.stringify(v);
          try {
            return JSON.stringify(JSON.parse(v));
          } catch {
            ctx.addIssue({ code: 'custom', message: at('valid JSON') });
            return z.NEVER;
          }
        });
    case 'text': {
      let s = z.string({ error: at('text') });
      if (p.maxLength !== undefined) s = s.max(p.maxLength, at(`at most ${p.maxLength} characters`));
      if (p.pattern !== undefined) s = s.regex(new RegExp(`^(?:${p.pattern})$`), at(`text matching /${p.pattern}/`));
      // PostgreSQL text cannot hold NUL.
      return s.refine((v) => !v.includes('\0'), at('text without NUL characters'));
    }
  }
  void name;
}

export class JobParamError extends Error {
  override name = 'JobParamError';
  constructor(readonly problems: string[]) {
    super(`invalid job parameters:\n  ${problems.join('\n  ')}`);
  }
}

/** Validates raw parameters (CLI strings or typed values) against the job's declarations. */
export function bindJobParams(jobName: string, job: JobConfig, raw: Record<string, RawParam | undefined>): BoundParams {
  const problems: string[] = [];
  const out: BoundParams = {};
  for (const k of Object.keys(raw)) {
    if (!(k in job.params)) problems.push(`${k}: job "${jobName}" has no parameter "${k}"; its parameters: ${Object.keys(job.params).join(', ') || '(none)'}`);
  }
  for (const [name, p] of Object.entries(job.params)) {
    const value = raw[name] ?? p.default;
    if (value === undefined || value === null) {
      if (p.required) problems.push(`${name}: required ${p.type} parameter is missing${p.description ? ` (${p.description})` : ''}`);
      else out[name] = null;
      continue;
    }
    const r = schemaFor(name, p).safeParse(value);
    if (r.success) out[name] = r.data;
    else {
      const shown = typeof value === 'string' && value.length > 60 ? `${value.slice(0, 60)}…` : value;
      problems.push(`${name}: ${r.error.issues[0]?.message ?? 'invalid'}, got ${JSON.stringify(shown)}`);
    }
  }
  if (problems.length) throw new JobParamError(problems);
  return out;
}

/** `k=v` pairs from the command line. */
export function parseParamArgs(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new JobParamError([`--param ${pair}: expected name=value`]);
    out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}
