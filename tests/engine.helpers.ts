/**
 * Shared by the tests/engine.*.test.ts files: the worker-side calls (claim, settle, heartbeat) made as
 * the service role, extra single-connection clients for concurrency tests, and polling.
 */
import postgres from 'postgres';
import { asService, type Sql } from './helpers/db.ts';

export interface ClaimedJob {
  id: string;
  tenant_id: string;
  type: string;
  status: string;
  priority: number;
  attempts: number;
  max_attempts: number;
  lease_id: string;
  worker_id: string;
  payload: Record<string, unknown>;
}

export interface Lease { id: string; lease_id: string }

/**
 * Ends every pending job of the file's database (as cancelled), so a test's claims see only the jobs it
 * enqueues itself; the tests of one file share a database.
 */
export async function clearPendingJobs(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`delete from supaqueue.job_ready`;
    await tx`delete from supaqueue.job_delayed`;
    await tx`update public.job_queue set status = 'cancelled', completed_at = now() where status = 'pending'`;
  });
}

/** claim_jobs as the worker calls it. */
export function claim(sql: Sql, worker: string, batch = 10, opts: { types?: string[]; lease?: number } = {}): Promise<ClaimedJob[]> {
  return asService(sql, async (tx) => (await tx`
    select * from public.claim_jobs(${worker}, ${opts.types ?? null}::text[], ${batch}::int, ${opts.lease ?? 30}::float8)
  `) as unknown as ClaimedJob[]);
}

/** complete_jobs; returns the ids this call completed. */
export async function complete(sql: Sql, jobs: Lease[]): Promise<string[]> {
  const rows = await asService(sql, (tx) => tx`
    select id from public.complete_jobs(${jobs.map((j) => j.id)}::uuid[], ${jobs.map((j) => j.lease_id)}::uuid[])`);
  return rows.map((r) => r.id as string);
}

/** fail_job; returns the job's new status, or null when the lease was stale. */
export async function fail(sql: Sql, job: Lease, error = 'boom', retryable = true): Promise<string | null> {
  const [row] = await asService(sql, (tx) => tx`
    select public.fail_job(${job.id}::uuid, ${job.lease_id}::uuid, ${error}, ${retryable}) as status`);
  return row.status as string | null;
}

export interface Beat { id: string; lease_valid: boolean; cancel_requested: boolean; locked_until: Date | null }

export function heartbeat(sql: Sql, jobs: Lease[], lease = 30): Promise<Beat[]> {
  return asService(sql, async (tx) => (await tx`
    select * from public.heartbeat_jobs(${jobs.map((j) => j.id)}::uuid[], ${jobs.map((j) => j.lease_id)}::uuid[], ${lease}::float8)
  `) as unknown as Beat[]);
}

/** The job row as the owner sees it (no RLS). */
export async function jobRow(sql: Sql, id: string): Promise<Record<string, any>> {
  const [row] = await sql`select * from public.job_queue where id = ${id}`;
  return row;
}

/** n extra clients of one connection each, for tests where separate sessions matter. */
export function connections(url: string, n: number): Sql[] {
  return Array.from({ length: n }, () => postgres(url, { max: 1, onnotice: () => {} }));
}

export async function closeAll(clients: Sql[]): Promise<void> {
  await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
}

/** Polls until fn returns a truthy value (returned) or the timeout passes (throws). */
export async function waitFor<T>(fn: () => Promise<T>, { timeoutMs = 20_000, intervalMs = 50 } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Waits until the leases of the given jobs have expired by the database's clock: a lease lasts as long
 * as its worker's row in supaqueue.workers (renewed by claims and heartbeats).
 */
export function leasesExpired(sql: Sql, ids: string[]): Promise<boolean> {
  return waitFor(async () => {
    const [r] = await sql`
      select coalesce(bool_and(w.expires_at < now()), true) as expired
      from supaqueue.job_leases l join supaqueue.workers w on w.id = l.worker_id
      where l.job_id = any(${ids}::uuid[])`;
    return r.expired as boolean;
  });
}

/** Ends a worker's lease now, as if it had stopped heartbeating a whole lease ago. */
export async function expireWorker(sql: Sql, workerId: string): Promise<void> {
  await sql`update supaqueue.workers set expires_at = now() - interval '1 millisecond' where id = ${workerId}`;
}
