import { Writable } from 'node:stream';
import type { WorkflowHandle } from '@temporalio/client';
import { createLogger, type Logger } from '../../src/logger';

/** A real pino logger whose every line is kept, to scan for secrets. */
export function capturingLogger(): { logger: Logger; text: () => string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', destination: sink }), text: () => lines.join('') };
}

/** A workflow's full history as text, with payload bytes decoded so secrets would be visible. */
export async function historyText(handle: WorkflowHandle): Promise<string> {
  const history = await handle.fetchHistory();
  return JSON.stringify(history, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : v));
}
