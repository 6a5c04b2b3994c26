/**
 * The jobs API's SQL. Every function takes the request's transaction (already switched to the caller's
 * role and claims, see _shared/db.ts), so RLS decides what reads see and the engine's RPCs decide what
 * writes may do. Nothing here bypasses either.
 */
import type { Tx } from '../_shared/db.ts';
import { ApiError } from '../_shared/http.ts';
import type { EnqueueBody, ListQuery } from './schemas.ts';

/**
 * The public shape of a job, built by Postgres so timestamps keep microseconds and come out as ISO
 * strings. Lease internals (lease_id fences settles, worker_id, locked_until, fair_key, backoff
 * settings) stay private.
 */
const JOB_JSON = `jsonb_build_object(
  'id', j.id, 'tenant_id', j.tenant_id, 'type', j.type, 'status', j.status, 'payload', j.payload,
  'result', j.result, 'progress', j.progress, 'priority', j.priority, 'attempts', j.attempts,
  'max_attempts', j.max_attempts, 'last_error', j.last_error, 'errors', j.errors,
  'scheduled_at', j.scheduled_at, 'started_at', j.started_at, 'completed_at', j.completed_at,
  'created_at', j.created_at, 'updated_at', j.updated_at, 'cancel_requested_at', j.cancel_requested_at,
  'idempotency_key', j.idempotency_key, 'trace_id', j.trace_id, 'actor_id', j.actor_id, 'request_id', j.request_id
) as job`;

export type Job = Record<string, unknown> & { id: string; created_at: string };

/** One job visible to the caller (RLS), or null: absent and not-yours look the same. */
export async function getJob(tx: Tx, id: string): Promise<Job | null> {
  const rows = await tx.unsafe(`select ${JOB_JSON} from public.job_queue j where j.id = $1`, [id]);
  return (rows[0]?.job as Job | undefined) ?? null;
}

/** Newest first, keyset-paginated on (created_at, id); one extra row tells whether a next page exists. */
export async function listJobs(tx: Tx, q: ListQuery & { after?: { createdAt: string; id: string } }): Promise<{ jobs: Job[]; more: boolean }> {
  const where: string[] = [];
  const params: (string | number)[] = [];
  const param = (v: string | number) => `$${params.push(v)}`;
  if (q.status) where.push(`j.status = ${param(q.status)}::public.job_status`);
  if (q.type) where.push(`j.type = ${param(q.type)}`);
  if (q.tenant_id) where.push(`j.tenant_id = ${param(q.tenant_id)}::uuid`);
  if (q.after) where.push(`(j.created_at, j.id) < (${param(q.after.createdAt)}::timestamptz, ${param(q.after.id)}::uuid)`);
  const limit = q.limit ?? 20;
  const rows = await tx.unsafe(
    `select ${JOB_JSON} from public.job_queue j
     ${where.length ? `where ${where.join(' and ')}` : ''}
     order by j.created_at desc, j.id desc
     limit ${param(limit + 1)}`,
    params,
  );
  const jobs = rows.map((r) => r.job as Job);
  return { jobs: jobs.slice(0, limit), more: jobs.length > limit };
}

/**
 * The tenant to enqueue into: the given one, else the caller's only tenant. Several tenants and none
 * given is ambiguous (400); no tenant at all is TENANT_NOT_FOUND, the engine's answer for non-members.
 */
export async function resolveTenant(tx: Tx, given: string | undefined): Promise<string> {
  if (given) return given;
  const rows = await tx.unsafe(`select m.tenant_id from public.tenant_members m where m.user_id = (select auth.uid()) limit 2`);
  if (rows.length === 0) throw new ApiError('TENANT_NOT_FOUND', 'tenant not found');
  if (rows.length > 1) throw new ApiError('INVALID_ARGUMENT', 'tenant_id is required: you belong to several tenants');
  return rows[0].tenant_id as string;
}

export interface Envelope {
  traceId: string;
  requestId: string | null;
  actorId: string;
}

/** Enqueues through public.enqueue_jobs (membership, quota and validation are the engine's). */
export async function enqueueJob(tx: Tx, body: EnqueueBody, tenantId: string, env: Envelope): Promise<{ job: Job; created: boolean }> {
  const spec = {
    ...body,
    tenant_id: tenantId,
    trace_id: env.traceId,
    actor_id: env.actorId,
    ...(env.requestId ? { request_id: env.requestId } : {}),
  };
  const [row] = await tx`select job_id, created from public.enqueue_jobs(${tx.json([spec] as never)})`;
  const job = await getJob(tx, row.job_id as string);
  // Cannot happen for a member (they see their tenant's jobs); if it did, say so rather than 200 null.
  if (!job) throw new Error('enqueued job is not visible to its creator');
  return { job, created: row.created as boolean };
}

/** public.retry_job as the caller; raises QJ003/QJ004/QJ005 per the engine's rules. */
export async function retryJob(tx: Tx, id: string, extraAttempts: number): Promise<Job> {
  const rows = await tx.unsafe(`select ${JOB_JSON} from public.retry_job($1::uuid, $2::integer) j`, [id, extraAttempts]);
  if (!rows[0]) throw new ApiError('JOB_NOT_FOUND', 'job not found');
  return rows[0].job as Job;
}

/** public.cancel_job as the caller; raises QJ003/QJ004 per the engine's rules. */
export async function cancelJob(tx: Tx, id: string): Promise<Job> {
  const rows = await tx.unsafe(`select ${JOB_JSON} from public.cancel_job($1::uuid) j`, [id]);
  if (!rows[0]) throw new ApiError('JOB_NOT_FOUND', 'job not found');
  return rows[0].job as Job;
}
