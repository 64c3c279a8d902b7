import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createLogger, type Logger } from '../../src/logger';
import { temporalExecutable } from '../../src/provision/temporal';
import { createLakebaseWorker, installRuntimeLogger, type LakebaseWorker, type LakebaseWorkerOptions } from '../../src/worker';
import { LAKEBASE_SEARCH_ATTRIBUTES } from '../../src/workflows/searchAttributes';

/** A real Temporal dev server (the pinned CLI), one per test file. */
export async function startTemporal(runtimeLogger?: Logger): Promise<TestWorkflowEnvironment> {
  // Worker lifecycle and expected activity failures would drown the test report.
  installRuntimeLogger(runtimeLogger ?? createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'error' }));
  const executable = await temporalExecutable((m) => console.log(m));
  return TestWorkflowEnvironment.createLocal({ server: { executable, log: { format: 'pretty', level: 'error' }, searchAttributes: LAKEBASE_SEARCH_ATTRIBUTES } });
}

export function uniqueQueue(name: string): string {
  return `${name}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
}

/** A worker running until stop() (suites whose tests share one worker). */
export async function runWorkerInBackground(opts: LakebaseWorkerOptions): Promise<{ worker: LakebaseWorker; stop(): Promise<void> }> {
  const worker = await createLakebaseWorker(opts);
  let release!: () => void;
  const stopped = new Promise<void>((r) => (release = r));
  const done = worker.runUntil(() => stopped);
  return {
    worker,
    async stop() {
      release();
      await done;
    },
  };
}
