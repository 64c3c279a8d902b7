import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import YAML from 'yaml';

const ROOT = path.join(__dirname, '..');

describe('what ships: a supported Node in the image, nothing published beyond this machine', () => {
  test('every image stage runs Node 22 LTS or newer (Node 20 is end of life since 2026-04-30)', () => {
    const froms = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').split('\n').filter((l) => /^FROM /.test(l));
    assert.ok(froms.length > 0);
    for (const f of froms) assert.ok(Number(/^FROM node:(\d+)/.exec(f)?.[1]) >= 22, f);
  });

  test('docker-compose publishes every port on 127.0.0.1 only', () => {
    const compose = YAML.parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { ports?: string[] }> };
    const ports = Object.entries(compose.services).flatMap(([name, s]) => (s.ports ?? []).map((p) => [name, String(p)] as const));
    assert.ok(ports.length > 0);
    for (const [name, p] of ports) assert.match(p, /^127\.0\.0\.1:\d+:\d+$/, `${name} publishes ${p}`);
  });
});
