/**
 * Per-user active-job limits by quota tier (issue 12), in the engine: CONCURRENT_JOB_LIMIT (QJ012) for
 * user enqueues, service enqueues on behalf of a user, and retries; exact under concurrency; all or
 * nothing for bulk calls; a tier change takes effect at once. Calls run as PostgREST runs them.
 */
import type { Sql } from 'postgres';
import { beforeAll, expect, test } from 'vitest';
import { addMember, asService, asUser, makeTenant, makeUser, sqlState, useTestDatabase } from './helpers/db.ts';
import { claim, closeAll, connections, fail } from './engine.helpers.ts';

const db = useTestDatabase();

/** A tenant on `tier` (null: none) with one fresh member. */
async function memberOn(tier: string | null, opts: { maxQueuedJobs?: number } = {}): Promise<{ tenant: string; user: string }> {
  const tenant = await makeTenant(db.sql, { maxQueuedJobs: opts.maxQueuedJobs });
  const user = await makeUser(db.sql);
  await addMember(db.sql, tenant, user);
  if (tier) await asService(db.sql, (tx) => tx`select tier from public.set_tenant_tier(${tenant}::uuid, ${tier})`);
  return { tenant, user };
}

const enqueueAs = (sql: Sql, user: string, tenant: string, jobs: Record<string, unknown>[] = [{}]) =>
  asUser(sql, user, (tx) => tx`select job_id, created from public.enqueue_jobs(${tx.json(jobs.map((j) => ({ tenant_id: tenant, type: 'tier.job', ...j })) as never)})`);
const enqueueOnBehalf = (tenant: string, user: string, extra: Record<string, unknown> = {}) =>
  asService(db.sql, (tx) => tx`select job_id from public.enqueue_jobs(${tx.json([{ tenant_id: tenant, type: 'tier.job', submitted_by: user, ...extra }] as never)})`);
const jobCount = async (tenant: string) => (await db.sql`select count(*)::int as n from public.job_queue where tenant_id = ${tenant}`)[0].n as number;

beforeAll(async () => {
  await asService(db.sql, (tx) => tx`select name from public.set_quota_tier('three', ${tx.json({ max_active_jobs_per_user: 3 })})`);
  await asService(db.sql, (tx) => tx`select name from public.set_quota_tier('five', ${tx.json({ max_active_jobs_per_user: 5 })})`);
});

test('free tier: the first job is accepted, the second refused with CONCURRENT_JOB_LIMIT (QJ012)', async () => {
  const { tenant, user } = await memberOn('free');
  await enqueueAs(db.sql, user, tenant);
  expect(await sqlState(enqueueAs(db.sql, user, tenant))).toBe('QJ012');
  expect(await jobCount(tenant)).toBe(1);
});

test('the refusal carries the limit and the current count as JSON in its detail', async () => {
  const { tenant, user } = await memberOn('free');
  await enqueueAs(db.sql, user, tenant);
  const err = await enqueueAs(db.sql, user, tenant).catch((e) => e);
  expect(JSON.parse(err.detail)).toEqual({ limit: 1, active: 1, adding: 1, tier: 'free' });
});

test('the limit is per user: a second member of the same free tenant still gets a slot', async () => {
  const { tenant, user } = await memberOn('free');
  const second = await makeUser(db.sql);
  await addMember(db.sql, tenant, second);
  await enqueueAs(db.sql, user, tenant);
  await enqueueAs(db.sql, second, tenant);
  expect(await jobCount(tenant)).toBe(2);
});

test('a finished job frees the slot', async () => {
  const { tenant, user } = await memberOn('free');
  const [{ job_id }] = await enqueueAs(db.sql, user, tenant);
  await asUser(db.sql, user, (tx) => tx`select id from public.cancel_job(${job_id}::uuid)`);
  await enqueueAs(db.sql, user, tenant);
  expect(await jobCount(tenant)).toBe(2);
});

test('a bulk enqueue that would cross the limit is refused whole (nothing inserted)', async () => {
  const { tenant, user } = await memberOn('three');
  await enqueueAs(db.sql, user, tenant, [{}, {}]);
  expect(await sqlState(enqueueAs(db.sql, user, tenant, [{}, {}]))).toBe('QJ012');
  expect(await jobCount(tenant)).toBe(2);
});

test('an idempotent repeat at the limit is not refused: it adds nothing and returns the job', async () => {
  const { tenant, user } = await memberOn('free');
  const [first] = await enqueueAs(db.sql, user, tenant, [{ idempotency_key: 'k1' }]);
  const [again] = await enqueueAs(db.sql, user, tenant, [{ idempotency_key: 'k1' }]);
  expect(again).toEqual({ job_id: first.job_id, created: false });
});

test('a tier change takes effect at once, both ways', async () => {
  const { tenant, user } = await memberOn('free');
  await enqueueAs(db.sql, user, tenant);
  await asService(db.sql, (tx) => tx`select public.set_member_tier(${tenant}::uuid, ${user}::uuid, 'pro')`);
  await enqueueAs(db.sql, user, tenant);
  await asService(db.sql, (tx) => tx`select public.set_member_tier(${tenant}::uuid, ${user}::uuid, null)`);
  expect(await sqlState(enqueueAs(db.sql, user, tenant))).toBe('QJ012');
});

test('a tier\'s new limit applies at once to everyone on it', async () => {
  await asService(db.sql, (tx) => tx`select name from public.set_quota_tier('shrinking', ${tx.json({ max_active_jobs_per_user: 3 })})`);
  const { tenant, user } = await memberOn('shrinking');
  await enqueueAs(db.sql, user, tenant, [{}, {}]);
  await asService(db.sql, (tx) => tx`select name from public.set_quota_tier('shrinking', ${tx.json({ max_active_jobs_per_user: 2 })})`);
  expect(await sqlState(enqueueAs(db.sql, user, tenant))).toBe('QJ012');
});

test('an override to an unlimited tier lifts the tenant\'s limit for that member', async () => {
  const { tenant, user } = await memberOn('free');
  await asService(db.sql, (tx) => tx`select public.set_member_tier(${tenant}::uuid, ${user}::uuid, 'enterprise')`);
  await enqueueAs(db.sql, user, tenant, [{}, {}, {}]);
  expect(await jobCount(tenant)).toBe(3);
});

test('users without a limit cost nothing: no counter row is made for them', async () => {
  const { tenant, user } = await memberOn(null);
  await enqueueAs(db.sql, user, tenant, [{}, {}, {}]);
  expect((await db.sql`select count(*)::int as n from supaqueue.user_active_jobs where tenant_id = ${tenant}`)[0].n).toBe(0);
});

test('a service enqueue on behalf of a user counts against that user\'s limit', async () => {
  const { tenant, user } = await memberOn('free');
  await enqueueOnBehalf(tenant, user);
  expect(await sqlState(enqueueOnBehalf(tenant, user))).toBe('QJ012');
  expect(await sqlState(enqueueAs(db.sql, user, tenant))).toBe('QJ012');
});

test('a service enqueue for nobody is not limited by any user\'s tier', async () => {
  const { tenant, user } = await memberOn('free');
  await enqueueAs(db.sql, user, tenant);
  await asService(db.sql, (tx) => tx`select job_id from public.enqueue_job(${tenant}::uuid, 'svc.job')`);
  expect(await jobCount(tenant)).toBe(2);
});

test('the tenant\'s queued quota is still its own error: QUEUE_QUOTA_EXCEEDED (QJ006), not QJ012', async () => {
  const { tenant, user } = await memberOn('pro', { maxQueuedJobs: 1 });
  await enqueueAs(db.sql, user, tenant);
  expect(await sqlState(enqueueAs(db.sql, user, tenant))).toBe('QJ006');
});

test('a retry needs a free slot too (QJ012 while the user is at the limit)', async () => {
  const { tenant, user } = await memberOn('free');
  const [{ job_id }] = await enqueueAs(db.sql, user, tenant, [{ type: 'tier.retry' }]);
  const [held] = await claim(db.sql, 'w-retry', 1, { types: ['tier.retry'] });
  expect(held.id).toBe(job_id);
  await fail(db.sql, held, 'boom', false);
  await enqueueAs(db.sql, user, tenant);
  expect(await sqlState(asUser(db.sql, user, (tx) => tx`select id from public.retry_job(${job_id}::uuid)`))).toBe('QJ012');
});

test('the race as the API runs it: 20 concurrent member requests for the last 3 slots, exactly 3 win', async () => {
  const { tenant, user } = await memberOn('five');
  await enqueueAs(db.sql, user, tenant, [{}, {}]);
  const clients = connections(db.url, 20);
  try {
    // Each request is its own transaction on its own connection, as PostgREST would run them.
    const results = await Promise.all(clients.map((c) => sqlState(enqueueAs(c, user, tenant))));
    expect(results.filter((r) => r === undefined)).toHaveLength(3);
    expect(results.filter((r) => r !== undefined).every((r) => r === 'QJ012')).toBe(true);
  } finally {
    await closeAll(clients);
  }
  expect(await jobCount(tenant)).toBe(5);
});

// Users' enqueues of one tenant are also serialised by the tenant's queued-quota lock (the default
// ceiling applies to every user enqueue); service enqueues of a tenant without max_queued_jobs take no
// such lock, so these two races rest on the counter's own lock alone (without it: 20 of 20 won).
const onBehalfIn = (c: Sql, tenant: string, user: string) =>
  asService(c, (tx) => tx`select job_id from public.enqueue_jobs(${tx.json([{ tenant_id: tenant, type: 'tier.job', submitted_by: user }] as never)})`);

test('the race on the counter: 20 concurrent service enqueues on behalf of a user for the last 3 slots, exactly 3 win', async () => {
  const { tenant, user } = await memberOn('five');
  await enqueueAs(db.sql, user, tenant, [{}, {}]);
  const clients = connections(db.url, 20);
  try {
    const results = await Promise.all(clients.map((c) => sqlState(onBehalfIn(c, tenant, user))));
    expect(results.filter((r) => r === undefined)).toHaveLength(3);
    expect(results.filter((r) => r !== undefined).every((r) => r === 'QJ012')).toBe(true);
  } finally {
    await closeAll(clients);
  }
  expect(await jobCount(tenant)).toBe(5);
});

test('the race on a new counter: 20 concurrent enqueues for a user with no counter yet, exactly the limit wins', async () => {
  const { tenant, user } = await memberOn('five');
  const clients = connections(db.url, 20);
  try {
    const results = await Promise.all(clients.map((c) => sqlState(onBehalfIn(c, tenant, user))));
    expect(results.filter((r) => r === undefined)).toHaveLength(5);
  } finally {
    await closeAll(clients);
  }
  expect(await jobCount(tenant)).toBe(5);
});

test('claims stay exact for users with a limit: claiming does not change the count (pending and processing are both active)', async () => {
  const { tenant, user } = await memberOn('free');
  await enqueueAs(db.sql, user, tenant, [{ type: 'tier.claimed' }]);
  await claim(db.sql, 'w-claim', 1, { types: ['tier.claimed'] });
  expect(await sqlState(enqueueAs(db.sql, user, tenant))).toBe('QJ012');
});
