// Fixed seeds of the generative suite, cdc mode on a private wal_level=logical server (docs/generative.md); the list is in seeds.ts.
import { CDC_SEEDS } from './seeds';
import { seedSuite } from './suite';

seedSuite('generative suite, fixed seeds: cdc (start, stream, stop then start, a join while streaming)', CDC_SEEDS);
