export { dataSync, progressQuery, idpTokenSignal, reloginUpdate } from './dataSync';
export type { DataSyncInput, SyncProgress } from './dataSync';
export { syncGroup } from './syncGroup';
export type { SyncGroupInput, SyncGroupResult } from './syncGroup';
export { operationalJob, jobProgressQuery, approveUpdate, approveSignal, rejectSignal } from './operationalJob';
export type { OperationalJobInput, JobProgress } from './operationalJob';
export { testConnection } from './testConnection';
export type { TestConnectionInput } from './testConnection';
export { verifySync, verifyProgressQuery } from './verify';
export type { VerifySyncInput, VerifyProgress } from './verify';
export { cdcStream, cdcProgressQuery, cdcJoinSignal, cdcStopSignal } from './cdcStream';
export type { CdcStreamInput, CdcProgress, CdcStopRequest } from './cdcStream';
export { cdcSnapshot, cdcSnapshotProgressQuery } from './cdcSnapshot';
export type { CdcSnapshotInput, CdcSnapshotProgress } from './cdcSnapshot';
// Each type's Worker Versioning behaviour (PINNED or AUTO_UPGRADE), set as this module loads.
import './versioning';
