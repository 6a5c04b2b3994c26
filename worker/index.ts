/** supaqueue's Node worker: `createWorker({ connection, handlers })`. See worker/README.md. */
export { createWorker, type Worker } from './worker.ts';
export { PermanentError, JobAbortedError, type AbortCause } from './errors.ts';
export { WorkerConfigError, type WorkerOptions } from './config.ts';
export type { Job, JobContext, JobStatus, Handler, Handlers, Progress } from './types.ts';
