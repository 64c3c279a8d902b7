import pino, { type Logger } from 'pino';

export type { Logger };

/** Keys whose values are secrets wherever they appear in a log record. */
export const REDACT_PATHS = [
  'token', 'password', 'clientSecret', 'subjectToken', 'accessToken', 'access_token', 'apiKey', 'authorization',
  '*.token', '*.password', '*.clientSecret', '*.subjectToken', '*.accessToken', '*.access_token', '*.apiKey', '*.authorization',
  '*.*.token', '*.*.password', '*.*.clientSecret', '*.*.subjectToken',
];

export interface LoggerOptions {
  level?: string;
  /** Where to write; defaults to stderr so stdout stays free for command output. */
  destination?: pino.DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      base: { service: 'lakebase-worker' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    opts.destination ?? pino.destination(2),
  );
}
