/**
 * Runs every cleanup step in order even when one fails (a worker that will not stop must not keep
 * the Temporal dev server or a database alive: the file would never exit), then throws the first
 * failure.
 */
export async function cleanUp(...steps: Array<() => unknown>): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length) throw failures[0];
}
