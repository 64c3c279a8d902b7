import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/**
 * PostgreSQL COPY text format: one row per line, columns separated by tabs, NULL as `\N`, and
 * backslash escapes for backslash, tab, newline and carriage return. Only used when a TypeScript
 * row transform must see values; otherwise bytes flow through untouched.
 */

export type CopyValue = string | null;

const UNESCAPE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };

function unescapeField(field: string): CopyValue {
  if (field === '\\N') return null;
  if (!field.includes('\\')) return field;
  let out = '';
  for (let i = 0; i < field.length; i++) {
    const c = field[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = field[++i];
    if (n === undefined) break;
    if (n in UNESCAPE) out += UNESCAPE[n];
    else if (/[0-7]/.test(n)) {
      // \ooo octal byte; COPY TO only emits these for non-printables in some encodings
      let oct = n;
      while (oct.length < 3 && /[0-7]/.test(field[i + 1] ?? '')) oct += field[++i];
      out += String.fromCharCode(parseInt(oct, 8));
    } else if (n === 'x' && /[0-9a-fA-F]/.test(field[i + 1] ?? '')) {
      let hex = '';
      while (hex.length < 2 && /[0-9a-fA-F]/.test(field[i + 1] ?? '')) hex += field[++i];
      out += String.fromCharCode(parseInt(hex, 16));
    } else out += n;
  }
  return out;
}

export function parseCopyLine(line: string): CopyValue[] {
  return line.split('\t').map(unescapeField);
}

function escapeField(value: CopyValue): string {
  if (value === null) return '\\N';
  return value.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

export function formatCopyLine(values: CopyValue[]): string {
  return `${values.map(escapeField).join('\t')}\n`;
}

export type RecordTransform = (row: Record<string, CopyValue>) => Record<string, CopyValue> | null;

/**
 * A stream that parses COPY text rows into records over `columns`, applies `fn`, and writes the
 * result back as COPY text over `outColumns` (missing keys become NULL). A throw names the row.
 */
export function copyRowTransform(columns: string[], outColumns: string[], fn: RecordTransform, describeRow: (r: Record<string, CopyValue>) => string): Transform {
  let pending = '';
  // A multi-byte character may straddle two chunks.
  const decoder = new StringDecoder('utf8');
  const handle = (line: string, push: (s: string) => void) => {
    const values = parseCopyLine(line);
    const record: Record<string, CopyValue> = {};
    columns.forEach((c, i) => (record[c] = values[i] ?? null));
    let out: Record<string, CopyValue> | null;
    try {
      out = fn(record);
    } catch (err) {
      throw new RowTransformError(`row transform failed on row ${describeRow(record)}: ${(err as Error).message}`);
    }
    if (out) push(formatCopyLine(outColumns.map((c) => out[c] ?? null)));
  };
  return new Transform({
    decodeStrings: true,
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      try {
        const decoded = decoder.write(chunk);
        // A huge row spans many chunks: only split once its end has arrived.
        if (!decoded.includes('\n')) {
          pending += decoded;
          return done();
        }
        const text = pending + decoded;
        const lines = text.split('\n');
        pending = lines.pop() ?? '';
        let out = '';
        for (const line of lines) handle(line, (s) => (out += s));
        done(null, out);
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done: TransformCallback) {
      try {
        let out = '';
        pending += decoder.end();
        if (pending) handle(pending, (s) => (out += s));
        done(null, out);
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

export class RowTransformError extends Error {
  override name = 'RowTransformError';
}

/**
 * Passes COPY text through untouched while counting rows and bytes and keeping the last complete
 * row (its cursor ends the chunk). Memory: one row at most.
 */
export class CopyMeter extends Transform {
  rows = 0;
  bytes = 0;
  // Bytes after the last newline, kept as parts: a 50 MB row arrives in hundreds of chunks, and
  // concatenating at each one would be quadratic.
  private tail: Buffer[] = [];
  private last: Buffer | undefined;

  constructor(private readonly onProgress?: (rows: number, bytes: number) => void, private readonly everyMs = 2_000) {
    super();
  }

  private lastReport = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    let lastNl = -1;
    let prevNl = -1;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) {
      this.rows++;
      prevNl = lastNl;
      lastNl = i;
    }
    if (lastNl === -1) this.tail.push(Buffer.from(chunk));
    else {
      // Copies, so the stream's chunks are not kept alive.
      this.last = prevNl === -1 ? Buffer.concat([...this.tail, chunk.subarray(0, lastNl)]) : Buffer.from(chunk.subarray(prevNl + 1, lastNl));
      this.tail = lastNl + 1 < chunk.length ? [Buffer.from(chunk.subarray(lastNl + 1))] : [];
    }
    const now = Date.now();
    if (this.onProgress && now - this.lastReport > this.everyMs) {
      this.lastReport = now;
      this.onProgress(this.rows, this.bytes);
    }
    done(null, chunk);
  }

  /** Fields of the last row, decoded. */
  lastRow(): CopyValue[] | undefined {
    return this.last && parseCopyLine(this.last.toString('utf8'));
  }
}
