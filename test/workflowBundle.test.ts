// The workflow bundle the worker loads: its inline source map still maps to src/workflows (workflow
// stack traces name our files and lines), without the sources' text, which every worker would
// otherwise hold twice (about 2 MB of source parsed into the main and the workflow heaps).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { workflowBundle } from '../src/worker';

test('the workflow bundle maps to src/workflows without carrying the sources', { timeout: 300_000 }, async () => {
  const { codePath } = await workflowBundle();
  const code = await readFile(codePath, 'utf8');
  const at = code.lastIndexOf('//# sourceMappingURL=data:application/json;charset=utf-8;base64,');
  assert.ok(at > 0, 'an inline source map (the SDK requires one)');
  const map = JSON.parse(Buffer.from(code.slice(code.indexOf('base64,', at) + 7).trim(), 'base64').toString()) as { sources: string[]; sourcesContent?: unknown[]; mappings: string };
  assert.ok(map.sources.some((s) => /src[/\\]workflows[/\\]dataSync\.ts$/.test(s)), `maps to the workflow sources: ${map.sources.slice(0, 5).join(', ')}`);
  assert.ok(map.mappings.length > 10_000, 'with line mappings');
  assert.equal(map.sourcesContent, undefined, 'without the sources text');
  assert.ok(code.length < 2_500_000, `bundle of ${code.length} bytes`);
});
