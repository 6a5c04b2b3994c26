/** Maintenance: reclaim of expired leases (never over a settled job), retention purge, run_maintenance. */
import { beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { asService, enqueueMany, makeTenant, useTestDatabase } from './helpers/db.ts';
import { claim, closeAll, complete, connections, fail, jobRow, leasesExpired, type ClaimedJob } from './engine.helpers.ts';

const db = useTestDatabase();
let tenant: string;
beforeAll(async () => { tenant = await makeTenant(db.sql); });
beforeEach(async () => {
  // Every test starts with no ready, held or finished jobs left by the one before.
  await db.sql`delete from public.job_queue`;
  await db.sql`update supaqueue.tenant_limits set running = 0`;
});

const reclaim = async () => (await asService(db.sql, (tx) => tx`select public.reclaim_expired_jobs(100) as n`))[0].n as number;
const purge = async (retention: string, max: number) =>
  (await asService(db.sql, (tx) => tx`select public.purge_finished_jobs(${retention}::interval, ${max}::int) as n`))[0].n as number;

/** Claims every job of the tenant with a short lease and waits until the leases have expired. */
async function expiredJobs(n: number, spec = {}, t = tenant): Promise<ClaimedJob[]> {
  await enqueueMany(db.sql, t, n, spec);
  const jobs = await claim(db.sql, 'dead-worker', n, { lease: 0.2 });
  expect(jobs).toHaveLength(n);
  await leasesExpired(db.sql, jobs.map((j) => j.id));
  return jobs;
}

describe('reclaim of expired leases', () => {
  test('a job with attempts left goes back to pending, with the lost lease in its error history', async () => {
    const [job] = await expiredJobs(1);
    expect(await reclaim()).toBe(1);
    const row = await jobRow(db.sql, job.id);
    expect(row).toMatchObject({ status: 'pending', attempts: 1, lease_id: null, completed_at: null });
    expect(row.errors).toEqual([expect.objectContaining({ attempt: 1, error: 'lease expired', worker_id: 'dead-worker' })]);
    expect((await claim(db.sql, 'live-worker', 1)).map((j) => j.id)).toEqual([job.id]);
  });

  test('a job that used its last attempt ends failed', async () => {
    const [job] = await expiredJobs(1, { max_attempts: 1 });
    expect(await reclaim()).toBe(1);
    expect(await jobRow(db.sql, job.id)).toMatchObject({ status: 'failed', attempts: 1, lease_id: null });
    expect((await jobRow(db.sql, job.id)).completed_at).toBeInstanceOf(Date);
  });

  test('a job whose cancellation was requested ends cancelled', async () => {
    const [job] = await expiredJobs(1);
    await asService(db.sql, (tx) => tx`select * from public.cancel_job(${job.id}::uuid)`);
    expect(await reclaim()).toBe(1);
    expect((await jobRow(db.sql, job.id)).status).toBe('cancelled');
  });

  test('a job whose lease has not expired is left alone', async () => {
    await enqueueMany(db.sql, tenant, 1);
    const [job] = await claim(db.sql, 'live', 1, { lease: 600 });
    expect(await reclaim()).toBe(0);
    expect((await jobRow(db.sql, job.id)).lease_id).toBe(job.lease_id);
  });

  test('a job completed after its lease expired, before the reclaim, stays completed', async () => {
    const [job] = await expiredJobs(1);
    // The lease has expired but the job is still the holder's until someone reclaims it.
    expect(await complete(db.sql, [job])).toEqual([job.id]);
    expect(await reclaim()).toBe(0);
    expect((await jobRow(db.sql, job.id)).status).toBe('completed');
  });

  test('a job being completed while the reclaim runs is skipped, and the completion wins', async () => {
    const [job] = await expiredJobs(1);
    const [holder] = connections(db.url, 1);
    try {
      let release!: () => void;
      const released = new Promise<void>((r) => { release = r; });
      // The holder's completion is in flight (row locked, not committed) when the reclaim runs.
      const completing = asService(holder, async (tx) => {
        const done = await tx`select id from public.complete_jobs(${[job.id]}::uuid[], ${[job.lease_id]}::uuid[])`;
        await released;
        return done.map((r) => r.id);
      });
      await waitForRowLock(job.id);
      expect(await reclaim()).toBe(0);
      release();
      expect(await completing).toEqual([job.id]);
    } finally {
      await closeAll([holder]);
    }
    expect((await jobRow(db.sql, job.id)).status).toBe('completed');
  });

  test('lowers the running counter of a limited tenant', async () => {
    const limited = await makeTenant(db.sql, { maxConcurrentJobs: 5 });
    await expiredJobs(3, {}, limited);
    expect((await db.sql`select running from supaqueue.tenant_limits where tenant_id = ${limited}`)[0].running).toBe(3);
    expect(await reclaim()).toBe(3);
    expect((await db.sql`select running from supaqueue.tenant_limits where tenant_id = ${limited}`)[0].running).toBe(0);
  });
});

/** Waits until some other session holds a row lock on the job (its UPDATE is in flight). */
async function waitForRowLock(id: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const rows = await db.sql`select 1 from public.job_queue where id = ${id} for update skip locked`;
    if (rows.length === 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the row was never locked');
}

describe('retention purge', () => {
  /** Jobs in each state; the finished ones finished `age` ago. */
  async function jobsInEveryState(age: string): Promise<Record<string, string>> {
    const ids = await enqueueMany(db.sql, tenant, 5, { max_attempts: 1 });
    const jobs = await claim(db.sql, 'w', 4);
    const byId = new Map(jobs.map((j) => [j.id, j]));
    await complete(db.sql, [byId.get(ids[0])!]);
    await fail(db.sql, byId.get(ids[1])!, 'x');
    await asService(db.sql, (tx) => tx`select public.release_jobs(${[ids[2]]}::uuid[], ${[byId.get(ids[2])!.lease_id]}::uuid[])`);
    await asService(db.sql, (tx) => tx`select * from public.cancel_job(${ids[2]}::uuid)`);
    // ids[3] stays processing, ids[4] pending. Everything is backdated, finished or not.
    await db.sql`update public.job_queue set created_at = now() - ${age}::interval,
                   completed_at = case when completed_at is not null then now() - ${age}::interval end
                 where id = any(${ids}::uuid[])`;
    return { completed: ids[0], failed: ids[1], cancelled: ids[2], processing: ids[3], pending: ids[4] };
  }

  test('deletes completed, failed and cancelled jobs finished before the retention, nothing else', async () => {
    const old = await jobsInEveryState('8 days');
    const recent = await jobsInEveryState('1 day');
    expect(await purge('7 days', 1000)).toBe(3);
    const left = (await db.sql`select id from public.job_queue`).map((r) => r.id);
    expect(new Set(left)).toEqual(new Set([old.processing, old.pending, ...Object.values(recent)]));
  });

  test('deletes at most max_jobs per call, and the next calls the rest', async () => {
    const ids = await enqueueMany(db.sql, tenant, 5);
    await complete(db.sql, await claim(db.sql, 'w', 5));
    await db.sql`update public.job_queue set completed_at = now() - make_interval(days => 10 + array_position(${ids}::uuid[], id))
                 where id = any(${ids}::uuid[])`;
    expect(await purge('7 days', 2)).toBe(2);
    expect(await db.sql`select count(*)::int as n from public.job_queue where id = any(${ids}::uuid[])`).toEqual([{ n: 3 }]);
    expect(await purge('7 days', 2)).toBe(2);
    expect(await purge('7 days', 2)).toBe(1);
    expect(await db.sql`select count(*)::int as n from public.job_queue where id = any(${ids}::uuid[])`).toEqual([{ n: 0 }]);
  });

  test('without a retention, the one setting supaqueue.retention decides (default 7 days)', async () => {
    const ids = await enqueueMany(db.sql, tenant, 2);
    await complete(db.sql, await claim(db.sql, 'w', 2));
    await db.sql`update public.job_queue set completed_at = now() - interval '3 days' where id = ${ids[0]}`;
    await db.sql`update public.job_queue set completed_at = now() - interval '8 days' where id = ${ids[1]}`;
    const run = (setting: string) => asService(db.sql, async (tx) => {
      await tx`select set_config('supaqueue.retention', ${setting}, true)`;
      return (await tx`select public.run_maintenance() as r, supaqueue.retention()::text as retention`)[0];
    });
    expect(await run('')).toEqual({ r: { reclaimed: 0, promoted: 0, purged: 1, stats_folded: expect.any(Number) }, retention: '7 days' });
    expect(await run('2 days')).toEqual({ r: { reclaimed: 0, promoted: 0, purged: 1, stats_folded: expect.any(Number) }, retention: '2 days' });
    expect(await db.sql`select count(*)::int as n from public.job_queue`).toEqual([{ n: 0 }]);
  });
});

describe('run_maintenance', () => {
  test('reclaims, promotes due jobs and purges in one call, and reports the counts', async () => {
    const [done] = await enqueueMany(db.sql, tenant, 1);
    await complete(db.sql, await claim(db.sql, 'w', 1));
    await db.sql`update public.job_queue set completed_at = now() - interval '30 days' where id = ${done}`;
    await expiredJobs(2);
    const [delayed] = await enqueueMany(db.sql, tenant, 1, { run_at: new Date(Date.now() + 3_600_000).toISOString() });
    await db.sql`update public.job_queue set scheduled_at = now() - interval '1 second' where id = ${delayed}`;
    await db.sql`update supaqueue.job_delayed set due_at = now() - interval '1 second' where job_id = ${delayed}`;
    const [{ r }] = await asService(db.sql, (tx) => tx`select public.run_maintenance('7 days', 100) as r`);
    // The 2 reclaimed jobs go straight back to the ready line, and the one delayed job, now due, joins it.
    expect(r).toEqual({ reclaimed: 2, promoted: expect.any(Number), purged: 1, stats_folded: expect.any(Number) });
    expect(await db.sql`select count(*)::int as n from supaqueue.job_ready`).toEqual([{ n: 3 }]);
  });
});
