/**
 * The one place that scrubs secrets out of free text (error messages, log lines): JWTs and other
 * bearer tokens, Databricks PATs, passwords in connection strings. Structured fields are redacted
 * by the logger's paths (src/logger.ts); this catches secrets embedded in strings.
 */
const PATTERNS: [RegExp, string][] = [
  [/\beyJ[\w-]{4,}\.[\w-]{4,}(?:\.[\w-]*)?/g, '[redacted-token]'],
  [/\bdapi[0-9a-f]{16,}(?:-\d+)?\b/gi, '[redacted-pat]'],
  [/\bdose[0-9a-f]{16,}\b/gi, '[redacted-secret]'],
  [/\blbsealed:v1:[\w:-]+/g, '[sealed]'],
  [/(\bBearer\s+)[\w.~+/=-]{8,}/gi, '$1[redacted]'],
  [/(\b[a-z][\w+.-]*:\/\/[^:\s/@]+:)[^@\s]+@/gi, '$1***@'],
  [/(\b(?:password|passwd|secret|client_secret|token|access_token|subject_token)=)[^&\s"']+/gi, '$1[redacted]'],
];

export function redactSecrets(text: string): string {
  let out = text;
  for (const [re, replacement] of PATTERNS) out = out.replace(re, replacement);
  return out;
}
