/**
 * The server API's job calls: each one statement on the engine's public functions (or a read of
 * public.job_queue), run as the service role by the caller (queue.ts). No queue rule lives here.
 */
import type { Sql } from 'postgres';
import { invalidArgument } from './errors.ts';
import type { EnqueueResult, EnqueueSpec, Job, JobStatus } from './types.ts';
import { JOB_JSON as JOB_OBJECT } from '../supabase/functions/_supaqueue/contract.ts';

/** A job exactly as the jobs API returns it (the shared JOB_JSON, client/types.ts Job). */
const JOB_JSON = `${JOB_OBJECT} as job`;

/** Page size of listJobs: a backend may read more per page than the HTTP API's 100. */
export const LIST_LIMIT = { default: 100, max: 1000 } as const;

export interface ListJobsParams {
  tenant_id?: string;
  status?: JobStatus;
  type?: string;
  /** 1..1000, default 100. */
  limit?: number;
  /** nextCursor of the previous page. */
  cursor?: string;
}

export async function enqueueJobs(q: Sql, specs: readonly EnqueueSpec[]): Promise<EnqueueResult[]> {
  // As text, then jsonb: the same JSON whether or not the driver prepares statements.
  const rows = await q<{ job_id: string; created: boolean }[]>`
    select job_id, created from public.enqueue_jobs(${JSON.stringify(specs)}::text::jsonb)`;
  return rows.map((r) => ({ id: r.job_id, created: r.created }));
}

export async function getJob(q: Sql, id: string): Promise<Job | null> {
  const rows = await q.unsafe(`select ${JOB_JSON} from public.job_queue j where j.id = $1::uuid`, [id]);
  return (rows[0]?.job as Job | undefined) ?? null;
}

// Keyset cursor over (created_at, id), created_at as Postgres printed it (a JS Date would drop the
// microseconds and skip or repeat rows). Opaque, not secret: the service role sees every job anyway.
function encodeCursor(job: Job): string {
  return Buffer.from(JSON.stringify([job.created_at, job.id])).toString('base64url');
}

function decodeCursor(cursor: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'string')) return v as [string, string];
  } catch {
    // fall through
  }
  throw invalidArgument('cursor is not one listJobs returned');
}

/** Newest first, across tenants unless tenant_id is given. */
export async function listJobs(q: Sql, p: ListJobsParams): Promise<{ jobs: Job[]; nextCursor: string | null }> {
  const limit = p.limit ?? LIST_LIMIT.default;
  if (!Number.isInteger(limit) || limit < 1 || limit > LIST_LIMIT.max) {
    throw invalidArgument(`limit must be a whole number from 1 to ${LIST_LIMIT.max}`);
  }
  const where: string[] = [];
  const params: (string | number)[] = [];
  const param = (v: string | number) => `$${params.push(v)}`;
  if (p.tenant_id !== undefined) where.push(`j.tenant_id = ${param(p.tenant_id)}::uuid`);
  if (p.status !== undefined) where.push(`j.status = ${param(p.status)}::public.job_status`);
  if (p.type !== undefined) where.push(`j.type = ${param(p.type)}`);
  if (p.cursor !== undefined) {
    const [createdAt, id] = decodeCursor(p.cursor);
    // ::text first: a parameter typed timestamptz is serialised by the driver through a JS Date,
    // which drops the microseconds (and the next page would skip rows).
    where.push(`(j.created_at, j.id) < (${param(createdAt)}::text::timestamptz, ${param(id)}::uuid)`);
  }
  const rows = await q.unsafe(
    `select ${JOB_JSON} from public.job_queue j ${where.length ? `where ${where.join(' and ')}` : ''}
     order by j.created_at desc, j.id desc limit ${param(limit + 1)}`,
    params,
  );
  const jobs = rows.map((r) => r.job as Job);
  const page = jobs.slice(0, limit);
  return { jobs: page, nextCursor: jobs.length > limit ? encodeCursor(page[page.length - 1]) : null };
}

/** public.cancel_job (pending -> cancelled; processing -> cancellation requested). */
export async function cancelJob(q: Sql, id: string): Promise<Job> {
  const rows = await q.unsafe(`select ${JOB_JSON} from public.cancel_job($1::uuid) j`, [id]);
  return rows[0].job as Job;
}

/** public.retry_job (failed or cancelled -> pending; extraAttempts for an exhausted job). */
export async function retryJob(q: Sql, id: string, extraAttempts: number): Promise<Job> {
  const rows = await q.unsafe(`select ${JOB_JSON} from public.retry_job($1::uuid, $2::integer) j`, [id, extraAttempts]);
  return rows[0].job as Job;
}
