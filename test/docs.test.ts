// The docs cannot drift from the code: links and anchors resolve, every `lakebase-worker …` line in
// a code block is a command the CLI has (flags included), every YAML config example passes the
// config schema. No network, no processes: the CLI's own commander tree is read in-process.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { buildProgram } from '../src/cli/program';
import { brokenLinks, codeBlocks, commandLines, commandProblem, docFiles, yamlConfigProblem, type DocFile } from './helpers/docs';

const root = path.resolve(__dirname, '..');
const readText = (file: string) => readFileSync(path.join(root, file), 'utf8');
const docs: DocFile[] = docFiles(root).map((file) => ({ file, text: readText(file) }));
const program = buildProgram();

/** Blocks that hold shell command lines (or their transcripts): not config, code or ini. */
const shellish = (lang: string) => !['yaml', 'yml', 'json', 'ts', 'js', 'ini', 'sql'].includes(lang);

function commandProblems(doc: DocFile): string[] {
  return codeBlocks(doc.text)
    .filter((b) => shellish(b.lang))
    .flatMap((b) => commandLines(b).map((c) => ({ ...c, problem: commandProblem(program, c.words) })))
    .filter((c) => c.problem)
    .map((c) => `${doc.file}:${c.line}: lakebase-worker ${c.words.join(' ')}: ${c.problem}`);
}

function yamlProblems(doc: DocFile): string[] {
  return codeBlocks(doc.text)
    .filter((b) => b.lang === 'yaml' && b.marker !== 'not-config')
    .flatMap((b) => {
      const problem = yamlConfigProblem(b.body);
      if (b.marker === 'invalid-example') return problem ? [] : [`${doc.file}:${b.line}: marked invalid-example, but the config schema accepts it`];
      return problem ? [`${doc.file}:${b.line}: ${problem}`] : [];
    });
}

describe('docs stay true to the code', () => {
  test('the pages exist: README, CONTRIBUTING, bench/README and the docs/ pages the README indexes', () => {
    const files = docs.map((d) => d.file);
    for (const f of ['README.md', 'CONTRIBUTING.md', 'bench/README.md', 'docs/configuration.md', 'docs/sync.md', 'docs/cdc.md', 'docs/jobs.md', 'docs/operations.md', 'docs/architecture.md'])
      assert.ok(files.includes(f), `${f} is missing`);
    assert.ok(readText('README.md').split('\n').length <= 260, 'README.md stays within 260 lines');
  });

  test('every relative link and #anchor resolves', () => {
    assert.deepEqual(docs.flatMap((d) => brokenLinks(d, root, readText)), []);
  });

  test('every lakebase-worker command line in a code block exists, with its flags, in the CLI', () => {
    const shown = docs.flatMap((d) => codeBlocks(d.text).filter((b) => shellish(b.lang)).flatMap(commandLines));
    assert.ok(shown.length >= 30, `found only ${shown.length} command lines: the extraction is broken`);
    assert.deepEqual(docs.flatMap(commandProblems), []);
  });

  test('every YAML config example parses with the config schema (deliberate error examples fail it)', () => {
    const examples = docs.flatMap((d) => codeBlocks(d.text).filter((b) => b.lang === 'yaml'));
    assert.ok(examples.length >= 6, `found only ${examples.length} YAML examples`);
    assert.deepEqual(docs.flatMap(yamlProblems), []);
  });

  test('examples/lakebase.yaml, which configuration.md calls the complete example, parses with the schema', () => {
    assert.equal(yamlConfigProblem(readText('examples/lakebase.yaml')), undefined);
  });
});

describe('the docs checks catch what they are for', () => {
  const readme = docs.find((d) => d.file === 'README.md');
  assert.ok(readme);

  test('a broken link, a missing anchor and a link out of the repository are reported', () => {
    const doc: DocFile = {
      file: 'docs/example.md',
      text: '# Example\n\nSee [sync](sync.md#verify), [gone](nope.md), [anchor](sync.md#no-such-heading), [self](#example), [out](../../etc/passwd)\n\n```bash\n[not a link](nope2.md)\n```\n',
    };
    const problems = brokenLinks(doc, root, readText);
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems[0] ?? '', /docs\/example\.md:3: link nope\.md: docs\/nope\.md does not exist/);
    assert.match(problems[1] ?? '', /sync\.md has no heading #no-such-heading/);
    assert.match(problems[2] ?? '', /\.\.\/\.\.\/etc\/passwd/);
  });

  test('GitHub anchor slugs: punctuation dropped, code kept, duplicates numbered', () => {
    const doc: DocFile = { file: 'docs/example.md', text: '# A\n## Branch runs (`job run --branch`)\n## Rolling out: Worker Versioning\n## A\n' };
    for (const anchor of ['branch-runs-job-run---branch', 'rolling-out-worker-versioning', 'a-1']) {
      const text = `${doc.text}\n[x](#${anchor})\n`;
      assert.deepEqual(brokenLinks({ ...doc, text }, root, readText), [], anchor);
    }
  });

  test('a misspelt flag, an unknown command, a missing value or argument in the README are reported', () => {
    const broken = (from: string, to: string) => {
      assert.ok(readme.text.includes(from), `the README no longer shows ${from}`);
      return commandProblems({ ...readme, text: readme.text.replace(from, to) });
    };
    assert.match(broken('sync start --pipeline orders', 'sync start --pipelin orders').join('\n'), /sync start: unknown option --pipelin/);
    assert.match(broken('lakebase-worker verify --pipeline', 'lakebase-worker verifi --pipeline').join('\n'), /verifi: no such command/);
    assert.match(broken('npx lakebase-worker job run --job daily-totals', 'npx lakebase-worker job run --job').join('\n'), /option --job needs a value|unknown option/);
    assert.match(commandProblem(program, ['status']) ?? '', /status: expects workflowId/);
    assert.match(commandProblem(program, ['cdc', 'start|statuz', '--pipeline', 'p']) ?? '', /cdc statuz: no such command/);
    assert.equal(commandProblem(program, ['job', 'start', '--job', 'j', '--param', 'a=1', '--param', 'b=2', '--no-wait']), undefined);
  });

  test('a YAML example the schema refuses is reported, and a marked error example must fail', () => {
    const fenced = (body: string, marker = '') => `# Example\n\n${marker}\n\n\`\`\`yaml\n${body}\n\`\`\`\n`;
    const bad = 'pipelines:\n  orders-to-reporting:\n    mode: merge\n';
    assert.match(yamlProblems({ file: 'docs/x.md', text: fenced(bad) }).join('\n'), /pipelines\.orders-to-reporting\.mode: expected one of/);
    assert.deepEqual(yamlProblems({ file: 'docs/x.md', text: fenced(bad, '<!-- invalid-example -->') }), []);
    const good = 'pipelines:\n  orders-to-reporting:\n    mode: upsert\n';
    assert.match(yamlProblems({ file: 'docs/x.md', text: fenced(good, '<!-- invalid-example -->') }).join('\n'), /marked invalid-example, but the config schema accepts it/);
    // A key misspelt inside the README's own quickstart config.
    const quick = codeBlocks(readme.text).find((b) => b.lang === 'yaml');
    assert.ok(quick);
    assert.match(yamlConfigProblem(quick.body.replace('database: shop', 'databse: shop')) ?? '', /databse: unknown key/);
  });
});
