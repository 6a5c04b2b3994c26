/**
 * Types of the jobs HTTP API (supabase/functions/jobs), as a frontend sees them.
 */
import type { ErrorName } from '../supabase/functions/_shared/errors.ts';

export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[];

export type JobStatus = 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled';

/** Statuses a job stays in until someone retries it. */
export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

export interface JobAttemptError {
  attempt: number;
  at: string;
  error: string;
  worker_id?: string;
  retryable?: boolean;
}

/** A job as the API returns it (timestamps are ISO 8601 strings with microseconds). */
export interface Job {
  id: string;
  tenant_id: string;
  type: string;
  status: JobStatus;
  payload: Json;
  result: Json | null;
  progress: { percent?: number; message?: string; [key: string]: Json | undefined } | null;
  priority: number;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  errors: JobAttemptError[];
  scheduled_at: string;
  started_at: string | null;
  completed_at: string | null;
  created_at: string;
  updated_at: string;
  cancel_requested_at: string | null;
  idempotency_key: string | null;
  trace_id: string | null;
  actor_id: string | null;
  request_id: string | null;
}

export interface EnqueueJobInput {
  /** ^[a-z][a-z0-9_.:-]{0,127}$ */
  type: string;
  /** A JSON object or array, at most 256 KiB. */
  payload?: { [key: string]: Json | undefined } | Json[];
  /** -100..100, higher runs first. */
  priority?: number;
  /** ISO 8601 with an offset; or use delay_ms. */
  run_at?: string;
  delay_ms?: number;
  /** 1..100 (default 3). */
  max_attempts?: number;
  /** One job per (tenant, key): a repeat returns the existing job. */
  idempotency_key?: string;
  /** Required only when the user belongs to several tenants. */
  tenant_id?: string;
}

export interface ListJobsParams {
  status?: JobStatus;
  type?: string;
  tenant_id?: string;
  /** 1..100, default 20. */
  limit?: number;
  /** next_cursor of the previous page. */
  cursor?: string;
}

/** Codes of the API (errors.ts) plus the client's own for failures that never reached it. */
export type JobsErrorCode =
  | ErrorName
  | 'NOT_FOUND' | 'METHOD_NOT_ALLOWED' | 'UNSUPPORTED_MEDIA_TYPE' | 'INTERNAL' | 'UNAVAILABLE'
  | 'NETWORK_ERROR' | 'TIMEOUT' | 'ABORTED';

export interface JobsError {
  code: JobsErrorCode;
  message: string;
  /** HTTP status, or null when no response arrived. */
  status: number | null;
  /** The request's trace id (quote it in bug reports), when a response arrived. */
  traceId: string | null;
  /** Seconds to wait, from Retry-After on 429/503. */
  retryAfterSeconds: number | null;
}

export type JobsResult<T> = { data: T; error: null } | { data: null; error: JobsError };

export type EnqueueResult = { data: Job; created: boolean; error: null } | { data: null; created: null; error: JobsError };

export type ListJobsResult = { data: Job[]; nextCursor: string | null; error: null } | { data: null; nextCursor: null; error: JobsError };

export interface RequestOptions {
  /** The function's name (default `jobs`). */
  functionName?: string;
  /** Sent as x-trace-id (short, [A-Za-z0-9._:-]); stored on enqueued jobs for log correlation. */
  traceId?: string;
  /** Sent as x-request-id; stored on enqueued jobs. */
  requestId?: string;
  signal?: AbortSignal;
}

export interface WaitForJobOptions extends RequestOptions {
  /** Poll interval (default 1000 ms). */
  intervalMs?: number;
  /** Give up after this long with code TIMEOUT (default 60000 ms). */
  timeoutMs?: number;
}
