// The workflow bundle: webpack output of src/workflows, cached per code version (the worker and the
// replay tests load it; the CLI's `bundle` command and the Docker build prebuild it).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger as TemporalLogger } from '@temporalio/common';
import { bundleWorkflowCode, type WorkflowBundlePath } from '@temporalio/worker';
import { cacheDir } from './provision/temporal';
import { WORKFLOW_INTERCEPTOR_MODULES } from './telemetry/interceptorModules';
import { FAILURE_CONVERTER_PATH } from './temporalConnection';

// This module sits next to workflows/ (src/ or dist/): the directory and the files the bundle is made of.
const WORKFLOWS_DIR = path.join(__dirname, 'workflows');
const EXT = path.extname(__filename);

/** The bundler's options of ours: only its warnings and errors are worth showing. */
const quietBundlerLogger: TemporalLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (m, meta) => console.warn(m, meta ?? ''),
  error: (m, meta) => console.error(m, meta ?? ''),
};

/**
 * Identifies the workflow code: its sources, the types they import, the interceptors bundled with
 * them and the SDK version. Paths enter relative to this file, so two checkouts or images of the
 * same code share the hash (and the default Worker Versioning build id).
 */
export function bundleHash(): string {
  const h = createHash('sha256');
  // .ts from the sources, .js from dist/ (the compiled CLI); failureTypes is workflow code outside workflows/.
  const files = [
    ...readdirSync(WORKFLOWS_DIR).map((f) => path.join(WORKFLOWS_DIR, f)),
    path.join(__dirname, 'activities', `types${EXT}`),
    path.join(__dirname, `failureTypes${EXT}`),
    ...WORKFLOW_INTERCEPTOR_MODULES,
  ].sort();
  for (const f of files) h.update(path.relative(__dirname, f)).update(readFileSync(f));
  for (const pkg of ['@temporalio/workflow', '@temporalio/interceptors-opentelemetry']) h.update((require(`${pkg}/package.json`) as { version: string }).version);
  return h.digest('hex').slice(0, 16);
}

/** Worker Versioning's default build id: the package version plus the workflow code's hash. */
export function defaultBuildId(): string {
  return `${(require('../package.json') as { version: string }).version}-${bundleHash()}`;
}

/**
 * Bundles the workflow code into `file` (webpack). The CLI's `bundle` command runs this in its own
 * process. `encodeFailures` bakes in the failure converter that encrypts messages and stacks (for
 * `temporal.encryptPayloads`); workflow-side failures are encoded inside the bundle.
 */
export async function writeWorkflowBundle(file: string, encodeFailures = false): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('./workflows'),
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    logger: quietBundlerLogger,
    ...(encodeFailures && { failureConverterPath: FAILURE_CONVERTER_PATH }),
    // The source map without the sources' text: stack traces still map to src/ lines, and the
    // worker no longer holds every bundled module's source (about 2 MB, parsed in two heaps). The
    // SDK reads that text only with showStackTraceSources, which the worker does not set.
    webpackConfigHook: (config) => ({ ...config, devtool: 'inline-nosources-source-map' }),
  });
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(`${file}.${process.pid}.tmp`, code);
  renameSync(`${file}.${process.pid}.tmp`, file);
}

/** Bumped when the bundler's own settings change, so a cached bundle built the old way is not reused. */
const BUNDLE_FORMAT = 'ns1';

/** Where this code version's bundle lives in the cache (one file per failure-converter variant). */
export function cachedBundlePath(encodeFailures = false): string {
  const variant = encodeFailures ? `-encoded-failures-${createHash('sha256').update(readFileSync(FAILURE_CONVERTER_PATH)).digest('hex').slice(0, 8)}` : '';
  // BUNDLE_FORMAT names how the bundle is built, apart from bundleHash (the code, and the default build id).
  return path.join(cacheDir(), 'workflow-bundles', `workflows-${BUNDLE_FORMAT}-${bundleHash()}${variant}.js`);
}

const bundles = new Map<boolean, Promise<WorkflowBundlePath>>();
/**
 * Workflow code, bundled once per code version into the cache directory. Bundling runs in a child
 * process: webpack's memory (~100 MB) then never enters the long-lived worker.
 */
export function workflowBundle(encodeFailures = false): Promise<WorkflowBundlePath> {
  let bundle = bundles.get(encodeFailures);
  if (!bundle) {
    bundle = (async () => {
      const file = cachedBundlePath(encodeFailures);
      if (!existsSync(file)) {
        const cli = path.join(__dirname, '..', 'bin', 'lakebase-worker.js');
        const built = await new Promise<boolean>((resolve) => {
          // The child bundles the same code this process runs (the cache key is computed from it): the
          // sources when we run from them, dist/ when we run compiled, whatever changed since.
          const env = { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: EXT === '.ts' ? '1' : '0' };
          execFile(process.execPath, [cli, 'bundle', '--out', file, ...(encodeFailures ? ['--encode-failures'] : [])], { env }, (err) => resolve(!err));
        });
        if (!built) await writeWorkflowBundle(file, encodeFailures); // e.g. no permission to spawn: do it here
      }
      return { codePath: file };
    })();
    bundles.set(encodeFailures, bundle);
  }
  return bundle;
}
