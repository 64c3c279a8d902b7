// Help a newcomer can act on: everyday commands first, tooling under its own heading, and each
// command group's --help ending with two or three examples that are real command lines.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildProgram, HELP_EXAMPLES, TOOLING_HEADING } from '../src/cli/program';
import { runCli, shown } from './helpers/cli';
import { commandProblem, shellWords } from './helpers/docs';

describe('lakebase-worker --help', () => {
  test('every example is a command line the CLI accepts, and every command group has two or three', () => {
    const program = buildProgram();
    for (const [path, examples] of Object.entries(HELP_EXAMPLES))
      for (const e of examples) assert.equal(commandProblem(program, shellWords(e)), undefined, `${path || '(program)'}: ${e}`);
    const groups = ['', ...program.commands.filter((c) => c.commands.length > 0).map((c) => c.name())];
    for (const g of groups) {
      const n = HELP_EXAMPLES[g]?.length ?? 0;
      assert.ok(n >= 2 && n <= 3, `${g || '(program)'} has ${n} examples`);
    }
  });

  test('the program: everyday commands first, in a newcomer\'s order; bundle, codec-server and demo under their own heading; examples last', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0, shown(r));
    const out = r.stdout;
    const commands = out.indexOf('\nCommands:\n');
    const tooling = out.indexOf(`\n${TOOLING_HEADING}\n`);
    const examples = out.indexOf('\nExamples:\n');
    assert.ok(commands > 0 && tooling > commands && examples > tooling, out);
    const names = (from: number, to: number) => [...out.slice(from, to).matchAll(/^ {2}([a-z-]+)/gm)].map((m) => m[1]);
    assert.deepEqual(names(commands, tooling).slice(0, 5), ['init', 'config', 'worker', 'sync', 'verify']);
    assert.deepEqual(names(tooling, examples), ['bundle', 'codec-server', 'demo', 'emulator']);
    assert.match(out.slice(examples), /^ {2}\$ lakebase-worker init --auth none$/m);
  });

  for (const group of ['sync', 'cdc', 'job'])
    test(`${group} --help ends with its examples`, async () => {
      const r = await runCli([group, '--help']);
      assert.equal(r.code, 0, shown(r));
      const tail = r.stdout.trimEnd().split('\n').slice(-(HELP_EXAMPLES[group]!.length + 1));
      assert.deepEqual(tail, ['Examples:', ...HELP_EXAMPLES[group]!.map((e) => `  $ lakebase-worker ${e}`)]);
    });
});
