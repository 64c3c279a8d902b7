import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** PEM material given inline or as a file path, for database TLS and Temporal mTLS alike. */
export const pemFields = {
  ca: z.string().optional(),
  caFile: z.string().optional(),
  cert: z.string().optional(),
  certFile: z.string().optional(),
  key: z.string().optional(),
  keyFile: z.string().optional(),
};

/** The inline value, else the file's contents, else undefined. */
export function readPem(inline: string | undefined, file: string | undefined): string | undefined {
  if (inline) return inline;
  if (file) return readFileSync(file, 'utf8');
  return undefined;
}
