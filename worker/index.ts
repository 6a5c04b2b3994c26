/** supaqueue's Node worker: `createWorker({ connection, handlers })`. See worker/README.md. */
export { createWorker, type Worker } from './worker.ts';
export { PermanentError, JobAbortedError, type AbortCause } from './errors.ts';
export { WorkerConfigError, type WorkerOptions } from './config.ts';
export { DeadlineError, type DataSource, type ClaimRequest, type Lease, type CompleteItem, type FailItem, type HeartbeatRow } from './source.ts';
export type { Job, JobContext, JobStatus, Handler, Handlers, Progress } from './types.ts';
