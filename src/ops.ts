import { redactSecrets } from './redact';
import http from 'node:http';
import type { Metrics } from './metrics';

export interface Readiness {
  ok: boolean;
  detail: string;
}

/** /metrics (Prometheus), /healthz (the process answers) and /readyz (connected and able to work). */
export function createOpsServer(opts: { metrics: Metrics; ready: () => Promise<Readiness> }): http.Server {
  return http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (path === '/healthz') return send(200, 'text/plain', 'ok\n');
    if (path === '/readyz') {
      return void opts.ready().then(
        // Unauthenticated: pool and auth errors may quote a connection string or a token.
        (r) => send(r.ok ? 200 : 503, 'text/plain', `${redactSecrets(r.detail)}\n`),
        (err: Error) => send(503, 'text/plain', `${redactSecrets(err.message)}\n`),
      );
    }
    if (path === '/metrics') {
      return void opts.metrics.registry.metrics().then((text) => send(200, opts.metrics.registry.contentType, text));
    }
    send(404, 'text/plain', 'not found\n');
  });
}
