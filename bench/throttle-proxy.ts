// A TCP proxy that makes a local server look remote: every byte is delivered `latencyMs` late and
// each connection, in each direction, gets its own token bucket of `bytesPerSecond`. So one
// connection is the bottleneck (as with a remote Lakebase over a long path) and N connections
// carry N times as much — which is what a parallel sync should exploit.
import net from 'node:net';

export interface ThrottleOptions {
  /** Where connections go, e.g. { host: '127.0.0.1', port: 5432 }. */
  target: { host: string; port: number };
  /** Per connection and per direction. */
  bytesPerSecond: number;
  /** One-way delay added to every byte (a round trip costs twice this). */
  latencyMs: number;
  /** Port to listen on (0: any free port). */
  port?: number;
}

export interface ThrottleProxy {
  host: string;
  port: number;
  /** Connections accepted so far. */
  connections(): number;
  /** Bytes delivered to clients (server → client) over all connections. */
  bytesDown(): number;
  close(): Promise<void>;
}

interface Pending {
  buf: Buffer;
  /** When this chunk may leave (arrival + latency). */
  due: number;
}

/** One direction of one connection: a delay line followed by a token bucket. */
function throttledLink(from: net.Socket, to: net.Socket, opts: ThrottleOptions, onBytes: (n: number) => void): void {
  const rate = opts.bytesPerSecond;
  // A burst of 20 ms worth of bytes (at least one TCP segment) keeps timer wake-ups coarse but smooth.
  const burst = Math.max(1460, Math.floor(rate / 50));
  const highWater = Math.max(256 * 1024, burst * 4);
  const queue: Pending[] = [];
  let queued = 0;
  let tokens = burst;
  let refilledAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let waitingDrain = false;
  let ended = false;

  const refill = () => {
    const now = performance.now();
    tokens = Math.min(burst, tokens + ((now - refilledAt) * rate) / 1000);
    refilledAt = now;
  };

  const pump = () => {
    timer = undefined;
    if (waitingDrain || to.destroyed) return;
    refill();
    while (queue.length > 0) {
      const head = queue[0]!;
      const now = performance.now();
      if (head.due > now) {
        timer = setTimeout(pump, Math.max(1, head.due - now));
        return;
      }
      if (tokens < 1) {
        timer = setTimeout(pump, Math.max(1, Math.ceil(((Math.min(burst, head.buf.length) - tokens) * 1000) / rate)));
        return;
      }
      const n = Math.min(head.buf.length, Math.floor(tokens));
      const piece = n === head.buf.length ? head.buf : head.buf.subarray(0, n);
      if (n === head.buf.length) queue.shift();
      else head.buf = head.buf.subarray(n);
      tokens -= n;
      queued -= n;
      onBytes(n);
      if (queued < highWater / 2 && from.isPaused()) from.resume();
      if (!to.write(piece)) {
        waitingDrain = true;
        to.once('drain', () => {
          waitingDrain = false;
          pump();
        });
        return;
      }
    }
    if (ended) to.end();
  };

  from.on('data', (buf: Buffer) => {
    queue.push({ buf, due: performance.now() + opts.latencyMs });
    queued += buf.length;
    if (queued > highWater) from.pause();
    if (!timer && !waitingDrain) pump();
  });
  from.on('end', () => {
    ended = true;
    if (!timer && !waitingDrain) pump();
  });
  // Bytes still in the delay line are delivered after `from` ends, then `to` is ended (half-close,
  // as TCP would); only when `to` is gone does this direction stop.
  to.on('close', () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    queue.length = 0;
  });
}

export async function startThrottleProxy(opts: ThrottleOptions): Promise<ThrottleProxy> {
  if (!(opts.bytesPerSecond > 0)) throw new Error(`bytesPerSecond must be > 0, got ${opts.bytesPerSecond}`);
  if (!(opts.latencyMs >= 0)) throw new Error(`latencyMs must be ≥ 0, got ${opts.latencyMs}`);
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  let down = 0;
  // Half-open sockets: each direction ends on its own once its delayed bytes are out.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    accepted++;
    const upstream = net.connect({ port: opts.target.port, host: opts.target.host, allowHalfOpen: true });
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      // A reset on one side closes the other; the error itself belongs to whoever uses the connection.
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    throttledLink(client, upstream, opts, () => undefined);
    throttledLink(upstream, client, opts, (n) => (down += n));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    connections: () => accepted,
    bytesDown: () => down,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** `node --import tsx bench/throttle-proxy.ts <targetPort> <MB/s> <latencyMs> [listenPort]`: run it by hand. */
if (require.main === module) {
  const [targetPort = '5432', mbps = '4', latency = '10', listen = '0'] = process.argv.slice(2);
  void startThrottleProxy({ target: { host: '127.0.0.1', port: Number(targetPort) }, bytesPerSecond: Number(mbps) * 1e6, latencyMs: Number(latency), port: Number(listen) }).then((p) =>
    console.log(`127.0.0.1:${p.port} → 127.0.0.1:${targetPort}, ${mbps} MB/s per connection and direction, +${latency} ms each way`),
  );
}
