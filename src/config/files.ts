import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

/** The key that marks a federation token file as one the platform writes after the worker starts. */
export const WRITTEN_LATER = 'tokenFileWrittenLater';

export interface FileCheck {
  /** `path.to.xFile: cannot read /abs/file (ENOENT)`, one per missing or unreadable file. */
  problems: string[];
  warnings: string[];
}

function unreadable(file: string): string | undefined {
  try {
    if (statSync(file).isDirectory()) return 'EISDIR: a directory, not a file';
    accessSync(file, constants.R_OK);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

/**
 * Every `…File` setting (tokenFile, clientSecretFile, passwordFile, apiKeyFile, caFile, certFile,
 * keyFile) in an interpolated config document, wherever it sits, must name a readable file; paths
 * are taken as the worker reads them (relative to the working directory).
 */
export function checkConfigFiles(doc: unknown, at: string[] = [], out: FileCheck = { problems: [], warnings: [] }): FileCheck {
  if (Array.isArray(doc)) doc.forEach((v, i) => checkConfigFiles(v, [...at, String(i)], out));
  else if (doc && typeof doc === 'object') {
    const obj = doc as Record<string, unknown>;
    for (const [key, value] of Object.entries(obj)) {
      if (/File$/.test(key) && typeof value === 'string' && value !== '') {
        const code = unreadable(value);
        if (code === undefined) continue;
        const line = `${[...at, key].join('.')}: cannot read ${path.resolve(value)} (${code})`;
        if (key === 'tokenFile' && obj[WRITTEN_LATER] === true) out.warnings.push(`${line}; ${WRITTEN_LATER} is set, so it is read when first needed`);
        else out.problems.push(`${line}; fix the path or create the file`);
      } else checkConfigFiles(value, [...at, key], out);
    }
  }
  return out;
}
