/**
 * The one place that scrubs secrets out of free text (error messages, log lines): JWTs and other
 * bearer tokens, Databricks PATs, passwords in connection strings. Structured fields are redacted
 * by the logger's paths (src/logger.ts); this catches secrets embedded in strings.
 */
const SECRET_NAMES = 'password|passwd|pwd|secret|client_secret|clientSecret|token|access_token|accessToken|refresh_token|id_token|subject_token|subjectToken|api_key|apiKey';

const PATTERNS: [RegExp, string][] = [
  [/\beyJ[\w-]{4,}\.[\w-]{4,}(?:\.[\w-]*)?/g, '[redacted-token]'],
  [/\bdapi[0-9a-f]{16,}(?:-\d+)?\b/gi, '[redacted-pat]'],
  [/\bdose[0-9a-f]{16,}\b/gi, '[redacted-secret]'],
  [/\blbsealed:v\d+:[\w:-]+/g, '[sealed]'],
  [/(\bBearer\s+)[\w.~+/=-]{8,}/gi, '$1[redacted]'],
  [/(\bBasic\s+)[A-Za-z0-9+/=]{8,}/gi, '$1[redacted]'],
  // user:password@host — up to the last @ of the address, so a password holding '@' goes whole.
  [/(\b[a-z][\w+.-]*:\/\/[^:\s/@]+:)[^\s]*@/gi, '$1***@'],
  // JSON: "client_secret": "…"
  [new RegExp(`("(?:${SECRET_NAMES})"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, 'gi'), '$1"[redacted]"'],
  // key='…' / key="…" (libpq connection strings, shell lines)
  [new RegExp(`(\\b(?:${SECRET_NAMES})\\s*=\\s*)(['"])(?:(?!\\2).)*\\2`, 'gi'), '$1$2[redacted]$2'],
  // key=value (query strings, form bodies, key=value lists)
  [new RegExp(`(\\b(?:${SECRET_NAMES})\\s*=\\s*)[^&\\s"',;]+`, 'gi'), '$1[redacted]'],
];

export function redactSecrets(text: string): string {
  let out = text;
  for (const [re, replacement] of PATTERNS) out = out.replace(re, replacement);
  return out;
}

const SECRET_KEY = new RegExp(`^(?:${SECRET_NAMES}|authorization|idpToken|privateKey)$`, 'i');

/**
 * A copy of a structured value with secrets removed at any depth: values under secret-named keys
 * censored, every string scrubbed by redactSecrets. Cycles and depth beyond 10 end in a marker.
 */
export function redactDeep(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { type: value.name, message: redactSecrets(value.message), ...(value.stack && { stack: redactSecrets(value.stack) }) };
  if (seen.has(value)) return '[circular]';
  if (depth >= 10) return '[deep]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1, seen));
  if (value instanceof Date || Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) && v !== undefined && v !== null && v !== '' ? '[redacted]' : redactDeep(v, depth + 1, seen)]));
}
