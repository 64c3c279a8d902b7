// `worker`, `bundle`, `codec-server`: the long-running processes of a deployment.
import type { Command } from 'commander';
import { ConfigError } from '../config/load';
import { createLogger } from '../logger';
import { bundleApi, codec, workerApi } from './lazy';
import { print } from './output';
import { configPath, loadConfig, loadExtensions, positive, readSecretFile, untilSignal, withConfigOption, type ConfigOption } from './shared';
import { readConfigSource, rememberWorkerConfig } from '../configSource';

export function registerWorker(program: Command): void {
  withConfigOption(program.command('worker').description('run a worker: executes syncs and jobs from the configured task queue'))
    .option('-t, --transforms <module>', 'JS/TS module exporting `rowTransforms` (or a default export) and `jobFunctions`')
    .action(async (opts: ConfigOption & { transforms?: string }) => {
      const config = loadConfig(opts);
      // What a run naming a pipeline or job this copy lacks is told (the file may change under a running worker).
      const source = readConfigSource(configPath(opts));
      rememberWorkerConfig(config, source);
      await workerApi().runWorker(config, createLogger(), loadExtensions(opts.transforms), source);
    });

  program
    .command('bundle')
    .description('bundle the workflow code (the worker does this itself, once per code version, into its cache)')
    .option('-o, --out <file>', 'where to write the bundle (default: both variants into the cache the worker reads, e.g. when building an image)')
    .option('--encode-failures', 'with --out: the variant for temporal.encryptPayloads (failure messages and stacks encrypted)')
    .action(async (opts: { out?: string; encodeFailures?: boolean }) => {
      const { cachedBundlePath, writeWorkflowBundle } = bundleApi();
      if (opts.out) return writeWorkflowBundle(opts.out, opts.encodeFailures ?? false);
      await writeWorkflowBundle(cachedBundlePath(false), false);
      await writeWorkflowBundle(cachedBundlePath(true), true);
    });

  program
    .command('codec-server')
    .description('serve /encode and /decode for the Temporal UI and CLI (payload encryption keys from LAKEBASE_SECRET_KEYS)')
    .option('--port <n>', 'port', positive, 8888)
    .option('--host <address>', 'address to listen on (0.0.0.0 inside a container, behind a NetworkPolicy)', '127.0.0.1')
    .option('--ui-origin <url...>', 'browser origin(s) of the Temporal UI allowed to call it', ['http://localhost:8233'])
    .option('--token-file <file>', 'file holding the bearer token callers must send (else $LAKEBASE_CODEC_TOKEN)')
    .action(async (opts: { port: number; host: string; uiOrigin: string[]; tokenFile?: string }) => {
      const raw = opts.tokenFile ? readSecretFile(opts.tokenFile, '--token-file') : process.env.LAKEBASE_CODEC_TOKEN;
      if (!raw) throw new ConfigError(['--token-file: the codec server needs a bearer token (--token-file or LAKEBASE_CODEC_TOKEN); it never runs open']);
      const { createCodecServer, EncryptionCodec, loadSealingKeys, codecToken } = codec();
      let token: string;
      try {
        token = codecToken(raw);
      } catch (err) {
        throw new ConfigError([`${opts.tokenFile ? '--token-file' : 'LAKEBASE_CODEC_TOKEN'}: ${(err as Error).message}`]);
      }
      const server = createCodecServer({ codec: new EncryptionCodec(loadSealingKeys()), origins: opts.uiOrigin, token });
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) =>
          reject(err.code === 'EADDRINUSE' ? new ConfigError([`--port: port ${opts.port} is already in use; pick another with --port`]) : err),
        );
        server.listen(opts.port, opts.host, resolve);
      });
      print(`codec server on http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port} (/encode, /decode) for ${opts.uiOrigin.join(', ')}`);
      await untilSignal();
      server.close();
    });
}
