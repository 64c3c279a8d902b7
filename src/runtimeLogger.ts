import { Runtime } from '@temporalio/worker';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import type { Logger } from './logger';

/** Routes the SDK's and Core's logs into our pino logger (once per process, before any connection). */
export function installRuntimeLogger(logger: Logger, sdkMetricsAddress?: string): void {
  const child = logger.child({ component: 'temporal' });
  const level = (l: LogLevel) => (l === 'TRACE' ? 'trace' : l === 'DEBUG' ? 'debug' : l === 'WARN' ? 'warn' : l === 'ERROR' ? 'error' : 'info');
  const temporalLogger: TemporalLogger = {
    log: (l: LogLevel, message: string, meta?: LogMetadata) => child[level(l)](meta ?? {}, message),
    trace: (m, meta) => child.trace(meta ?? {}, m),
    debug: (m, meta) => child.debug(meta ?? {}, m),
    info: (m, meta) => child.info(meta ?? {}, m),
    warn: (m, meta) => child.warn(meta ?? {}, m),
    error: (m, meta) => child.error(meta ?? {}, m),
  };
  Runtime.install({
    logger: temporalLogger,
    telemetryOptions: {
      logging: { forward: {}, filter: 'WARN' },
      ...(sdkMetricsAddress && { metrics: { prometheus: { bindAddress: sdkMetricsAddress } } }),
    },
  });
}
