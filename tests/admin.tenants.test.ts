/**
 * Tenant and access management through SQL, as the service role (a backend or an ops script) and as
 * super admins, run the way PostgREST runs an RPC. Who may call what is in tests/admin.access.test.ts.
 */
import { randomUUID } from 'node:crypto';
import type { TransactionSql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claim } from './engine.helpers.ts';
import {
  addMember, asService, asUser, createTestDatabase, enqueueMany, makeTenant, makeUser, sqlState, type TestDatabase,
} from './helpers/db.ts';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db?.drop(); });

type Row = Record<string, any>;
const svc = <T>(fn: (tx: TransactionSql) => Promise<T>) => asService(db.sql, fn);
const one = async (p: Promise<readonly Row[]>): Promise<Row> => (await p)[0];
const createTenant = (name: string, limits: unknown = {}, id: string | null = null) =>
  svc((tx) => one(tx`select * from public.create_tenant(${name}, ${tx.json(limits as never)}, ${id})`));
const tenantRow = async (id: string) => (await db.sql`select * from public.tenants where id = ${id}`)[0];
const counterRow = async (id: string) => (await db.sql`select max_running, running from supaqueue.tenant_limits where tenant_id = ${id}`)[0];

describe('tenants', () => {
  it('create_tenant returns the new tenant, with the limits given', async () => {
    const t = await createTenant('Acme', { max_queued_jobs: 100, max_concurrent_jobs: 5 });
    expect(t).toMatchObject({ name: 'Acme', max_queued_jobs: 100, max_concurrent_jobs: 5 });
    expect(await tenantRow(t.id)).toMatchObject({ name: 'Acme', max_queued_jobs: 100, max_concurrent_jobs: 5 });
  });

  it('a tenant created by create_tenant accepts jobs at once (enqueue no longer answers TENANT_NOT_FOUND)', async () => {
    const id = randomUUID();
    expect(await sqlState(svc((tx) => tx`select * from public.enqueue_job(${id}, 'a.b')`))).toBe('QJ002');
    await createTenant('Fresh', {}, id);
    expect(await svc((tx) => one(tx`select created from public.enqueue_job(${id}, 'a.b')`))).toEqual({ created: true });
  });

  it('create_tenant with an id that is taken answers INVALID_STATE (QJ004)', async () => {
    const id = randomUUID();
    await createTenant('First', {}, id);
    expect(await sqlState(createTenant('Second', {}, id))).toBe('QJ004');
    expect((await tenantRow(id)).name).toBe('First');
  });

  it('a concurrency limit set at creation gets its counter row', async () => {
    const t = await createTenant('Limited', { max_concurrent_jobs: 3 });
    expect(await counterRow(t.id)).toEqual({ max_running: 3, running: 0 });
  });

  it.each([
    ['an empty name', '', {}],
    ['a name of 201 characters', 'x'.repeat(201), {}],
    ['a null name', null, {}],
    ['limits that are not an object', 'T', [1]],
    ['an unknown limit', 'T', { colour: 'red' }],
    ['a max_ key that is no column', 'T', { max_widgets: 1 }],
    ['a column that is not a limit', 'T', { name: 'other' }],
    ['a zero limit', 'T', { max_queued_jobs: 0 }],
    ['a fractional limit', 'T', { max_queued_jobs: 1.5 }],
    ['a string limit', 'T', { max_concurrent_jobs: 'many' }],
  ])('create_tenant with %s answers INVALID_ARGUMENT (QJ001) and creates nothing', async (_, name, limits) => {
    const [{ n: before }] = await db.sql`select count(*)::int as n from public.tenants`;
    expect(await sqlState(createTenant(name as string, limits))).toBe('QJ001');
    const [{ n: after }] = await db.sql`select count(*)::int as n from public.tenants`;
    expect(after).toBe(before);
  });

  it('rename_tenant changes the name', async () => {
    const t = await createTenant('Old');
    expect(await svc((tx) => one(tx`select id, name from public.rename_tenant(${t.id}, 'New')`))).toEqual({ id: t.id, name: 'New' });
    expect((await tenantRow(t.id)).name).toBe('New');
  });

  it('rename_tenant of an unknown tenant answers TENANT_NOT_FOUND (QJ002)', async () => {
    expect(await sqlState(svc((tx) => tx`select * from public.rename_tenant(${randomUUID()}, 'X')`))).toBe('QJ002');
  });
});

describe('limits', () => {
  const setLimits = (id: string, limits: unknown) => svc((tx) => one(tx`select * from public.set_tenant_limits(${id}, ${tx.json(limits as never)})`));

  it('a quota set by set_tenant_limits is enforced by enqueue, and null lifts it', async () => {
    const t = await createTenant('Quota');
    await setLimits(t.id, { max_queued_jobs: 1 });
    await enqueueMany(db.sql, t.id, 1);
    expect(await sqlState(enqueueMany(db.sql, t.id, 1))).toBe('QJ006');
    await setLimits(t.id, { max_queued_jobs: null });
    expect(await enqueueMany(db.sql, t.id, 1)).toHaveLength(1);
  });

  it('keys left out keep their value', async () => {
    const t = await createTenant('Keep', { max_queued_jobs: 7, max_concurrent_jobs: 2 });
    expect(await setLimits(t.id, { max_concurrent_jobs: 4 })).toMatchObject({ max_queued_jobs: 7, max_concurrent_jobs: 4 });
  });

  it('a concurrency limit set later counts the jobs already running; null removes the counter', async () => {
    const t = await createTenant('Running');
    await enqueueMany(db.sql, t.id, 2, { type: 'limits.run' });
    expect(await claim(db.sql, 'w-limits', 2, { types: ['limits.run'] })).toHaveLength(2);
    await setLimits(t.id, { max_concurrent_jobs: 5 });
    expect(await counterRow(t.id)).toEqual({ max_running: 5, running: 2 });
    await setLimits(t.id, { max_concurrent_jobs: null });
    expect(await counterRow(t.id)).toBeUndefined();
  });

  it('every max_* column of tenants is a limit, also those a later migration added (max_user_priority)', async () => {
    const t = await createTenant('Later', { max_user_priority: 50 });
    expect(await setLimits(t.id, { max_schedules: 3 })).toMatchObject({ max_user_priority: 50, max_schedules: 3 });
  });

  it('set_tenant_limits with null limits answers INVALID_ARGUMENT (QJ001)', async () => {
    const t = await createTenant('NullLimits');
    expect(await sqlState(svc((tx) => tx`select * from public.set_tenant_limits(${t.id}, null)`))).toBe('QJ001');
  });

  it('set_tenant_limits of an unknown tenant answers TENANT_NOT_FOUND (QJ002)', async () => {
    expect(await sqlState(setLimits(randomUUID(), { max_queued_jobs: 1 }))).toBe('QJ002');
  });
});

describe('delete_tenant', () => {
  const del = (id: string, force = false) => svc((tx) => one(tx`select id, name from public.delete_tenant(${id}, ${force})`));

  it('is refused with INVALID_STATE (QJ004) while the tenant has pending jobs, and deletes nothing', async () => {
    const t = await createTenant('Busy');
    await enqueueMany(db.sql, t.id, 1);
    expect(await sqlState(del(t.id))).toBe('QJ004');
    expect(await tenantRow(t.id)).toBeDefined();
  });

  it('with force deletes the tenant with its jobs, members and schedules', async () => {
    const t = await createTenant('Forced');
    const user = await makeUser(db.sql);
    await addMember(db.sql, t.id, user);
    await enqueueMany(db.sql, t.id, 2);
    await svc((tx) => tx`select public.create_job_schedule(${tx.json({ tenant_id: t.id, name: 's', cron: '@hourly', job_type: 'a.b' })})`);
    expect(await del(t.id, true)).toEqual({ id: t.id, name: 'Forced' });
    const [left] = await db.sql`select
      (select count(*)::int from public.tenants where id = ${t.id}) as tenants,
      (select count(*)::int from public.job_queue where tenant_id = ${t.id}) as jobs,
      (select count(*)::int from public.tenant_members where tenant_id = ${t.id}) as members,
      (select count(*)::int from public.job_schedules where tenant_id = ${t.id}) as schedules`;
    expect(left).toEqual({ tenants: 0, jobs: 0, members: 0, schedules: 0 });
  });

  it('needs no force when every job has finished', async () => {
    const t = await createTenant('Done');
    const [id] = await enqueueMany(db.sql, t.id, 1);
    await svc((tx) => tx`select public.cancel_job(${id})`);
    expect(await del(t.id)).toEqual({ id: t.id, name: 'Done' });
  });

  it('of an unknown tenant answers TENANT_NOT_FOUND (QJ002)', async () => {
    expect(await sqlState(del(randomUUID(), true))).toBe('QJ002');
  });

  it('waits for an enqueue in flight and then refuses: a job can never be enqueued into a deleted tenant', async () => {
    const t = await createTenant('Racing');
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    let enqueued!: () => void;
    const inserted = new Promise<void>((r) => { enqueued = r; });
    const enqueue = asService(db.sql, async (tx) => {
      await tx`select * from public.enqueue_job(${t.id}, 'a.b')`;
      enqueued();
      await held; // the enqueue's transaction is still open
    });
    await inserted;
    const deletion = sqlState(del(t.id));
    await new Promise((r) => setTimeout(r, 300));
    release();
    await enqueue;
    expect(await deletion).toBe('QJ004');
    const [{ n }] = await db.sql`select count(*)::int as n from public.job_queue where tenant_id = ${t.id}`;
    expect(n).toBe(1);
  });
});

describe('members', () => {
  const add = (tenant: string, user: string | null, role: string | null = 'member') =>
    svc((tx) => one(tx`select tenant_id, user_id, role from public.add_tenant_member(${tenant}, ${user}, ${role})`));
  const remove = (tenant: string, user: string) =>
    svc((tx) => one(tx`select public.remove_tenant_member(${tenant}, ${user}) as removed`));

  it('add_tenant_member adds the user with the role, and a second call changes the role', async () => {
    const t = await createTenant('Members');
    const user = await makeUser(db.sql);
    expect(await add(t.id, user)).toEqual({ tenant_id: t.id, user_id: user, role: 'member' });
    expect(await add(t.id, user, 'admin')).toEqual({ tenant_id: t.id, user_id: user, role: 'admin' });
    expect(await db.sql`select role from public.tenant_members where tenant_id = ${t.id}`).toEqual([{ role: 'admin' }]);
  });

  it('a member added by add_tenant_member can enqueue for the tenant with their own JWT', async () => {
    const t = await createTenant('Enqueuer');
    const user = await makeUser(db.sql);
    expect(await sqlState(asUser(db.sql, user, (tx) => tx`select * from public.enqueue_job(${t.id}, 'a.b')`))).toBe('QJ002');
    await add(t.id, user);
    expect(await asUser(db.sql, user, (tx) => one(tx`select created from public.enqueue_job(${t.id}, 'a.b')`))).toEqual({ created: true });
  });

  it.each([
    ['an unknown user', 'unknown', 'member'],
    ['a null user', 'null', 'member'],
    ['an unknown role', 'real', 'owner'],
    ['a null role', 'real', null],
  ] as const)('add_tenant_member with %s answers INVALID_ARGUMENT (QJ001)', async (_, who, role) => {
    const t = await createTenant('BadMember');
    const user = who === 'unknown' ? randomUUID() : who === 'null' ? null : await makeUser(db.sql);
    expect(await sqlState(add(t.id, user, role))).toBe('QJ001');
    expect(await db.sql`select 1 from public.tenant_members where tenant_id = ${t.id}`).toHaveLength(0);
  });

  it('add_tenant_member to an unknown tenant answers TENANT_NOT_FOUND (QJ002)', async () => {
    expect(await sqlState(add(randomUUID(), await makeUser(db.sql)))).toBe('QJ002');
  });

  it('remove_tenant_member removes at once: the user no longer sees the tenant\'s jobs', async () => {
    const t = await createTenant('Leaving');
    const user = await makeUser(db.sql);
    await add(t.id, user);
    const [job] = await enqueueMany(db.sql, t.id, 1);
    const sees = () => asUser(db.sql, user, async (tx) => (await tx`select id from public.job_queue where id = ${job}`).length);
    expect(await sees()).toBe(1);
    expect(await remove(t.id, user)).toEqual({ removed: true });
    expect(await sees()).toBe(0);
  });

  it('remove_tenant_member of a user who is not a member answers false', async () => {
    const t = await createTenant('NotMember');
    expect(await remove(t.id, await makeUser(db.sql))).toEqual({ removed: false });
  });

  it('the service role may remove a tenant\'s last admin (only tenant admins are held back)', async () => {
    const t = await createTenant('Orphan');
    const user = await makeUser(db.sql);
    await add(t.id, user, 'admin');
    expect(await remove(t.id, user)).toEqual({ removed: true });
  });
});

describe('super admins', () => {
  const grant = (user: string) => svc((tx) => one(tx`select public.grant_super_admin(${user}) as changed`));
  const revoke = (user: string) => svc((tx) => one(tx`select public.revoke_super_admin(${user}) as changed`));

  it('grant_super_admin makes a user super admin (true), and a repeat changes nothing (false)', async () => {
    const user = await makeUser(db.sql);
    expect(await grant(user)).toEqual({ changed: true });
    expect(await grant(user)).toEqual({ changed: false });
    expect(await db.sql`select user_id from supaqueue.super_admins where user_id = ${user}`).toHaveLength(1);
  });

  it('a new super admin reads every tenant\'s jobs at once, and not after revoke_super_admin', async () => {
    const user = await makeUser(db.sql);
    const [job] = await enqueueMany(db.sql, await makeTenant(db.sql), 1);
    const sees = () => asUser(db.sql, user, async (tx) => (await tx`select id from public.job_queue where id = ${job}`).length);
    expect(await sees()).toBe(0);
    await grant(user);
    expect(await sees()).toBe(1);
    expect(await revoke(user)).toEqual({ changed: true });
    expect(await sees()).toBe(0);
  });

  it('revoke_super_admin of a user who is not one answers false', async () => {
    expect(await revoke(await makeUser(db.sql))).toEqual({ changed: false });
  });

  it('grant_super_admin of an unknown user answers INVALID_ARGUMENT (QJ001)', async () => {
    expect(await sqlState(grant(randomUUID()))).toBe('QJ001');
  });
});
