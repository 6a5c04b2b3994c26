/**
 * Hardening (issue 16, item 2): a tenant's users cannot buy their way ahead of other tenants with
 * priority. What users choose (enqueue, schedules) is capped at tenants.max_user_priority (default 0,
 * null = no cap, set by the service role or super admins); service-role enqueues keep any priority.
 */
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import { addMember, asService, asUser, createTestDatabase, enqueueMany, makeTenant, makeUser, type TestDatabase } from './helpers/db.ts';
import { claim, clearPendingJobs, jobRow } from './engine.helpers.ts';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db?.drop(); });
beforeEach(async () => { await clearPendingJobs(db.sql); });

async function memberOf(tenant: string, role: 'member' | 'admin' = 'member'): Promise<string> {
  const user = await makeUser(db.sql);
  await addMember(db.sql, tenant, user, role);
  return user;
}

async function enqueueWithPriority(user: string, tenant: string, priority: number): Promise<number> {
  const [row] = await asUser(db.sql, user, (tx) => tx`select job_id from public.enqueue_job(${tenant}::uuid, 'prio.job', priority => ${priority}::int)`);
  return (await jobRow(db.sql, row.job_id)).priority as number;
}

test('the attack: a member\'s 300 priority-100 jobs do not starve another tenant\'s priority-0 jobs', async () => {
  const flooder = await makeTenant(db.sql);
  const victim = await makeTenant(db.sql);
  const user = await memberOf(flooder);
  const flood = Array.from({ length: 300 }, (_, i) => ({ tenant_id: flooder, type: 'flood.job', priority: 100, payload: { i } }));
  await asUser(db.sql, user, (tx) => tx`select job_id from public.enqueue_jobs(${tx.json(flood as never)})`);
  const victims = await enqueueMany(db.sql, victim, 5);

  const claimed = await claim(db.sql, 'w', 100);
  // Round-robin between the two tenants: all 5 of the victim's are among the first claims.
  expect(claimed.filter((j) => j.tenant_id === victim).map((j) => j.id).sort()).toEqual([...victims].sort());
});

test('a user\'s priority above the tenant\'s max_user_priority is lowered to it', async () => {
  const tenant = await makeTenant(db.sql);
  await db.sql`update public.tenants set max_user_priority = 10 where id = ${tenant}`;
  expect(await enqueueWithPriority(await memberOf(tenant), tenant, 50)).toBe(10);
});

test('a user\'s priority at or below the cap is kept (negative included)', async () => {
  const tenant = await makeTenant(db.sql);
  const user = await memberOf(tenant);
  expect([await enqueueWithPriority(user, tenant, 0), await enqueueWithPriority(user, tenant, -20)]).toEqual([0, -20]);
});

test('max_user_priority defaults to 0 and null lifts the cap', async () => {
  const tenant = await makeTenant(db.sql);
  const user = await memberOf(tenant);
  expect(await enqueueWithPriority(user, tenant, 5)).toBe(0);
  await db.sql`update public.tenants set max_user_priority = null where id = ${tenant}`;
  expect(await enqueueWithPriority(user, tenant, 5)).toBe(5);
});

test('the service role keeps global priority', async () => {
  const tenant = await makeTenant(db.sql);
  const [id] = await enqueueMany(db.sql, tenant, 1, { priority: 100 });
  expect((await jobRow(db.sql, id)).priority).toBe(100);
});

test('a schedule\'s jobs run at most at the tenant\'s max_user_priority', async () => {
  const tenant = await makeTenant(db.sql);
  const admin = await memberOf(tenant, 'admin');
  const jobId = await asUser(db.sql, admin, async (tx) => {
    const [s] = await tx`select id from public.create_job_schedule(${tx.json({ tenant_id: tenant, name: 'hot', cron: '* * * * *', job_type: 'sched.job', priority: 90 } as never)})`;
    const [r] = await tx`select public.run_job_schedule(${s.id}::uuid) as job_id`;
    return r.job_id as string;
  });
  expect((await jobRow(db.sql, jobId)).priority).toBe(0);
});

test('only the service role (or the owner) can change max_user_priority: members have no UPDATE on tenants', async () => {
  const tenant = await makeTenant(db.sql);
  const user = await memberOf(tenant, 'admin');
  await expect(asUser(db.sql, user, (tx) => tx`update public.tenants set max_user_priority = 100 where id = ${tenant}`))
    .rejects.toMatchObject({ code: '42501' });
  await asService(db.sql, (tx) => tx`update public.tenants set max_user_priority = 100 where id = ${tenant}`);
  const [t] = await db.sql`select max_user_priority from public.tenants where id = ${tenant}`;
  expect(t.max_user_priority).toBe(100);
});
