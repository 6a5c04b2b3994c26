/**
 * Types of the jobs HTTP API (supabase/functions/jobs), as a frontend sees them.
 */
import type { ErrorName } from '../supabase/functions/_supaqueue/errors.ts';
import { TERMINAL_STATUSES as TERMINAL, type JobStatus } from '../supabase/functions/_supaqueue/contract.ts';

export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[];

/** The public.job_status enum (the contract, from the generated database types). */
export type { JobStatus };

/** Statuses a job stays in until someone retries it. */
export const TERMINAL_STATUSES: readonly JobStatus[] = TERMINAL;

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
  /** The worker that ran the latest attempt (kept after it settled); null until the first claim. */
  worker_id: string | null;
  /** The user who enqueued it (their token's id); null for service jobs enqueued on behalf of nobody. */
  submitted_by: string | null;
  /**
   * Where it waits; only in GET /jobs/:id and POST /jobs answers (not in listings). null once it runs
   * or finished.
   */
  position?: JobPosition | null;
}

/**
 * Where a waiting job stands. ready: `ahead` ready jobs will be claimed before it if no more work
 * arrives (capped at 1,000: `capped` means "at least ahead"); under fair queueing a job enqueued later
 * by a tenant with no backlog may still be served first, and the count spans every job type and
 * tenant. latency_seconds: how long the job at the head of the line has been ready. delayed: it
 * joins the line at due_at (a delay or a retry's backoff).
 */
export type JobPosition =
  | { state: 'ready'; ahead: number; capped: boolean; latency_seconds: number }
  | { state: 'delayed'; due_at: string };

/** GET /jobs/limits: the caller's effective tier in a tenant and their usage (null limit = none). */
export interface UserLimits {
  tenant_id: string;
  user_id: string;
  /** The effective tier: the member's own override, else the tenant's; null = no per-user limits. */
  tier: string | null;
  tier_source: 'member' | 'tenant' | null;
  max_active_jobs_per_user: number | null;
  max_payload_bytes: number | null;
  max_attempts: number | null;
  /** The caller's pending + processing jobs in the tenant. */
  active_jobs: number;
}

export interface EnqueueJobInput {
  /** JOB_TYPE_PATTERN (supabase/functions/_supaqueue/contract.ts). */
  type: string;
  /** A JSON object or array, at most 256 KiB. */
  payload?: { [key: string]: Json | undefined } | Json[];
  /** PRIORITY (contract.ts): -100..100, higher runs first. */
  priority?: number;
  /** ISO 8601 with an offset; or use delay_ms. */
  run_at?: string;
  delay_ms?: number;
  /** MAX_ATTEMPTS (contract.ts): 1..1000 (default 3). */
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
  /** Only the jobs the caller submitted. */
  mine?: boolean;
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
  /** Facts of the error, when the API gives them: CONCURRENT_JOB_LIMIT has { limit, active, adding, tier }. */
  details: Record<string, unknown> | null;
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

/**
 * What a job's live update carries (Realtime broadcasts and every snapshot): the fields a status view
 * renders. payload, result and the error history are not broadcast: read them with getJob.
 * last_error is cut to 1000 characters in broadcasts.
 */
export type JobState = Pick<Job,
  'id' | 'tenant_id' | 'type' | 'status' | 'progress' | 'attempts' | 'max_attempts' | 'last_error' |
  'scheduled_at' | 'started_at' | 'completed_at' | 'created_at' | 'updated_at' | 'cancel_requested_at'>;

/** Where an update came from: a Realtime broadcast, the snapshot read after each (re)subscription or resync, or a poll. */
export type JobUpdateSource = 'realtime' | 'snapshot' | 'poll';

/** connecting: joining the channel; live: subscribed; polling: Realtime unavailable or failed; stopped. */
export type WatchMode = 'connecting' | 'live' | 'polling' | 'stopped';

export interface WatchOptions extends RequestOptions {
  /** Poll interval while Realtime is unavailable (default 1000 ms). */
  pollIntervalMs?: number;
  /** While live, read a snapshot this often anyway, in case Realtime dropped a message (default 30000 ms). */
  resyncIntervalMs?: number;
  /** After the channel closed, try to join again this long later, polling meanwhile (default 15000 ms). */
  resubscribeMs?: number;
  /** Each change of mode, with the channel status that caused it (SUBSCRIBED, CHANNEL_ERROR, TIMED_OUT, CLOSED, NO_TRANSPORT). */
  onMode?: (mode: WatchMode, reason: string) => void;
  /** A non-transient API error (e.g. JOB_NOT_FOUND, NOT_AUTHENTICATED); the watch stops. */
  onError?: (error: JobsError) => void;
}

export interface WatchJobsParams {
  tenantId: string;
}

export interface JobWatch {
  readonly mode: WatchMode;
  /** Leaves the channel and stops polling; no callback runs after it resolves. */
  stop(): Promise<void>;
}
