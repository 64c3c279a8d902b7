// Starting and querying syncs, verifies, jobs and schedules, split by feature; the CLI loads only the part a command uses.
export * from './cdc';
export * from './connection';
export * from './indexedStart';
export * from './jobs';
export * from './runHealth';
export * from './runs';
export * from './schedules';
export * from './sync';
export * from './verify';
