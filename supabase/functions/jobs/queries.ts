/**
 * The jobs API's SQL. Every function takes the request's transaction (already switched to the caller's
 * role and claims, see _supaqueue/db.ts), so RLS decides what reads see and the engine's RPCs decide what
 * writes may do. Nothing here bypasses either.
 */
import { JOB_JSON } from '../_supaqueue/contract.ts';
import type { Tx } from '../_supaqueue/db.ts';
import { ApiError } from '../_supaqueue/http.ts';
import { BULK_SOURCE_STATUSES, type BulkBody, type EnqueueBody, type JobFilter, type ListQuery } from './schemas.ts';

/**
 * A job as the API answers it: its JSON as text, serialised by Postgres and passed through untouched
 * (never parsed here, so no payload, however deep or large its numbers, can break a response), plus
 * the keyset fields, created_at printed exactly as in the JSON.
 */
export interface Job {
  id: string;
  created_at: string;
  json: string;
}

const JOB_ROW = `j.id, to_jsonb(j.created_at) #>> '{}' as created_at, ${JOB_JSON}::text as json`;

/**
 * The same, plus `position` for one job (GET /jobs/:id, POST /jobs): where it waits (public.job_position,
 * a bounded walk of the ready line; null once it runs or finished). Not in listings: one walk per row.
 */
const JOB_ROW_WITH_POSITION = `j.id, to_jsonb(j.created_at) #>> '{}' as created_at,
  (${JOB_JSON} || jsonb_build_object('position', case when j.status = 'pending' then public.job_position(j.id) end))::text as json`;

/** One job visible to the caller (RLS), with its position, or null: absent and not-yours look the same. */
export async function getJob(tx: Tx, id: string): Promise<Job | null> {
  const rows = await tx.unsafe<Job[]>(`select ${JOB_ROW_WITH_POSITION} from public.job_queue j where j.id = $1`, [id]);
  return rows[0] ?? null;
}

type Param = (v: string | number) => string;

/**
 * The WHERE conditions of a job filter (listing and bulk actions). Every condition narrows the walk of
 * the caller's tenant index ranges (RLS); search by id or idempotency key is an index lookup. The
 * payload filter is JSON containment, checked on the rows that walk reaches (no payload index: it
 * would cost every enqueue), so combine it with a type or time range on very large tenants.
 */
export function jobFilter(q: JobFilter & { statuses?: readonly string[] }, param: Param): string[] {
  const where: string[] = [];
  if (q.status) where.push(`j.status = ${param(q.status)}::public.job_status`);
  if (q.statuses) where.push(`j.status = any (${param(`{${q.statuses.join(',')}}`)}::public.job_status[])`);
  if (q.type) where.push(`j.type = ${param(q.type)}`);
  if (q.tenant_id) where.push(`j.tenant_id = ${param(q.tenant_id)}::uuid`);
  if (q.created_after) where.push(`j.created_at >= ${param(q.created_after)}::timestamptz`);
  if (q.created_before) where.push(`j.created_at < ${param(q.created_before)}::timestamptz`);
  // ::text first: a parameter typed jsonb would be JSON-encoded again by the driver (a string scalar).
  if (q.payload) where.push(`j.payload @> ${param(q.payload)}::text::jsonb`);
  if (q.search) {
    const key = param(q.search);
    where.push(UUID_RE.test(q.search) ? `(j.id = ${key}::text::uuid or j.idempotency_key = ${key}::text)` : `j.idempotency_key = ${key}`);
  }
  return where;
}
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The caller's tenants as a value the planner can see (RLS alone hides them in a sub-select, and a
 * caller with no tenant would scan the table): null for a super admin, who sees every tenant.
 */
async function visibleTenants(tx: Tx): Promise<string[] | null> {
  const [row] = await tx<{ ids: string[] | null }[]>`
    select case when (select supaqueue.is_super_admin()) then null
                else array(select supaqueue.visible_tenant_ids()) end as ids`;
  return row.ids;
}

/** Newest first, keyset-paginated on (created_at, id); one extra row tells whether a next page exists. */
export async function listJobs(tx: Tx, q: ListQuery & { after?: { createdAt: string; id: string }; userId: string }): Promise<{ jobs: Job[]; more: boolean }> {
  const params: (string | number)[] = [];
  const param = (v: string | number) => `$${params.push(v)}`;
  const where = jobFilter(q, param);
  // The caller's own jobs: (tenant_id, submitted_by, created_at desc, id desc) serves it in order.
  if (q.mine) where.push(`j.submitted_by = ${param(q.userId)}::uuid`);
  const tenants = await visibleTenants(tx);
  if (tenants) where.push(`j.tenant_id = any (${param(`{${tenants.join(',')}}`)}::uuid[])`);
  // ::text first: a parameter typed timestamptz is turned into a JS Date by the driver, which drops the
  // microseconds, and a page ending inside one bulk enqueue (one created_at) would end the listing.
  if (q.after) where.push(`(j.created_at, j.id) < (${param(q.after.createdAt)}::text::timestamptz, ${param(q.after.id)}::uuid)`);
  const limit = q.limit ?? 20;
  const rows = await tx.unsafe(
    `select ${JOB_ROW} from public.job_queue j
     ${where.length ? `where ${where.join(' and ')}` : ''}
     order by j.created_at desc, j.id desc
     limit ${param(limit + 1)}`,
    params,
  );
  const jobs = rows as unknown as Job[];
  return { jobs: jobs.slice(0, limit), more: jobs.length > limit };
}

/**
 * Bulk retry/cancel: the newest jobs matching the filter in the action's source statuses, at most the
 * engine's max_bulk_jobs(), handed to public.act_on_jobs, which checks the caller is a tenant admin or
 * super admin (FORBIDDEN) and applies the one-job rules. `more` says further jobs matched.
 */
export async function bulkAct(tx: Tx, body: BulkBody): Promise<{ jobs: { job_id: string; status: string }[]; more: boolean; limit: number }> {
  const { status, payload, ...rest } = body.filter;
  const sources: readonly string[] = BULK_SOURCE_STATUSES[body.action];
  if (status && !sources.includes(status)) {
    throw new ApiError('INVALID_ARGUMENT', `${body.action} applies to ${sources.join(' or ')} jobs`);
  }
  const params: (string | number)[] = [];
  const param = (v: string | number) => `$${params.push(v)}`;
  const where = jobFilter({ ...rest, status, statuses: status ? undefined : sources, payload: payload ? JSON.stringify(payload) : undefined }, param);
  const [{ max }] = await tx`select supaqueue.max_bulk_jobs() as max`;
  const ids = (await tx.unsafe(
    `select j.id from public.job_queue j ${where.length ? `where ${where.join(' and ')}` : ''}
     order by j.created_at desc, j.id desc limit ${param(Number(max) + 1)}`, params)).map((r) => r.id as string);
  const jobs = await tx<{ job_id: string; status: string }[]>`
    select job_id, status from public.act_on_jobs(${body.action}, ${ids.slice(0, Number(max))}::uuid[],
                                                   ${body.extra_attempts ?? 0}::integer, ${body.dry_run ?? false})`;
  return { jobs: [...jobs], more: ids.length > Number(max), limit: Number(max) };
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

/** public.my_limits: the caller's effective tier limits in the tenant and their active jobs. */
export async function myLimits(tx: Tx, tenantId: string): Promise<string> {
  const [row] = await tx`select public.my_limits(${tenantId}::uuid)::text as json`;
  return row.json as string;
}

/** public.retry_job as the caller; raises QJ003/QJ004/QJ005 per the engine's rules. */
export async function retryJob(tx: Tx, id: string, extraAttempts: number): Promise<Job> {
  const rows = await tx.unsafe<Job[]>(`select ${JOB_ROW} from public.retry_job($1::uuid, $2::integer) j`, [id, extraAttempts]);
  if (!rows[0]) throw new ApiError('JOB_NOT_FOUND', 'job not found');
  return rows[0];
}

/** public.cancel_job as the caller; raises QJ003/QJ004 per the engine's rules. */
export async function cancelJob(tx: Tx, id: string): Promise<Job> {
  const rows = await tx.unsafe<Job[]>(`select ${JOB_ROW} from public.cancel_job($1::uuid) j`, [id]);
  if (!rows[0]) throw new ApiError('JOB_NOT_FOUND', 'job not found');
  return rows[0];
}
