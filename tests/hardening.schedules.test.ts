/**
 * Hardening (issue 16, item 3): a tenant cannot flood the scheduler. Schedules per tenant are capped
 * (tenants.max_schedules, default 100, QJ006), and each batch of due schedules is taken round-robin
 * across tenants, so one tenant's hundreds of due schedules do not hold another's back.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { addMember, asService, asUser, createTestDatabase, makeTenant, makeUser, sqlState, type TestDatabase } from './helpers/db.ts';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db?.drop(); });

async function adminOf(tenant: string): Promise<string> {
  const user = await makeUser(db.sql);
  await addMember(db.sql, tenant, user, 'admin');
  return user;
}

function createAs(user: string, tenant: string, name: string) {
  return asUser(db.sql, user, (tx) => tx`select id from public.create_job_schedule(${tx.json({ tenant_id: tenant, name, cron: '* * * * *', job_type: 'cap.job' } as never)})`);
}

test('a tenant admin cannot create more schedules than max_schedules (QJ006)', async () => {
  const tenant = await makeTenant(db.sql);
  await db.sql`update public.tenants set max_schedules = 3 where id = ${tenant}`;
  const admin = await adminOf(tenant);
  for (const name of ['a', 'b', 'c']) await createAs(admin, tenant, name);
  expect(await sqlState(createAs(admin, tenant, 'd'))).toBe('QJ006');
  const [r] = await db.sql`select count(*)::int as n from public.job_schedules where tenant_id = ${tenant}`;
  expect(r.n).toBe(3);
});

test('tenants get max_schedules 100 by default', async () => {
  const tenant = await makeTenant(db.sql);
  const [t] = await db.sql`select max_schedules from public.tenants where id = ${tenant}`;
  expect(t.max_schedules).toBe(100);
});

test('the attack: a tenant\'s 60 due schedules do not push another tenant\'s due schedule out of the first batch', async () => {
  const flooder = await makeTenant(db.sql);
  const other = await makeTenant(db.sql);
  // Written directly (as if the cap were raised for it), all due two minutes ago.
  await db.sql`
    insert into public.job_schedules (tenant_id, name, cron, job_type, next_run_at)
    select ${flooder}, 'flood-' || g, '* * * * *', 'flood.job', now() - interval '2 minutes' from generate_series(1, 60) g`;
  const [mine] = await db.sql`
    insert into public.job_schedules (tenant_id, name, cron, job_type, next_run_at)
    values (${other}, 'mine', '* * * * *', 'mine.job', now() - interval '1 minute') returning id`;
  const batch = await asService(db.sql, (tx) => tx`select id, tenant_id from supaqueue.lock_due_schedules(25)`);
  expect(batch).toHaveLength(25);
  expect(batch.map((s) => s.id)).toContain(mine.id);
});

test('within a tenant, due schedules are still taken oldest first', async () => {
  const tenant = await makeTenant(db.sql);
  const rows = await db.sql`
    insert into public.job_schedules (tenant_id, name, cron, job_type, next_run_at)
    select ${tenant}, 'order-' || g, '* * * * *', 'order.job', now() - interval '1 hour' - g * interval '1 second'
    from generate_series(1, 3) g returning id, next_run_at`;
  const oldestFirst = [...rows].sort((a, b) => a.next_run_at - b.next_run_at).map((r) => r.id);
  const batch = await asService(db.sql, (tx) => tx`select id from supaqueue.lock_due_schedules(50) where tenant_id = ${tenant}`);
  expect(batch.map((s) => s.id)).toEqual(oldestFirst);
});
