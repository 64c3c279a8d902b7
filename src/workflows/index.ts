export { dataSync, progressQuery } from './dataSync';
export type { DataSyncInput, SyncProgress } from './dataSync';
