// Fixed seeds of the generative suite, batch modes (docs/generative.md); the list is in seeds.ts.
import { BATCH_SEEDS } from './seeds';
import { seedSuite } from './suite';

seedSuite('generative suite, fixed seeds: full-refresh, append, upsert (cursor, merge, soft deletes), compare-then-copy re-sync', BATCH_SEEDS);
