// The node:test shape shared by the fixed seeds and the regression files: one harness per file
// (Temporal dev server, worker, databases), one test per case, `todo` while its finding is open.
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import type { Case } from './case';
import { todoFor, type FindingId } from './findings';
import { generate } from './generator';
import { Harness } from './harness';
import { runCase, type CaseResult } from './runCase';

/** One fixed seed: the case it generates, and the open finding it hits on today's main (if any). */
export interface FixedSeed {
  seed: number;
  finding?: FindingId;
}

const PER_CASE_MS = 5 * 60_000;

async function runAndAssert(h: Harness, c: Case): Promise<void> {
  const r: CaseResult = await runCase(h, c);
  if (process.env.GENERATIVE_RESULTS) await appendFile(process.env.GENERATIVE_RESULTS, `${JSON.stringify({ ...r, log: undefined })}\n`);
  assert.ok(r.ok, `seed ${c.seed} (${c.mode}) failed: ${r.failure?.signature}\nreproduce: npm run test:generative -- --seed ${c.seed}\n${r.log.join('\n')}`);
}

export function seedSuite(title: string, seeds: FixedSeed[]): void {
  describe(title, () => {
    let h: Harness | undefined;
    before(async () => {
      h = await Harness.start();
    });
    after(() => h?.stop());
    for (const s of seeds) {
      const c = generate(s.seed);
      const shape = c.rounds.map((r) => `${r.event}${r.fault ? `+${r.fault}` : ''}`).join(', ') || 'no rounds';
      test(`seed ${s.seed}: ${c.mode}, ${shape}`, { ...todoFor(s.finding), timeout: PER_CASE_MS }, () => runAndAssert(h!, c));
    }
  });
}

/** A shrunk case written by the shrinker (test/generative/regressions/). */
export function regressionTest(finding: FindingId | undefined, c: Case): void {
  describe(`generative regression: seed ${c.seed} (${c.mode})`, () => {
    let h: Harness | undefined;
    before(async () => {
      h = await Harness.start();
    });
    after(() => h?.stop());
    test(`shrunk case of seed ${c.seed}${finding ? ` (${finding})` : ''}`, { ...todoFor(finding), timeout: PER_CASE_MS }, () => runAndAssert(h!, c));
  });
}
