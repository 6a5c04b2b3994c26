/**
 * The per-user active-job counter (supaqueue.user_active_jobs, issue 12) stays exact across every way a
 * job enters or leaves pending/processing: enqueue, claim, complete, fail (retryable and not), cancel
 * (pending, and running then stopped), retry, release, lease expiry, purge and tenant deletion. Each
 * test compares the counter with a count of the job rows after each step.
 */
import { beforeAll, expect, test } from 'vitest';
import { addMember, asService, asUser, makeTenant, makeUser, useTestDatabase } from './helpers/db.ts';
import { claim, complete, fail, waitFor } from './engine.helpers.ts';

const db = useTestDatabase();
let tenant: string;

beforeAll(async () => {
  tenant = await makeTenant(db.sql);
  await asService(db.sql, (tx) => tx`select tier from public.set_tenant_tier(${tenant}::uuid, 'pro')`);
});

/** A fresh member of the pro tenant with n jobs of their own type (the counter is made by the first). */
async function userWithJobs(n: number, extra: Record<string, unknown> = {}): Promise<{ user: string; type: string; ids: string[] }> {
  const user = await makeUser(db.sql);
  await addMember(db.sql, tenant, user);
  const type = `c.${user.slice(0, 8)}`;
  const rows = await asUser(db.sql, user, (tx) => tx`select job_id from public.enqueue_jobs(${tx.json(Array.from({ length: n }, () => ({ tenant_id: tenant, type, ...extra })) as never)})`);
  return { user, type, ids: rows.map((r) => r.job_id as string) };
}

/** [counter, truth] for the user: equal when the counter is exact. */
async function counted(user: string, t = tenant): Promise<[number | null, number]> {
  const [r] = await db.sql`
    select (select c.active from supaqueue.user_active_jobs c where c.tenant_id = ${t} and c.user_id = ${user}) as counter,
           (select count(*)::int from public.job_queue j where j.tenant_id = ${t} and j.submitted_by = ${user}
              and j.status in ('pending', 'processing')) as truth`;
  return [r.counter, r.truth];
}

test('enqueue counts every job of a bulk call', async () => {
  const { user } = await userWithJobs(3);
  expect(await counted(user)).toEqual([3, 3]);
});

test('claim keeps the count (processing is active), complete lowers it', async () => {
  const { user, type } = await userWithJobs(2);
  const held = await claim(db.sql, 'w-c', 2, { types: [type] });
  expect(await counted(user)).toEqual([2, 2]);
  await complete(db.sql, held);
  expect(await counted(user)).toEqual([0, 0]);
});

test('a retryable failure keeps the count (pending again), a permanent one lowers it', async () => {
  const { user, type } = await userWithJobs(1);
  const [first] = await claim(db.sql, 'w-f', 1, { types: [type] });
  expect(await fail(db.sql, first, 'again', true)).toBe('pending');
  expect(await counted(user)).toEqual([1, 1]);
  await db.sql`update supaqueue.job_delayed set due_at = now() where job_id = ${first.id}`;
  const [second] = await claim(db.sql, 'w-f', 1, { types: [type] });
  expect(await fail(db.sql, second, 'dead', false)).toBe('failed');
  expect(await counted(user)).toEqual([0, 0]);
});

test('cancelling a pending job lowers the count', async () => {
  const { user, ids } = await userWithJobs(2);
  await asUser(db.sql, user, (tx) => tx`select id from public.cancel_job(${ids[0]}::uuid)`);
  expect(await counted(user)).toEqual([1, 1]);
});

test('cancelling a running job lowers the count only when its worker stops', async () => {
  const { user, type, ids } = await userWithJobs(1);
  const [held] = await claim(db.sql, 'w-x', 1, { types: [type] });
  await asUser(db.sql, user, (tx) => tx`select id from public.cancel_job(${ids[0]}::uuid)`);
  expect(await counted(user)).toEqual([1, 1]);
  expect(await fail(db.sql, held, 'stopped', true)).toBe('cancelled');
  expect(await counted(user)).toEqual([0, 0]);
});

test('retry raises the count again', async () => {
  const { user, ids } = await userWithJobs(1);
  await asUser(db.sql, user, (tx) => tx`select id from public.cancel_job(${ids[0]}::uuid)`);
  await asUser(db.sql, user, (tx) => tx`select id from public.retry_job(${ids[0]}::uuid)`);
  expect(await counted(user)).toEqual([1, 1]);
});

test('release keeps the count (the job is pending again)', async () => {
  const { user, type } = await userWithJobs(1);
  const [held] = await claim(db.sql, 'w-r', 1, { types: [type] });
  await asService(db.sql, (tx) => tx`select id from public.release_jobs(${[held.id]}::uuid[], ${[held.lease_id]}::uuid[])`);
  expect(await counted(user)).toEqual([1, 1]);
});

test('an expired lease on the last attempt fails the job and lowers the count', async () => {
  const { user, type } = await userWithJobs(1, { max_attempts: 1 });
  await claim(db.sql, 'w-dead', 1, { types: [type], lease: 0.1 });
  await waitFor(async () => {
    await asService(db.sql, (tx) => tx`select public.run_maintenance()`);
    return (await counted(user))[1] === 0;
  });
  expect(await counted(user)).toEqual([0, 0]);
});

test('purging finished jobs leaves the count alone', async () => {
  const { user, ids } = await userWithJobs(2);
  await asUser(db.sql, user, (tx) => tx`select id from public.cancel_job(${ids[0]}::uuid)`);
  await asService(db.sql, (tx) => tx`select public.purge_finished_jobs(interval '0')`);
  expect((await db.sql`select count(*)::int as n from public.job_queue where id = ${ids[0]}`)[0].n).toBe(0);
  expect(await counted(user)).toEqual([1, 1]);
});

test('deleting a tenant with active jobs (force) removes its counters with it', async () => {
  const doomed = await makeTenant(db.sql);
  await asService(db.sql, (tx) => tx`select tier from public.set_tenant_tier(${doomed}::uuid, 'pro')`);
  const user = await makeUser(db.sql);
  await addMember(db.sql, doomed, user);
  await asUser(db.sql, user, (tx) => tx`select job_id from public.enqueue_jobs(${tx.json([{ tenant_id: doomed, type: 'doomed.job' }, { tenant_id: doomed, type: 'doomed.job' }] as never)})`);
  expect(await counted(user, doomed)).toEqual([2, 2]);
  await asService(db.sql, (tx) => tx`select id from public.delete_tenant(${doomed}::uuid, true)`);
  expect(await counted(user, doomed)).toEqual([null, 0]);
});

test('a counter made after the user already had active jobs starts from their exact count', async () => {
  const free = await makeTenant(db.sql);
  const user = await makeUser(db.sql);
  await addMember(db.sql, free, user);
  await asUser(db.sql, user, (tx) => tx`select job_id from public.enqueue_jobs(${tx.json([{ tenant_id: free, type: 'late.job' }, { tenant_id: free, type: 'late.job' }] as never)})`);
  await asService(db.sql, (tx) => tx`select tier from public.set_tenant_tier(${free}::uuid, 'pro')`);
  await asUser(db.sql, user, (tx) => tx`select job_id from public.enqueue_job(${free}::uuid, 'late.job')`);
  expect(await counted(user, free)).toEqual([3, 3]);
});
