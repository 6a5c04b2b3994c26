/**
 * Who may manage tenants, members and super admins: every management function x every kind of caller,
 * called as PostgREST calls an RPC, plus the tenant-admin guards (own tenant only, never super admin,
 * never the last admin). Allowed calls run in a rolled-back transaction and check what they did;
 * refused calls commit like a real request would, and the test then checks nothing changed.
 */
import { randomUUID } from 'node:crypto';
import type { TransactionSql } from 'postgres';
import { beforeAll, describe, expect, it, test } from 'vitest';
import {
  addMember, asRole, asUser, enqueueMany, makeSuperAdmin, makeTenant, makeUser, type Sql, sqlState, userClaims, useTestDatabase,
} from './helpers/db.ts';

type Role = 'anon' | 'admin of A' | 'member of A' | 'admin of B' | 'no membership' | 'super admin' | 'service_role';
const ROLES: Role[] = ['anon', 'admin of A', 'member of A', 'admin of B', 'no membership', 'super admin', 'service_role'];
type Expect = 'ok' | '42501' | 'QJ002' | 'QJ010';
const OK = 'ok';
const DENY = '42501';

type Call =
  | 'create_tenant' | 'rename_tenant(A)' | 'set_tenant_limits(A)' | 'delete_tenant(A, force)'
  | 'add_tenant_member(A, new user)' | 'add_tenant_member(A, member of A, admin)' | 'remove_tenant_member(A, member of A)'
  | 'add_tenant_member(B, new user)' | 'grant_super_admin(self)' | 'revoke_super_admin(super admin)';

// Operators (service role, super admins) do everything. A tenant admin manages the members of their own
// tenant and nothing else; a plain member nothing (QJ010); anyone outside the tenant gets QJ002, the
// answer for a tenant that does not exist.
const MATRIX: [Call, ...Expect[]][] = [
  //                                           anon  admin A  member A  admin B  no member  super admin  service_role
  ['create_tenant',                            DENY, 'QJ010', 'QJ010',  'QJ010', 'QJ010',   OK,          OK],
  ['rename_tenant(A)',                         DENY, 'QJ010', 'QJ010',  'QJ002', 'QJ002',   OK,          OK],
  ['set_tenant_limits(A)',                     DENY, 'QJ010', 'QJ010',  'QJ002', 'QJ002',   OK,          OK],
  ['delete_tenant(A, force)',                  DENY, 'QJ010', 'QJ010',  'QJ002', 'QJ002',   OK,          OK],
  ['add_tenant_member(A, new user)',           DENY, OK,      'QJ010',  'QJ002', 'QJ002',   OK,          OK],
  ['add_tenant_member(A, member of A, admin)', DENY, OK,      'QJ010',  'QJ002', 'QJ002',   OK,          OK],
  ['remove_tenant_member(A, member of A)',     DENY, OK,      'QJ010',  'QJ002', 'QJ002',   OK,          OK],
  ['add_tenant_member(B, new user)',           DENY, 'QJ002', 'QJ002',  OK,      'QJ002',   OK,          OK],
  ['grant_super_admin(self)',                  DENY, 'QJ010', 'QJ010',  'QJ010', 'QJ010',   OK,          OK],
  ['revoke_super_admin(super admin)',          DENY, 'QJ010', 'QJ010',  'QJ010', 'QJ010',   OK,          OK],
];

const db = useTestDatabase();
let fx: { A: string; B: string; users: Record<Exclude<Role, 'anon' | 'service_role'>, string>; outsider: string };

const one = async (p: Promise<readonly Record<string, any>[]>) => (await p)[0];
const roleOf = async (tx: TransactionSql, tenant: string, user: string) =>
  (await tx`select role from public.tenant_members where tenant_id = ${tenant} and user_id = ${user}`)[0]?.role ?? null;

/** Each call runs its statements and throws (via expect) when an allowed call did not do its job. */
const CALLS: Record<Call, (tx: TransactionSql, self: string) => Promise<void>> = {
  create_tenant: async (tx) => expect(await one(tx`select name from public.create_tenant('New', ${tx.json({ max_queued_jobs: 5 })})`)).toEqual({ name: 'New' }),
  'rename_tenant(A)': async (tx) => expect(await one(tx`select name from public.rename_tenant(${fx.A}, 'Renamed')`)).toEqual({ name: 'Renamed' }),
  'set_tenant_limits(A)': async (tx) =>
    expect(await one(tx`select max_queued_jobs from public.set_tenant_limits(${fx.A}, ${tx.json({ max_queued_jobs: 1_000_000 })})`)).toEqual({ max_queued_jobs: 1_000_000 }),
  'delete_tenant(A, force)': async (tx) => {
    await tx`select id from public.delete_tenant(${fx.A}, true)`;
    expect(await tx`select id from public.tenants where id = ${fx.A}`).toHaveLength(0);
  },
  'add_tenant_member(A, new user)': async (tx) => {
    await tx`select * from public.add_tenant_member(${fx.A}, ${fx.outsider})`;
    expect(await roleOf(tx, fx.A, fx.outsider)).toBe('member');
  },
  'add_tenant_member(A, member of A, admin)': async (tx) => {
    await tx`select * from public.add_tenant_member(${fx.A}, ${fx.users['member of A']}, 'admin')`;
    expect(await roleOf(tx, fx.A, fx.users['member of A'])).toBe('admin');
  },
  'remove_tenant_member(A, member of A)': async (tx) => {
    expect(await one(tx`select public.remove_tenant_member(${fx.A}, ${fx.users['member of A']}) as removed`)).toEqual({ removed: true });
    expect(await roleOf(tx, fx.A, fx.users['member of A'])).toBeNull();
  },
  'add_tenant_member(B, new user)': async (tx) => {
    await tx`select * from public.add_tenant_member(${fx.B}, ${fx.outsider})`;
    expect(await roleOf(tx, fx.B, fx.outsider)).toBe('member');
  },
  // Revoking right after answers true only if the user is a super admin by then.
  'grant_super_admin(self)': async (tx, self) => {
    await tx`select public.grant_super_admin(${self})`;
    expect(await one(tx`select public.revoke_super_admin(${self}) as changed`)).toEqual({ changed: true });
  },
  'revoke_super_admin(super admin)': async (tx) =>
    expect(await one(tx`select public.revoke_super_admin(${fx.users['super admin']}) as changed`)).toEqual({ changed: true }),
};

function runAs(sql: Sql, role: Role, fn: (tx: TransactionSql) => Promise<void>, rollback: boolean): Promise<void> {
  if (role === 'anon') return asRole(sql, 'anon', { role: 'anon' }, fn, { rollback });
  if (role === 'service_role') return asRole(sql, 'service_role', { role: 'service_role' }, fn, { rollback });
  return asRole(sql, 'authenticated', userClaims(fx.users[role]), fn, { rollback });
}

/** Everything the management functions could change. */
async function fingerprint(): Promise<string> {
  const [r] = await db.sql`
    select md5(concat_ws('|',
      (select string_agg(t::text, ',' order by t.id) from public.tenants t),
      (select string_agg(m::text, ',' order by m.tenant_id, m.user_id) from public.tenant_members m),
      (select string_agg(s.user_id::text, ',' order by s.user_id) from supaqueue.super_admins s),
      (select string_agg(l::text, ',' order by l.tenant_id) from supaqueue.tenant_limits l),
      (select string_agg(j.id::text, ',' order by j.id) from public.job_queue j))) as h`;
  return r.h as string;
}

beforeAll(async () => {
  const [A, B] = [await makeTenant(db.sql, { name: 'A', maxConcurrentJobs: 5 }), await makeTenant(db.sql, { name: 'B' })];
  const users = {
    'admin of A': await makeUser(db.sql), 'member of A': await makeUser(db.sql), 'admin of B': await makeUser(db.sql),
    'no membership': await makeUser(db.sql), 'super admin': await makeUser(db.sql),
  };
  await addMember(db.sql, A, users['admin of A'], 'admin');
  await addMember(db.sql, A, users['member of A'], 'member');
  await addMember(db.sql, B, users['admin of B'], 'admin');
  await makeSuperAdmin(db.sql, users['super admin']);
  await enqueueMany(db.sql, A, 1);
  fx = { A, B, users, outsider: await makeUser(db.sql) };
});

test.each(MATRIX.flatMap(([call, ...e]) => ROLES.map((role, i) => ({ call, role, expect: e[i] }))))(
  '$role calls $call -> $expect', async ({ call, role, expect: want }) => {
    const self = role === 'anon' || role === 'service_role' ? fx.outsider : fx.users[role];
    if (want === OK) {
      await runAs(db.sql, role, (tx) => CALLS[call](tx, self), true);
      return;
    }
    const before = await fingerprint();
    expect(await sqlState(runAs(db.sql, role, (tx) => CALLS[call](tx, self), false))).toBe(want);
    expect(await fingerprint()).toBe(before);
  });

describe('tenant admins', () => {
  /** A tenant with the given admins (and one plain member); returns its id, admins first. */
  async function tenantWith(admins: number): Promise<{ tenant: string; admins: string[]; member: string }> {
    const tenant = await makeTenant(db.sql);
    const ids = [];
    for (let i = 0; i < admins; i++) {
      ids.push(await makeUser(db.sql));
      await addMember(db.sql, tenant, ids[i], 'admin');
    }
    const member = await makeUser(db.sql);
    await addMember(db.sql, tenant, member, 'member');
    return { tenant, admins: ids, member };
  }
  const demote = (by: string, tenant: string, user: string) =>
    asUser(db.sql, by, (tx) => tx`select * from public.add_tenant_member(${tenant}, ${user}, 'member')`);
  const remove = (by: string, tenant: string, user: string) =>
    asUser(db.sql, by, (tx) => tx`select public.remove_tenant_member(${tenant}, ${user})`);
  const admins = async (tenant: string) =>
    (await db.sql`select user_id from public.tenant_members where tenant_id = ${tenant} and role = 'admin' order by user_id`).map((r) => r.user_id);

  it('cannot remove themselves when they are the last admin (INVALID_STATE, QJ004)', async () => {
    const t = await tenantWith(1);
    expect(await sqlState(remove(t.admins[0], t.tenant, t.admins[0]))).toBe('QJ004');
    expect(await admins(t.tenant)).toEqual(t.admins);
  });

  it('cannot demote themselves when they are the last admin (QJ004)', async () => {
    const t = await tenantWith(1);
    expect(await sqlState(demote(t.admins[0], t.tenant, t.admins[0]))).toBe('QJ004');
    expect(await admins(t.tenant)).toEqual(t.admins);
  });

  it('may step down once another admin exists', async () => {
    const t = await tenantWith(1);
    await asUser(db.sql, t.admins[0], (tx) => tx`select * from public.add_tenant_member(${t.tenant}, ${t.member}, 'admin')`);
    await remove(t.admins[0], t.tenant, t.admins[0]);
    expect(await admins(t.tenant)).toEqual([t.member]);
  });

  // y's call waits for x's (the tenant's membership is locked for the change), then finds y no longer
  // admin. Without that lock both calls would pass their checks on the old state and leave no admin.
  it('two admins demoting each other at the same time: one wins, the tenant keeps an admin', async () => {
    const t = await tenantWith(2);
    const [x, y] = t.admins;
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    let demoted!: () => void;
    const firstDone = new Promise<void>((r) => { demoted = r; });
    const first = asUser(db.sql, x, async (tx) => {
      await tx`select * from public.add_tenant_member(${t.tenant}, ${y}, 'member')`;
      demoted();
      await held; // x's transaction is still open when y acts
    });
    await firstDone;
    const second = sqlState(demote(y, t.tenant, x));
    await new Promise((r) => setTimeout(r, 300));
    release();
    await first;
    expect(await second).toBe('QJ010');
    expect(await admins(t.tenant)).toEqual([x]);
  });

  it('lose their powers as soon as they are demoted', async () => {
    const t = await tenantWith(2);
    await demote(t.admins[0], t.tenant, t.admins[1]);
    const outsider = await makeUser(db.sql);
    expect(await sqlState(asUser(db.sql, t.admins[1], (tx) => tx`select * from public.add_tenant_member(${t.tenant}, ${outsider})`))).toBe('QJ010');
  });

  it('cannot reach the service path by calling the private helper with a null caller (42501)', async () => {
    const t = await tenantWith(1);
    expect(await sqlState(asUser(db.sql, t.admins[0],
      (tx) => tx`select supaqueue.tenant_admin_run('grant_super_admin', ${tx.json({ user_id: t.admins[0] })}, null)`))).toBe('42501');
    expect(await db.sql`select 1 from supaqueue.super_admins where user_id = ${t.admins[0]}`).toHaveLength(0);
  });

  it('an unknown tenant and another tenant answer the same (QJ002)', async () => {
    const t = await tenantWith(1);
    const add = (tenant: string) => asUser(db.sql, t.admins[0], (tx) => tx`select * from public.add_tenant_member(${tenant}, ${t.admins[0]}, 'admin')`);
    expect([await sqlState(add(randomUUID())), await sqlState(add(fx.B))]).toEqual(['QJ002', 'QJ002']);
  });
});
