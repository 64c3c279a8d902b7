// A COPY relayed between two servers as the server frames it: the source's CopyData messages are
// forwarded to the target unchanged (a backend's CopyData and a frontend's are the same message),
// so a plain copy costs a header read per row and no copy of its bytes. pg-copy-streams instead
// takes each message apart, joins the payloads of a socket read into a new buffer, and the target
// side frames that again; with the meter's newline scan it was the worker's largest CPU item in a
// full refresh (bench README, 2026-12-04). Used when no row transform needs the rows themselves.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { parseCopyLine, type CopyValue } from './copyText';

const COPY_DATA = 0x64; // d
const COPY_DONE = 0x63; // c
const ERROR = 0x45; // E
// Messages a server may send inside a COPY's output (protocol-flow "COPY Operations"), besides CopyOutResponse (H).
const SKIPPED = new Set([0x48 /* H */, 0x4e /* N */, 0x53 /* S */, 0x41 /* A */]);

/** What pg's Connection gives a submitted query (pg's own types do not name it). */
interface Connection {
  stream: NodeJS.ReadableStream & NodeJS.WritableStream & { listeners(e: 'data'): ((b: Buffer) => void)[] };
  query(text: string): void;
  sendCopyFail(message: string): void;
}

/**
 * `COPY … TO STDOUT` as a stream of whole CopyData messages (headers included), ready to be written
 * to a `CopyInFrames`. Counts the rows (one message each: the server sends a row per CopyData) and
 * keeps the last one for a keyset cursor.
 */
export class CopyOutFrames extends Readable {
  rows = 0;
  bytes = 0;
  private connection: Connection | null = null;
  private pgHandler: ((b: Buffer) => void) | null = null;
  private readonly onReadable = () => this.forward();
  private wanted = false;
  private forwarding = false;
  /** Destroyed mid-COPY: the rest is read and dropped, so the connection ends the query cleanly (or can be closed). */
  private discarding = false;
  /** A message header cut by a socket read: joined to the next read. */
  private partial: Buffer | null = null;
  /** Body bytes left of the message being read, and its type. */
  private remaining = 0;
  private code = 0;
  /** The CopyData message being received across reads, from its header on. */
  private held: Buffer[] | null = null;
  /** The last complete row's payload (a view of the read it came in). */
  private last: Buffer | null = null;

  constructor(private readonly text: string, private readonly onProgress?: (rows: number, bytes: number) => void) {
    super();
  }

  /** Called by pg when the query's turn comes: the socket is ours until the COPY ends. */
  submit(connection: Connection): void {
    this.connection = connection;
    const stream = connection.stream;
    const listeners = stream.listeners('data');
    if (listeners.length !== 1) throw new Error(`CopyOutFrames: expected pg's one data listener on the socket, found ${listeners.length}`);
    this.pgHandler = listeners[0]!;
    stream.removeListener('data', this.pgHandler);
    stream.pause();
    stream.on('readable', this.onReadable);
    connection.query(this.text);
  }

  override _read(): void {
    this.wanted = true;
    this.forward();
  }

  private forward(): void {
    if (this.forwarding || !this.wanted || !this.connection) return;
    this.forwarding = true;
    let chunk: Buffer | null;
    while (this.wanted && this.connection && (chunk = this.connection.stream.read() as Buffer | null) !== null) this.wanted = this.frames(chunk);
    this.forwarding = false;
  }

  /** Hands the socket back to pg with what it has not read (the COPY's end, or an error). */
  private detach(rest: Buffer): void {
    const connection = this.connection!;
    const stream = connection.stream;
    stream.removeListener('readable', this.onReadable);
    stream.addListener('data', this.pgHandler!);
    this.connection = null;
    if (rest.length) this.pgHandler!(rest);
    process.nextTick(() => stream.resume());
  }

  /**
   * Forwards the whole CopyData messages of one socket read; false when the consumer wants no more
   * now. A message cut by the read is held (as references, not copied) until its end arrives: the
   * target only ever receives whole messages, so a copy stopped between two writes leaves its
   * connection in step (a half message would swallow the next query).
   */
  private frames(input: Buffer): boolean {
    const chunk = this.partial ? Buffer.concat([this.partial, input]) : input;
    this.partial = null;
    const end = chunk.length;
    let i = 0;
    let run = -1; // start of the whole CopyData messages to forward
    let more = true;
    const push = (b: Buffer) => {
      if (!this.discarding) more = this.push(b) && more;
    };
    const flush = (to: number) => {
      if (run >= 0 && to > run) push(chunk.subarray(run, to));
      run = -1;
    };
    while (i < end) {
      if (this.remaining > 0) {
        // The body of a message begun in an earlier read (held) or the one skipped.
        const n = Math.min(this.remaining, end - i);
        i += n;
        this.remaining -= n;
        if (this.code !== COPY_DATA) continue;
        if (this.remaining > 0) {
          this.held!.push(chunk.subarray(0, end));
          return more || this.discarding;
        }
        // One push (one write to the target) for the whole message: pieces written apart could be
        // cut by a stop between two of them. A copy, of the rows that cross a read only.
        const whole = Buffer.concat([...this.held!, chunk.subarray(0, i)]);
        this.held = null;
        push(whole);
        this.rowEnds(whole.subarray(5));
        continue;
      }
      if (end - i < 5) {
        flush(i);
        this.partial = Buffer.from(chunk.subarray(i));
        return more || this.discarding;
      }
      const code = chunk[i]!;
      const length = chunk.readUInt32BE(i + 1);
      if (code === COPY_DATA) {
        const body = length - 4;
        this.bytes += body;
        if (i + 5 + body <= end) {
          if (run < 0) run = i;
          this.rowEnds(chunk.subarray(i + 5, i + 5 + body));
          i += 5 + body;
          continue;
        }
        // Cut by this read: forward what came before it, hold it from its header on.
        flush(i);
        this.held = [chunk.subarray(i)];
        this.code = code;
        this.remaining = body - (end - i - 5);
        return more || this.discarding;
      }
      flush(i);
      if (code === ERROR) {
        // pg reads the error and fails the query (its ReadyForQuery follows).
        this.detach(chunk.subarray(i));
        return false;
      }
      if (code === COPY_DONE) {
        this.detach(chunk.subarray(i + 5));
        if (this.discarding) return false;
        this.onProgress?.(this.rows, this.bytes);
        this.push(null);
        return false;
      }
      if (!SKIPPED.has(code)) {
        this.detach(chunk.subarray(i));
        this.destroy(new Error(`CopyOutFrames: unexpected message ${String.fromCharCode(code)} during COPY TO STDOUT`));
        return false;
      }
      this.code = code;
      this.remaining = length - 4;
      i += 5;
    }
    flush(end);
    return more || this.discarding;
  }

  private lastReport = 0;

  /** A row (one CopyData message) ended: its payload. */
  private rowEnds(payload: Buffer): void {
    this.rows++;
    this.last = payload;
    if (this.onProgress && (this.rows & 1023) === 0) {
      const now = Date.now();
      if (now - this.lastReport > 2_000) {
        this.lastReport = now;
        this.onProgress(this.rows, this.bytes);
      }
    }
  }

  /** Fields of the last row, decoded. */
  lastRow(): CopyValue[] | undefined {
    const bytes = this.last;
    if (!bytes?.length) return undefined;
    const text = bytes.toString('utf8');
    return parseCopyLine(text.endsWith('\n') ? text.slice(0, -1) : text);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.connection) {
      // Stopped before the COPY's end (the target failed, an abort): the server goes on sending it.
      // Read to its end and drop it; left unread, the socket would never end, and neither would
      // the client's end() nor the pool's removal of it.
      this.discarding = true;
      this.wanted = true;
      this.forward();
    }
    done(err);
  }

  // pg's callbacks for the query it runs.
  handleError(err: Error): void {
    this.destroy(err);
  }

  handleCommandComplete(): void {}

  handleReadyForQuery(): void {}
}

/**
 * `COPY … FROM STDIN` fed with whole CopyData messages (a `CopyOutFrames`' output): written to the
 * socket as they are. Ends with CopyDone; destroyed, it sends CopyFail (the COPY rolls back).
 */
export class CopyInFrames extends Writable {
  rowCount = 0;
  private connection: Connection | null = null;
  private ready = false;
  /** The query has ended: with ReadyForQuery, or with the server's error. */
  private ended = false;
  private waiting: (() => void) | null = null;
  private onReady: ((err?: Error | null) => void) | null = null;
  private onFailed: ((err?: Error | null) => void) | null = null;

  constructor(private readonly text: string) {
    super();
  }

  submit(connection: Connection): void {
    this.connection = connection;
    connection.query(this.text);
  }

  /** pg's query timeout hook (set when query_timeout is configured). */
  callback(): void {}

  private whenReady(fn: () => void): void {
    if (this.ready) fn();
    else this.waiting = fn;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.whenReady(() => {
      if (this.connection!.stream.write(chunk)) done();
      else this.connection!.stream.once('drain', () => done());
    });
  }

  override _final(done: (err?: Error | null) => void): void {
    this.whenReady(() => {
      this.onReady = done;
      this.connection!.stream.write(Buffer.from([COPY_DONE, 0, 0, 0, 4]));
    });
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.ended) return done(err);
    // CopyFail once the server takes data (the query may still be queued): it rolls the COPY back,
    // and its error ends the query, so the client is free again when this callback runs.
    this.onFailed = () => done(err);
    this.whenReady(() => this.connection?.sendCopyFail(err?.message ?? 'the copy was cancelled'));
  }

  handleCopyInResponse(): void {
    this.ready = true;
    const fn = this.waiting;
    this.waiting = null;
    fn?.();
  }

  handleCommandComplete(msg: { text?: string }): void {
    const match = /COPY (\d+)/.exec(msg?.text ?? '');
    if (match) this.rowCount = Number(match[1]);
  }

  handleError(err: Error): void {
    this.callback();
    this.connection = null;
    this.ended = true;
    const failed = this.onFailed;
    this.onFailed = null;
    if (failed) failed(err);
    else this.destroy(err);
  }

  handleReadyForQuery(): void {
    this.callback();
    this.connection = null;
    this.ended = true;
    const done = this.onReady;
    this.onReady = null;
    done?.();
  }
}

/** Relays `copyOut` on the source into `copyIn` on the target, message by message, unparsed. */
export async function relayCopy(s: pg.ClientBase, t: pg.ClientBase, copyOut: string, copyIn: string, o: { signal?: AbortSignal; onProgress?: (rows: number, bytes: number) => void } = {}) {
  const from = new CopyOutFrames(copyOut, o.onProgress);
  const to = new CopyInFrames(copyIn);
  // pg types a submittable by its methods; these two implement them.
  const submit = <T>(c: pg.ClientBase, q: T) => (c as unknown as { query(q: T): T }).query(q);
  await pipeline(submit(s, from), submit(t, to), ...(o.signal ? [{ signal: o.signal }] : []));
  return { rows: from.rows, bytes: from.bytes, written: to.rowCount, lastRow: () => from.lastRow() };
}
