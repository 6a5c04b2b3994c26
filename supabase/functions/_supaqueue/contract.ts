/**
 * The queue's contract in TypeScript: the job type format, the bounds of a job's fields, the statuses
 * and the error codes, as the SQL engine defines them. One home for each rule on the TS side: the edge
 * functions (zod schemas), the worker, the client and supaqueue/server import it from here. SQL owns
 * the rules (supaqueue.job_type_pattern(), supaqueue.max_attempts_limit(), the job_status enum, the
 * QJxxx codes); tests/contract.test.ts checks that SQL and this file agree.
 * No package imports: Node and Deno both load this file as it is.
 */
import { Constants, type Database } from './database.types.ts';

export { ERROR_CODES, lookupSqlState, type ErrorName, type SqlState } from './errors.ts';
export { MAX_JSON_DEPTH } from './limits.ts';

/** A job type (job_queue.type, job_schedules.job_type, a worker's handler key): supaqueue.job_type_pattern(). */
export const JOB_TYPE_PATTERN = '^[a-z][a-z0-9_.:-]{0,127}$';
export const JOB_TYPE_RE = new RegExp(JOB_TYPE_PATTERN);

/** max_attempts of a job or schedule: 1..supaqueue.max_attempts_limit(), default 3 (parse_job_specs). */
export const MAX_ATTEMPTS = Object.freeze({ min: 1, max: 1000, default: 3 });

/** priority of a job or schedule (parse_job_specs, check_schedule_spec): higher runs first. */
export const PRIORITY = Object.freeze({ min: -100, max: 100 });

/** extra_attempts of one retry (supaqueue.retry_job). */
export const EXTRA_ATTEMPTS = Object.freeze({ min: 0, max: 100 });

/** lease_seconds of a claim or heartbeat (claim_jobs, heartbeat_jobs); default supaqueue.default_lease_seconds(). */
export const LEASE_SECONDS = Object.freeze({ min: 0.1, max: 86400, default: 15 });

/**
 * A worker's heartbeat interval when the lease allows it (at most a third of the lease). Shorter than
 * supaqueue.worker_session_grace() (1 s), so a live worker whose heartbeat connection was replaced
 * registers the new session before the reaper may free its jobs.
 */
export const HEARTBEAT_INTERVAL_MS = 500;

/** The public.job_status enum, from the generated database types (npm run gen:types). */
export type JobStatus = Database['public']['Enums']['job_status'];
export const JOB_STATUSES = Constants.public.Enums.job_status;

/** Statuses a job stays in until someone retries it. */
export const TERMINAL_STATUSES = ['completed', 'failed', 'cancelled'] as const satisfies readonly JobStatus[];

/**
 * The public shape of a job, as SQL over `public.job_queue j` (or a function returning its rows, aliased
 * j): built by Postgres, so timestamps keep microseconds and come out as ISO strings. The jobs API,
 * supaqueue/server and client/types.ts Job share it. worker_id (who ran the last attempt), started_at,
 * completed_at and submitted_by (the user who enqueued it; null for service jobs enqueued for nobody)
 * are part of it; the lease fence (lease_id) and backoff settings stay private.
 */
export const JOB_JSON = `jsonb_build_object(
  'id', j.id, 'tenant_id', j.tenant_id, 'type', j.type, 'status', j.status, 'payload', j.payload,
  'result', j.result, 'progress', j.progress, 'priority', j.priority, 'attempts', j.attempts,
  'max_attempts', j.max_attempts, 'last_error', j.last_error, 'errors', j.errors,
  'scheduled_at', j.scheduled_at, 'started_at', j.started_at, 'completed_at', j.completed_at,
  'created_at', j.created_at, 'updated_at', j.updated_at, 'cancel_requested_at', j.cancel_requested_at,
  'idempotency_key', j.idempotency_key, 'trace_id', j.trace_id, 'actor_id', j.actor_id, 'request_id', j.request_id,
  'worker_id', j.worker_id, 'submitted_by', j.submitted_by
)`;
