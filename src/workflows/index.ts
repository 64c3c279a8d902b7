export { dataSync, progressQuery, idpTokenSignal, reloginUpdate } from './dataSync';
export type { DataSyncInput, SyncProgress } from './dataSync';
