import pino, { type Logger } from 'pino';
import { redactDeep, redactSecrets } from './redact';

export type { Logger };

/** Keys whose values are secrets at the top levels of a log record (redactDeep in the formatter covers every depth). */
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
      // Secrets inside strings (an error message quoting a URL with a password, a JWT) are scrubbed too.
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? redactSecrets(a) : a)) as Parameters<typeof method>);
        },
      },
      formatters: {
        // Any depth: a secret nested in a request body or an error's cause is removed too.
        log: (obj) => redactDeep(obj) as Record<string, unknown>,
      },
      serializers: { err: (e: Error) => ({ type: e?.name, message: redactSecrets(String(e?.message ?? e)), stack: e?.stack && redactSecrets(e.stack) }) },
    },
    opts.destination ?? pino.destination(2),
  );
}
