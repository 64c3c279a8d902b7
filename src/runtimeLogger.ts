import { Runtime } from '@temporalio/worker';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import type { Logger } from './logger';
import { redactSecrets } from './redact';

/**
 * An Error in the SDK's log metadata (`Activity failed` carries the ApplicationFailure as `error`)
 * as plain fields: serialised as it is, only its enumerable fields (details: sqlState) would show,
 * not its message. Nested, so scrubbed here (the logger scrubs top-level strings).
 */
function plainErrors(meta: LogMetadata | undefined): LogMetadata {
  if (!meta) return {};
  const out: LogMetadata = {};
  for (const [k, v] of Object.entries(meta)) {
    if (!(v instanceof Error)) out[k] = v;
    else {
      const e = v as Error & { type?: string; nonRetryable?: boolean; details?: unknown };
      out[k] = { name: e.name, ...(e.type && { type: e.type }), message: redactSecrets(e.message), ...(e.nonRetryable !== undefined && { nonRetryable: e.nonRetryable }), ...(e.details !== undefined && { details: e.details }), ...(e.cause instanceof Error && { cause: redactSecrets(e.cause.message) }) };
    }
  }
  return out;
}

/** Routes the SDK's and Core's logs into our pino logger (once per process, before any connection). */
export function installRuntimeLogger(logger: Logger, sdkMetricsAddress?: string): void {
  const child = logger.child({ component: 'temporal' });
  const level = (l: LogLevel) => (l === 'TRACE' ? 'trace' : l === 'DEBUG' ? 'debug' : l === 'WARN' ? 'warn' : l === 'ERROR' ? 'error' : 'info');
  const temporalLogger: TemporalLogger = {
    log: (l: LogLevel, message: string, meta?: LogMetadata) => child[level(l)](plainErrors(meta), message),
    trace: (m, meta) => child.trace(plainErrors(meta), m),
    debug: (m, meta) => child.debug(plainErrors(meta), m),
    info: (m, meta) => child.info(plainErrors(meta), m),
    warn: (m, meta) => child.warn(plainErrors(meta), m),
    error: (m, meta) => child.error(plainErrors(meta), m),
  };
  Runtime.install({
    logger: temporalLogger,
    telemetryOptions: {
      logging: { forward: {}, filter: 'WARN' },
      ...(sdkMetricsAddress && { metrics: { prometheus: { bindAddress: sdkMetricsAddress } } }),
    },
  });
}
