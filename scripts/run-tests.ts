// `npm test`: makes sure the real components are there (Temporal CLI, PostgreSQL), runs every
// test file on node's test runner, each in its own process group with a time limit (a hung file
// is killed with everything it started and counts as failed), and ends with the skipped tests'
// reasons and the todo tests (known findings), "N passed, N failed, N skipped, N todo", and a plain "N passed, N failed" last (.ci/run reads it).
//
// PostgreSQL, as the demo finds it: DATABASE_URL (must answer), else the local server
// (postgres@127.0.0.1:5432, trust auth), else an embedded PostgreSQL started here for the run and
// removed after it. The chosen server reaches the test files as DATABASE_URL.
// To act out a machine without PostgreSQL while one runs (it may be shared), point the local
// probe at a closed port:
//   env -u DATABASE_URL LAKEBASE_LOCAL_POSTGRES_URL=postgres://postgres@127.0.0.1:1/postgres npm test
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findTemporalCli } from '../src/provision/temporal';
import { provisionPostgres, type ProvisionedPostgres } from '../src/provision/postgres';

async function testFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
    .map((e) => path.join(e.parentPath ?? dir, e.name))
    .sort();
}

async function main(): Promise<number> {
  const started = Date.now();
  const cli = await findTemporalCli((m) => console.log(m));
  if (cli) process.env.TEMPORAL_CLI = cli;
  let server: ProvisionedPostgres;
  try {
    server = await provisionPostgres((m) => console.log(m));
  } catch (err) {
    console.error(`No PostgreSQL for the tests: ${(err as Error).message}`);
    console.log('0 passed, 1 failed');
    return 1;
  }
  console.log(`PostgreSQL for the tests: ${server.origin} (${server.url.replace(/:[^:@/]+@/, ':***@')})`);
  process.env.DATABASE_URL = server.url;
  try {
    return await runFiles(started);
  } finally {
    await server.stop();
  }
}

/** Per test: minutes (a test that needs longer says so with its own `timeout`). */
const TEST_TIMEOUT_MS = 5 * 60_000;
/** Per file: past this the file's whole process tree is killed and the file counts as failed. */
const FILE_TIMEOUT_MS = Number(process.env.LAKEBASE_TEST_FILE_TIMEOUT_MS) || 20 * 60_000;
const CONCURRENCY = 2;

interface Skip {
  file: string;
  name: string;
  reason: string;
  /** A whole suite skipped (its tests are not reported one by one). */
  suite: boolean;
}

/** A test marked `todo` (a known finding): it runs, and neither passes nor fails the run. */
interface Todo {
  file: string;
  name: string;
  /** It passed: its finding may be fixed (flip it to required). */
  passing: boolean;
}

/** A failed test and the start of its error: the closing lines name it (CI keeps only a run's tail). */
interface Failure {
  file: string;
  name: string;
  error: string[];
}

interface FileResult {
  passed: number;
  failed: number;
  skipped: Skip[];
  todo: Todo[];
  failures: Failure[];
}

/** Process groups of the files still running (killed if the run itself is interrupted). */
const running = new Set<number>();

function killGroup(pid: number): boolean {
  try {
    process.kill(-pid, 'SIGKILL');
    return true;
  } catch {
    return false; // the group is gone already
  }
}

/** Is the TAP result line at `i` a suite's? Its YAML block (the next lines) says type: 'suite'. */
function isSuite(lines: string[], i: number): boolean {
  const yaml = lines.slice(i + 1, i + 6).join('\n');
  return /^\s*type: 'suite'$/m.test(yaml.split(/\n\s*\.\.\./)[0] ?? '');
}

/** The tests and suites a TAP report marks `# SKIP`, with their reasons. */
function skipsOf(report: string, file: string): Skip[] {
  const lines = report.split('\n');
  const skips: Skip[] = [];
  lines.forEach((line, i) => {
    const m = /^\s*ok \d+ - (.*?) # SKIP(?: (.*))?$/.exec(line);
    if (!m) return;
    const unescape = (t: string) => t.replace(/\\#/g, '#').replace(/\\\\/g, '\\');
    skips.push({ file, name: unescape(m[1] ?? ''), reason: unescape(m[2]?.trim() || 'no reason given'), suite: isSuite(lines, i) });
  });
  return skips;
}

/** The tests a TAP report marks `# TODO`, and whether each passed. */
function todosOf(report: string, file: string): Todo[] {
  const todos: Todo[] = [];
  for (const line of report.split('\n')) {
    const m = /^\s*(not ok|ok) \d+ - (.*?) # TODO\b/.exec(line);
    if (m) todos.push({ file, name: (m[2] ?? '').replace(/\\#/g, '#').replace(/\\\\/g, '\\'), passing: m[1] === 'ok' });
  }
  return todos;
}

/** The failed tests (not suites, not todo) of a TAP report, each with the first lines of its YAML `error`. */
function failuresOf(report: string, file: string): Failure[] {
  const lines = report.split('\n');
  const out: Failure[] = [];
  lines.forEach((line, i) => {
    const m = /^(\s*)not ok \d+ - (.*)$/.exec(line);
    if (!m || / # (SKIP|TODO)\b/.test(line) || isSuite(lines, i)) return;
    const indent = (m[1] ?? '').length + 2;
    const block: string[] = [];
    for (let j = i + 1; j < lines.length && !/^\s*\.\.\.$/.test(lines[j]!); j++) block.push(lines[j]!.slice(indent));
    const at = block.findIndex((l) => /^error:/.test(l));
    const error: string[] = [];
    if (at >= 0) {
      const first = block[at]!.replace(/^error:\s*(\|-?)?\s*/, '');
      if (first) error.push(first.replace(/^'|'$/g, ''));
      for (let j = at + 1; j < block.length && /^\s/.test(block[j]!) && error.length < 12; j++) if (block[j]!.trim()) error.push(block[j]!.trim());
    }
    out.push({ file, name: (m[2] ?? '').replace(/\\#/g, '#').replace(/\\\\/g, '\\'), error });
  });
  return out;
}

/** Counts from a file's TAP report; a report cut short (killed file) counts the tests that ended. */
function countTap(report: string, file: string): FileResult {
  const skipped = skipsOf(report, file);
  const todo = todosOf(report, file);
  const failures = failuresOf(report, file);
  const summary = (name: string) => new RegExp(`^# ${name} (\\d+)$`, 'm').exec(report)?.[1];
  if (summary('pass') !== undefined)
    return { passed: Number(summary('pass')), failed: Number(summary('fail') ?? 0) + Number(summary('cancelled') ?? 0), skipped, todo, failures };
  const lines = report.split('\n');
  const result: FileResult = { passed: 0, failed: 0, skipped, todo, failures };
  lines.forEach((line, i) => {
    const m = /^\s*(not ok|ok) \d+ - /.exec(line);
    if (!m || isSuite(lines, i) || / # (SKIP|TODO)\b/.test(line)) return;
    if (m[1] === 'ok') result.passed++;
    else result.failed++;
  });
  return result;
}

/** The skipped tests grouped by reason, each reason once: what the closing line's count is made of. */
function formatSkips(skips: Skip[]): string[] {
  if (!skips.length) return [];
  const byReason = new Map<string, Skip[]>();
  for (const s of skips) byReason.set(s.reason, [...(byReason.get(s.reason) ?? []), s]);
  const lines = [`skipped (${skips.length}):`];
  for (const [reason, group] of byReason) {
    const files = [...new Set(group.map((s) => s.file))].map((file) => {
      const inFile = group.filter((s) => s.file === file);
      const one = inFile[0];
      if (inFile.length === 1 && one) return `${file}: ${one.suite ? 'suite ' : ''}"${one.name}"`;
      return `${file}: ${inFile.length} ${inFile.every((s) => s.suite) ? 'suites' : 'tests'}`;
    });
    lines.push(`  ${reason} — ${files.join('; ')}`);
  }
  return lines;
}

/** The failed tests with the start of their errors, last before the totals (a CI log's tail shows them). */
function formatFailures(failures: Failure[]): string[] {
  if (!failures.length) return [];
  return [`failed (${failures.length}):`, ...failures.flatMap((f) => [`  ${f.file}: "${f.name}"`, ...f.error.map((l) => `      ${l.slice(0, 300)}`)])];
}

/** The todo tests, one line each: the ones that pass now first (their finding may be fixed). */
function formatTodos(todos: Todo[]): string[] {
  if (!todos.length) return [];
  const passing = todos.filter((t) => t.passing);
  return [
    `todo (${todos.length}, ${passing.length} passing now):`,
    ...[...passing, ...todos.filter((t) => !t.passing)].map((t) => `  ${t.passing ? 'passes now, make it required' : 'still failing'} — ${t.file}: "${t.name}"`),
  ];
}

/**
 * One test file in its own process group (detached), so that a file past FILE_TIMEOUT_MS, with
 * every server and worker it started, can be killed at once. Its spec output is printed in one
 * piece when it ends (two files run at a time).
 */
async function runFile(file: string, dir: string, index: number): Promise<FileResult> {
  const tap = path.join(dir, `${index}.tap`);
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--test', `--test-timeout=${TEST_TIMEOUT_MS}`,
      '--test-reporter=spec', '--test-reporter-destination=stdout',
      '--test-reporter=tap', `--test-reporter-destination=${tap}`, file],
    // NODE_TEST_CONTEXT would make a run started inside a test file skip its files.
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, NODE_TEST_CONTEXT: undefined } },
  );
  const pid = child.pid;
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d));
  child.stderr.on('data', (d: Buffer) => (output += d));
  if (pid !== undefined) running.add(pid);
  let timedOut = false;
  const code = await new Promise<number>((resolve) => {
    const timer = setTimeout(() => {
      timedOut = true;
      if (pid !== undefined) killGroup(pid);
    }, FILE_TIMEOUT_MS);
    // 'exit', not 'close': a leftover grandchild may hold the pipes open.
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c ?? 1);
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      output += `cannot run ${file}: ${err.message}\n`;
      resolve(1);
    });
  });
  // Whatever the file left running (a server, a worker) goes with it.
  if (pid !== undefined && !timedOut) killGroup(pid);
  if (pid !== undefined) running.delete(pid);
  const result = countTap(await readFile(tap, 'utf8').catch(() => ''), file);
  process.stdout.write(output);
  if (timedOut) {
    console.log(`✖ ${file} passed its time limit (${Math.round(FILE_TIMEOUT_MS / 1000)} s): its process tree was killed; the file counts as failed`);
    result.failed++;
  } else if (code !== 0 && result.failed === 0) {
    console.log(`✖ ${file} exited with status ${code}; the file counts as failed`);
    result.failed++;
  }
  return result;
}

async function runFiles(started: number): Promise<number> {
  const only = process.argv.slice(2);
  const files = only.length ? only : await testFiles('test');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-tests-'));
  const totals: FileResult = { passed: 0, failed: 0, skipped: [], todo: [], failures: [] };
  let next = 0;
  const lane = async () => {
    while (next < files.length) {
      const i = next++;
      const r = await runFile(files[i]!, dir, i);
      totals.passed += r.passed;
      totals.failed += r.failed;
      totals.skipped.push(...r.skipped);
      totals.todo.push(...r.todo);
      totals.failures.push(...r.failures);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, lane));
  for (const line of [...formatSkips(totals.skipped), ...formatTodos(totals.todo), ...formatFailures(totals.failures)]) console.log(line);
  console.log(`test run took ${Math.round((Date.now() - started) / 1000)} s`);
  console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped.length} skipped, ${totals.todo.length} todo`);
  // Last, and bare: .ci/run sums the runs by this line.
  console.log(`${totals.passed} passed, ${totals.failed} failed`);
  return totals.failed > 0 || totals.passed === 0 ? 1 : 0;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const pid of running) killGroup(pid);
    process.exit(1);
  });
}

main().then((code) => process.exit(code), (err: unknown) => {
  console.error(err);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
