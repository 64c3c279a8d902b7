// No servers: the fixed seeds cover every mode, event kind and fault, a seed is the same case
// every time, and every finding a seed names is in the findings table.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EVENT_KINDS, eventsOf, FAULTS, faultsOf, MODES } from './case';
import { FINDINGS } from './findings';
import { generate, modeOfSeed } from './generator';
import { BATCH_SEEDS, CDC_SEEDS } from './seeds';

const all = [...BATCH_SEEDS, ...CDC_SEEDS];

test('the fixed seeds cover every mode, every event kind and every fault at least once', () => {
  const cases = all.map((s) => generate(s.seed));
  assert.deepEqual(MODES.filter((m) => !cases.some((c) => c.mode === m)), [], 'modes not covered');
  assert.deepEqual(EVENT_KINDS.filter((e) => !cases.some((c) => eventsOf(c).includes(e))), [], 'event kinds not covered');
  assert.deepEqual(FAULTS.filter((f) => !cases.some((c) => faultsOf(c).includes(f))), [], 'faults not covered');
});

test('a seed is its case: generated twice, the same; the mode is the seed residue (what --mode picks by)', () => {
  for (const s of all) {
    assert.deepEqual(generate(s.seed), generate(s.seed));
    assert.equal(generate(s.seed).mode, modeOfSeed(s.seed));
  }
  assert.notDeepEqual(generate(1), generate(8), 'two seeds of one mode differ');
});

test('every finding a seed names is in the table, and the collation finding (fixed by i28) is required', () => {
  for (const s of all) if (s.finding) assert.ok(FINDINGS[s.finding], s.finding);
  assert.equal(FINDINGS['collation-resync'].fixed, true);
  assert.ok(all.some((s) => s.seed === 1468 && !s.finding), 'the collation seed runs as a required test');
});
