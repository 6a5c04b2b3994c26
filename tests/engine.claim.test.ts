/** claim_jobs: exactly-once under concurrent claimers, the lease it grants, order, delays and types. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { asService, createTestDatabase, enqueueMany, makeTenant, type TestDatabase } from './helpers/db.ts';
import { clearPendingJobs, claim, closeAll, complete, connections, jobRow, waitFor } from './engine.helpers.ts';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db.drop(); });

describe('8 concurrent claimers over 10,000 jobs', () => {
  test('every job is claimed exactly once and no claim returns more than it asked for', async () => {
    await clearPendingJobs(db.sql);
    const tenants = await Promise.all([makeTenant(db.sql), makeTenant(db.sql), makeTenant(db.sql)]);
    const ids = [
      ...(await enqueueMany(db.sql, tenants[0], 5000)),
      ...(await enqueueMany(db.sql, tenants[1], 3000)),
      ...(await enqueueMany(db.sql, tenants[2], 2000)),
    ];
    const clients = connections(db.url, 8);
    const claimed: string[] = [];
    const oversized: number[] = [];
    try {
      await Promise.all(clients.map(async (client, w) => {
        const batch = [1, 3, 7, 10, 25, 50, 100, 13][w];
        for (;;) {
          const jobs = await claim(client, `w${w}`, batch);
          if (jobs.length > batch) oversized.push(jobs.length);
          if (jobs.length === 0) return;
          claimed.push(...jobs.map((j) => j.id));
          await complete(client, jobs);
        }
      }));
    } finally {
      await closeAll(clients);
    }
    expect(oversized).toEqual([]);
    expect(claimed.length).toBe(10_000);
    expect(new Set(claimed).size).toBe(10_000);
    expect(new Set(claimed)).toEqual(new Set(ids));
    const [s] = await db.sql`select count(*)::int as done, max(attempts) as max_attempts from public.job_queue
                             where id = any(${ids}::uuid[]) and status = 'completed'`;
    expect(s).toEqual({ done: 10_000, max_attempts: 1 });
  }, 90_000);
});

describe('the lease', () => {
  test('a claimed job is processing, holds a fresh lease for lease_seconds and counts an attempt', async () => {
    await clearPendingJobs(db.sql);
    const tenant = await makeTenant(db.sql);
    const [id] = await enqueueMany(db.sql, tenant, 1);
    const [job] = await claim(db.sql, 'worker-lease', 1, { lease: 12.5 });
    expect(job).toMatchObject({ id, status: 'processing', attempts: 1, worker_id: 'worker-lease' });
    expect(job.lease_id).toMatch(/^[0-9a-f-]{36}$/);
    const row = await jobRow(db.sql, id);
    // The lease is the worker's: its row lasts at least lease_seconds from the claim.
    const [{ secs }] = await db.sql`select extract(epoch from w.expires_at - ${row.started_at}::timestamptz)::float8 as secs
                                    from supaqueue.workers w where w.id = 'worker-lease'`;
    expect(secs).toBeCloseTo(12.5, 2);
    expect(await db.sql`select lease_id from supaqueue.job_leases where job_id = ${id}`).toEqual([{ lease_id: job.lease_id }]);
    expect(await db.sql`select count(*)::int as n from supaqueue.job_ready where job_id = ${id}`).toEqual([{ n: 0 }]);
  });

  test('a job already claimed is not claimed again while its lease holds', async () => {
    await clearPendingJobs(db.sql);
    const tenant = await makeTenant(db.sql);
    await enqueueMany(db.sql, tenant, 1);
    expect(await claim(db.sql, 'first', 5)).toHaveLength(1);
    expect(await claim(db.sql, 'second', 5)).toHaveLength(0);
  });
});

describe('order', () => {
  test('higher priority is claimed first, whatever the enqueue order', async () => {
    await clearPendingJobs(db.sql);
    const tenant = await makeTenant(db.sql);
    const low = await enqueueMany(db.sql, tenant, 2, { priority: -5 });
    const mid = await enqueueMany(db.sql, tenant, 2, { priority: 0 });
    const high = await enqueueMany(db.sql, tenant, 2, { priority: 50 });
    const order: string[] = [];
    for (let i = 0; i < 6; i++) order.push(...(await claim(db.sql, 'w', 1)).map((j) => j.id));
    expect(new Set(order.slice(0, 2))).toEqual(new Set(high));
    expect(new Set(order.slice(2, 4))).toEqual(new Set(mid));
    expect(new Set(order.slice(4, 6))).toEqual(new Set(low));
  });

  test('within one tenant and priority, jobs are claimed in enqueue order', async () => {
    await clearPendingJobs(db.sql);
    const tenant = await makeTenant(db.sql);
    const ids = await enqueueMany(db.sql, tenant, 20);
    const order: string[] = [];
    for (let i = 0; i < 4; i++) order.push(...(await claim(db.sql, 'w', 5)).map((j) => j.id));
    expect(order).toEqual(ids);
  });

  test('only the requested types are claimed', async () => {
    await clearPendingJobs(db.sql);
    const tenant = await makeTenant(db.sql);
    const [email] = await enqueueMany(db.sql, tenant, 1, { type: 'email.send' });
    await enqueueMany(db.sql, tenant, 1, { type: 'report.build' });
    const jobs = await claim(db.sql, 'w', 10, { types: ['email.send', 'sms.send'] });
    expect(jobs.map((j) => j.id)).toEqual([email]);
  });
});

describe('delayed jobs', () => {
  test('a job with run_at in the future is not claimable before its time', async () => {
    await clearPendingJobs(db.sql);
    const tenant = await makeTenant(db.sql);
    const [id] = await enqueueMany(db.sql, tenant, 1, { run_at: new Date(Date.now() + 3600_000).toISOString() });
    expect(await claim(db.sql, 'w', 10)).toEqual([]);
    expect((await jobRow(db.sql, id)).status).toBe('pending');
  });

  test('a job with delay_ms becomes claimable once the delay has passed, not before', async () => {
    await clearPendingJobs(db.sql);
    const tenant = await makeTenant(db.sql);
    const [{ job_id: id, due }] = await asService(db.sql, (tx) => tx`
      select e.job_id, now() + interval '1500 ms' as due from public.enqueue_job(${tenant}::uuid, 'test.delayed', delay_ms => 1500) e`);
    const early: string[] = [];
    const got = await waitFor(async () => {
      // now() is the transaction's start, the very clock claim_jobs compares scheduled_at with.
      const { jobs, before } = await asService(db.sql, async (tx) => {
        const rows = await tx`select id from public.claim_jobs('w', null, 10, 30)`;
        const [{ before }] = await tx`select now() < ${due}::timestamptz as before`;
        return { jobs: rows.map((r) => r.id as string), before: before as boolean };
      });
      if (before) early.push(...jobs);
      return jobs.length > 0 ? jobs : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    expect(early).toEqual([]);
    expect(got).toEqual([id]);
  });

  test('a job with run_at in the past is claimable at once', async () => {
    await clearPendingJobs(db.sql);
    const tenant = await makeTenant(db.sql);
    const [id] = await enqueueMany(db.sql, tenant, 1, { run_at: new Date(Date.now() - 60_000).toISOString() });
    expect((await claim(db.sql, 'w', 10)).map((j) => j.id)).toEqual([id]);
  });
});
