// docker-compose.yml (issue 30, item 14): every port on 127.0.0.1, and no password or secret with a
// default — compose refuses to start until .env sets each. Checked with `docker-compose config`.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import YAML from 'yaml';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const REQUIRED = ['TEMPORAL_DB_PASSWORD', 'DATA_DB_PASSWORD', 'EMULATOR_SP_SECRET', 'LAKEBASE_SECRET_KEYS', 'LAKEBASE_CODEC_TOKEN'];
const hasCompose = spawnSync('docker-compose', ['version']).status === 0;

describe('docker-compose: local ports only, no default secrets', () => {
  test('no ${VAR:-default} for anything named like a password or secret', () => {
    const text = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    const defaults = [...text.matchAll(/\$\{([A-Z0-9_]+):?-[^}]*\}/g)].map((m) => m[1]!);
    assert.deepEqual(defaults.filter((v) => /PASSWORD|SECRET|TOKEN|KEY/.test(v)), []);
    for (const v of REQUIRED) assert.match(readFileSync(path.join(ROOT, '.env.example'), 'utf8'), new RegExp(`^${v}=$`, 'm'), `.env.example must list ${v} without a value`);
  });

  test('`docker-compose config` renders with every value set, publishes only on 127.0.0.1, and refuses each one missing', { skip: !hasCompose && 'docker-compose is not installed' }, async () => {
    const all = Object.fromEntries(REQUIRED.map((v) => [v, `${v.toLowerCase()}-value`]));
    const { stdout } = await run('docker-compose', ['config'], { cwd: ROOT, env: { PATH: process.env.PATH, ...all } });
    const rendered = YAML.parse(stdout) as { services: Record<string, { ports?: (string | { host_ip?: string })[] }> };
    const ports = Object.values(rendered.services).flatMap((s) => s.ports ?? []);
    assert.ok(ports.length > 0);
    for (const p of ports) assert.ok(typeof p === 'string' ? p.startsWith('127.0.0.1:') : p.host_ip === '127.0.0.1', JSON.stringify(p));
    for (const v of REQUIRED) {
      const { [v]: _, ...rest } = all;
      const err = await run('docker-compose', ['config', '-q'], { cwd: ROOT, env: { PATH: process.env.PATH, ...rest } }).then(() => '', (e: { stderr: string }) => e.stderr);
      assert.match(err, new RegExp(`set ${v} in \\.env`), `compose started without ${v}`);
    }
  });
});
