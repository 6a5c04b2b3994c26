/**
 * Hardening (issue 16, item 11): default ceilings for tenants without limits, and rate-limit counters
 * that do not pile up. Tenant-driven work (users' enqueues and retries, schedules) of a tenant without
 * max_queued_jobs stops at supaqueue.default_max_queued_jobs() (10,000) active jobs; one user enqueue
 * call carries at most supaqueue.max_user_call_payload_bytes() (1 MiB) of payloads.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { addMember, asService, asUser, createTestDatabase, makeTenant, makeUser, sqlState, type TestDatabase } from './helpers/db.ts';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db?.drop(); });

async function memberOf(tenant: string, role: 'member' | 'admin' = 'member'): Promise<string> {
  const user = await makeUser(db.sql);
  await addMember(db.sql, tenant, user, role);
  return user;
}

/** Fills the tenant with n active (delayed) jobs directly, as the table owner. */
async function fill(tenant: string, n: number): Promise<void> {
  // What enqueue writes for a delayed job: the record and its row in the delayed set.
  await db.sql`with j as (insert into public.job_queue (tenant_id, type, scheduled_at)
                          select ${tenant}, 'fill.job', now() + interval '1 day' from generate_series(1, ${n})
                          returning id, tenant_id, type, priority, scheduled_at)
               insert into supaqueue.job_delayed (job_id, tenant_id, type, priority, due_at)
               select id, tenant_id, type, priority, scheduled_at from j`;
}

test('the default ceiling is 10,000', async () => {
  const [r] = await db.sql`select supaqueue.default_max_queued_jobs() as n`;
  expect(r.n).toBe(10_000);
});

test('the attack: a member of a tenant without a quota cannot go past the default ceiling (QJ006)', async () => {
  const tenant = await makeTenant(db.sql);
  const user = await memberOf(tenant);
  await fill(tenant, 10_000);
  expect(await sqlState(asUser(db.sql, user, (tx) => tx`select job_id from public.enqueue_job(${tenant}::uuid, 'more.job')`))).toBe('QJ006');
});

test('the default ceiling does not bind the service role (it sets max_queued_jobs when it wants one)', async () => {
  const tenant = await makeTenant(db.sql);
  await fill(tenant, 10_000);
  expect(await sqlState(asService(db.sql, (tx) => tx`select job_id from public.enqueue_job(${tenant}::uuid, 'more.job')`))).toBeUndefined();
});

test('a tenant\'s max_queued_jobs replaces the default ceiling, above it too', async () => {
  const tenant = await makeTenant(db.sql, { maxQueuedJobs: 20_000 });
  const user = await memberOf(tenant);
  await fill(tenant, 10_000);
  expect(await sqlState(asUser(db.sql, user, (tx) => tx`select job_id from public.enqueue_job(${tenant}::uuid, 'more.job')`))).toBeUndefined();
});

test('a schedule run at the default ceiling is refused too (QJ006)', async () => {
  const tenant = await makeTenant(db.sql);
  const admin = await memberOf(tenant, 'admin');
  await fill(tenant, 10_000);
  const [s] = await db.sql`insert into public.job_schedules (tenant_id, name, cron, job_type) values (${tenant}, 'n', '* * * * *', 'sched.job') returning id`;
  expect(await sqlState(asUser(db.sql, admin, (tx) => tx`select public.run_job_schedule(${s.id}::uuid)`))).toBe('QJ006');
});

test('the attack: one member call cannot carry 40 payloads of 256 KiB (QJ007)', async () => {
  const tenant = await makeTenant(db.sql);
  const user = await memberOf(tenant);
  const big = { blob: 'x'.repeat(250_000) };
  const jobs = Array.from({ length: 40 }, () => ({ tenant_id: tenant, type: 'big.job', payload: big }));
  expect(await sqlState(asUser(db.sql, user, (tx) => tx`select job_id from public.enqueue_jobs(${tx.json(jobs as never)})`))).toBe('QJ007');
});

test('one member call of up to 1 MiB of payloads is accepted', async () => {
  const tenant = await makeTenant(db.sql);
  const user = await memberOf(tenant);
  const jobs = Array.from({ length: 4 }, () => ({ tenant_id: tenant, type: 'big.job', payload: { blob: 'x'.repeat(250_000) } }));
  expect(await asUser(db.sql, user, (tx) => tx`select job_id from public.enqueue_jobs(${tx.json(jobs as never)})`)).toHaveLength(4);
});

test('the attack: rate-limit rows of ended windows are purged instead of kept forever', async () => {
  await db.sql`insert into supaqueue.rate_limits (key, window_start, hits)
               select 'api:old-' || g, now() - interval '2 hours', 1 from generate_series(1, 50) g`;
  await db.sql`select * from supaqueue.rate_limit_hit('api:fresh', 60, 60)`;
  const [r] = await db.sql`select count(*)::int as n from supaqueue.rate_limits where key like 'api:old-%'`;
  expect(r.n).toBe(0);
});

test('rate-limit rows of running windows are kept', async () => {
  await db.sql`insert into supaqueue.rate_limits (key, window_start, hits) values ('api:current', now() - interval '10 seconds', 5)`;
  await db.sql`select * from supaqueue.rate_limit_hit('api:another-fresh', 60, 60)`;
  const [r] = await db.sql`select hits from supaqueue.rate_limits where key = 'api:current'`;
  expect(r.hits).toBe(5);
});
