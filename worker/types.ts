/** The shapes handlers see. A Job is the public.job_queue row exactly as claim_jobs returns it. */
import type { Logger } from 'pino';

export type JobStatus = 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled';

/** A claimed job: the public.job_queue row (snake_case, as supabase-js and SQL show it). */
export interface Job<P = any> {
  id: string;
  tenant_id: string;
  type: string;
  status: JobStatus;
  payload: P;
  result: unknown;
  priority: number;
  /** This attempt's number (1-based): claim_jobs counts it before the handler runs. */
  attempts: number;
  max_attempts: number;
  scheduled_at: Date;
  backoff_base_ms: number;
  backoff_max_ms: number;
  worker_id: string;
  /** Fences every settle: only the holder of this lease can complete, fail or release the job. */
  lease_id: string;
  cancel_requested_at: Date | null;
  started_at: Date;
  completed_at: Date | null;
  created_at: Date;
  updated_at: Date;
  last_error: string | null;
  errors: Array<{ attempt: number; at: string; error: string; worker_id: string | null; retryable?: boolean }>;
  progress: unknown;
  idempotency_key: string | null;
  trace_id: string | null;
  actor_id: string | null;
  request_id: string | null;
}

/** What a handler reports with ctx.progress (stored in job_queue.progress; under 4 KiB). */
export interface Progress {
  percent?: number;
  message?: string;
  [key: string]: unknown;
}

export interface JobContext {
  /** Aborted when the lease is lost, the job is cancelled, it timed out, or shutdown grace ran out. */
  signal: AbortSignal;
  jobId: string;
  tenantId: string;
  traceId: string | null;
  actorId: string | null;
  requestId: string | null;
  /** 1-based number of this attempt. */
  attempt: number;
  maxAttempts: number;
  workerId: string;
  /**
   * Records progress on the row (visible to the tenant through RLS / Realtime). Resolves false when the
   * lease is gone or the database is unreachable (progress is best effort); rejects on invalid input.
   */
  progress(progress: Progress): Promise<boolean>;
  /** pino child bound to jobId, type, tenantId, attempt and trace_id (the edge functions' log field too). */
  logger: Logger;
}

export type Handler<P = any> = (job: Job<P>, ctx: JobContext) => Promise<unknown>;
export type Handlers = Record<string, Handler>;
