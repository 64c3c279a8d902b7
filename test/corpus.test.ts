import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfigFile } from '../src/config/load';

const DIR = path.join(__dirname, 'corpus', 'configs');

// Each file's first line says which problem it must be reported as: `# expect: <text>`.
describe('bad-config corpus: every malformed file gets a precise error naming its path', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();
  test('the corpus holds at least 30 cases', () => assert.ok(files.length >= 30, `${files.length} files`));
  for (const file of files) {
    test(file, () => {
      const text = readFileSync(path.join(DIR, file), 'utf8');
      const where = path.join(DIR, file);
      const expected = /^# expect: (.+)$/m.exec(text)?.[1];
      assert.ok(expected, 'the file names its expected error');
      assert.throws(
        () => loadConfigFile(where, {}, () => undefined),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.ok(err.message.includes(expected), `expected "${expected}" in:\n${err.message}`);
          assert.ok(err.message.startsWith(`invalid ${where}:`), 'names the config file');
          assert.ok(!err.message.includes('dapi-test'), 'no secret echoed');
          return true;
        },
      );
    });
  }
});
