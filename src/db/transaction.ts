import type pg from 'pg';

export interface Transaction {
  /** End with ROLLBACK instead of COMMIT once the callback returns (nothing to keep, no error either). */
  rollbackOnly(): void;
}

/**
 * Runs `fn` inside BEGIN … COMMIT on `client`; any throw rolls back and rethrows. The one place
 * that writes BEGIN/COMMIT/ROLLBACK, so no path can leave a connection inside a transaction.
 */
export async function withTransaction<R>(client: pg.ClientBase, fn: (tx: Transaction) => Promise<R>, begin = 'BEGIN'): Promise<R> {
  let commit = true;
  await client.query(begin);
  try {
    const result = await fn({ rollbackOnly: () => void (commit = false) });
    await client.query(commit ? 'COMMIT' : 'ROLLBACK');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
