/**
 * Hardening (issue 16, item 1): the queued quota counts every way a job becomes pending. A retry
 * makes a failed or cancelled job pending again, so it needs room like an enqueue, under the same
 * per-tenant lock.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { addMember, asService, asUser, createTestDatabase, makeTenant, makeUser, sqlState, type TestDatabase } from './helpers/db.ts';
import { closeAll, connections } from './engine.helpers.ts';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db?.drop(); });

async function memberOf(tenant: string): Promise<string> {
  const user = await makeUser(db.sql);
  await addMember(db.sql, tenant, user);
  return user;
}

async function enqueueAs(user: string, tenant: string): Promise<string> {
  const [row] = await asUser(db.sql, user, (tx) => tx`select job_id from public.enqueue_job(${tenant}::uuid, 'quota.job')`);
  return row.job_id as string;
}

async function pendingCount(tenant: string): Promise<number> {
  const [r] = await db.sql`select count(*)::int as n from public.job_queue where tenant_id = ${tenant} and status = 'pending'`;
  return r.n as number;
}

test('the attack: a member at max_queued_jobs cannot get past it by retrying cancelled jobs (QJ006)', async () => {
  const tenant = await makeTenant(db.sql, { maxQueuedJobs: 5 });
  const user = await memberOf(tenant);
  const first: string[] = [];
  for (let i = 0; i < 5; i += 1) first.push(await enqueueAs(user, tenant));
  expect(await sqlState(enqueueAs(user, tenant))).toBe('QJ006');
  for (const id of first) await asUser(db.sql, user, (tx) => tx`select id from public.cancel_job(${id}::uuid)`);
  for (let i = 0; i < 5; i += 1) await enqueueAs(user, tenant);

  const states = [];
  for (const id of first) states.push(await sqlState(asUser(db.sql, user, (tx) => tx`select id from public.retry_job(${id}::uuid)`)));
  expect(states).toEqual(Array(5).fill('QJ006'));
  expect(await pendingCount(tenant)).toBe(5);
});

test('a retry that fits the quota still succeeds', async () => {
  const tenant = await makeTenant(db.sql, { maxQueuedJobs: 2 });
  const user = await memberOf(tenant);
  const id = await enqueueAs(user, tenant);
  await asUser(db.sql, user, (tx) => tx`select id from public.cancel_job(${id}::uuid)`);
  await enqueueAs(user, tenant);
  const [row] = await asUser(db.sql, user, (tx) => tx`select status from public.retry_job(${id}::uuid)`);
  expect(row.status).toBe('pending');
  expect(await pendingCount(tenant)).toBe(2);
});

test('the service role\'s retry obeys max_queued_jobs too', async () => {
  const tenant = await makeTenant(db.sql, { maxQueuedJobs: 1 });
  const [{ job_id: id }] = await asService(db.sql, (tx) => tx`select job_id from public.enqueue_job(${tenant}::uuid, 'quota.job')`);
  await asService(db.sql, (tx) => tx`select id from public.cancel_job(${id}::uuid)`);
  await asService(db.sql, (tx) => tx`select job_id from public.enqueue_job(${tenant}::uuid, 'quota.job')`);
  expect(await sqlState(asService(db.sql, (tx) => tx`select id from public.retry_job(${id}::uuid)`))).toBe('QJ006');
});

test('a retry and an enqueue racing for the last slot: the enqueue waits for the retry\'s lock, then is refused', async () => {
  const tenant = await makeTenant(db.sql, { maxQueuedJobs: 1 });
  const [{ job_id: id }] = await asService(db.sql, (tx) => tx`select job_id from public.enqueue_job(${tenant}::uuid, 'quota.job')`);
  await asService(db.sql, (tx) => tx`select id from public.cancel_job(${id}::uuid)`);
  const [a, b] = connections(db.url, 2);
  try {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let retried!: () => void;
    const retriedNow = new Promise<void>((r) => { retried = r; });
    const retry = asService(a, async (tx) => {
      await tx`select id from public.retry_job(${id}::uuid)`;
      retried();
      await gate;
    });
    await retriedNow;
    let settled = false;
    const enqueue = asService(b, (tx) => tx`select job_id from public.enqueue_job(${tenant}::uuid, 'quota.job')`).finally(() => { settled = true; });
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false);
    release();
    await retry;
    expect(await sqlState(enqueue)).toBe('QJ006');
    expect(await pendingCount(tenant)).toBe(1);
  } finally {
    await closeAll([a, b]);
  }
});
