import { configError } from './errors';

/**
 * The per-worker connection budget: a chunk needs a source and a target connection at once, and
 * takes both or waits, so chunks never hold one connection while waiting for another (which
 * starves a shared pool). Requests are served in arrival order so a two-connection chunk is not
 * overtaken forever by one-connection work.
 */
export class ConnectionBudget {
  private readonly used = new Map<string, number>();
  private readonly waiting: { need: Map<string, number>; grant: () => void }[] = [];

  /** `limitOf(key)`: connections allowed at once for that environment (its maxConnections). */
  constructor(private readonly limitOf: (key: string) => number) {}

  private fits(need: Map<string, number>): boolean {
    for (const [k, n] of need) if ((this.used.get(k) ?? 0) + n > this.limitOf(k)) return false;
    return true;
  }

  private take(need: Map<string, number>): void {
    for (const [k, n] of need) this.used.set(k, (this.used.get(k) ?? 0) + n);
  }

  private release(need: Map<string, number>): void {
    for (const [k, n] of need) this.used.set(k, (this.used.get(k) ?? 0) - n);
    while (this.waiting.length && this.fits(this.waiting[0]!.need)) {
      const next = this.waiting.shift()!;
      this.take(next.need);
      next.grant();
    }
  }

  /** Connections in use now per environment key (metrics, tests). */
  inUse(key: string): number {
    return this.used.get(key) ?? 0;
  }

  /** Runs `fn` holding `keys.length` connections (a key listed twice counts twice). */
  async run<R>(keys: string[], fn: () => Promise<R>): Promise<R> {
    const need = new Map<string, number>();
    for (const k of keys) need.set(k, (need.get(k) ?? 0) + 1);
    for (const [k, n] of need)
      if (n > this.limitOf(k)) throw configError(`${k} needs ${n} connections at once, but its maxConnections is ${this.limitOf(k)}; raise maxConnections to at least ${n}`);
    if (this.waiting.length === 0 && this.fits(need)) this.take(need);
    else await new Promise<void>((grant) => this.waiting.push({ need, grant }));
    try {
      return await fn();
    } finally {
      this.release(need);
    }
  }
}
