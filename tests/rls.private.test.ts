/**
 * The private schema `supaqueue` is never served by PostgREST, but signed-in users' own SQL (and RLS
 * policies) reach it, so it is checked as if called directly: the security definer helpers that
 * authenticated may call give no more than the public path, and everything else is refused (42501).
 */
import type { TransactionSql } from 'postgres';
import { beforeAll, expect, test } from 'vitest';
import {
  addMember, asRole, enqueueMany, makeSuperAdmin, makeTenant, makeUser, sqlState, userClaims, useTestDatabase,
} from './helpers/db.ts';
import { DENY, OK, ROLES, type Expect, type Role } from './helpers/roles.ts';


type Call =
  | 'insert_jobs for A' | 'insert_job_specs for A' | 'insert_jobs_as_member for A' | 'insert_jobs_as_member for A and B'
  | "act_on_job_as_member cancel A's job" | "act_on_job_as_member retry A's job"
  | "retry_job(A's job, user null)" | "cancel_job(A's job, user null)" | "lock_job_for_caller(A's job, user null)"
  | 'release_running(A)' | 'promote_due_jobs' | 'parse_job_specs' | 'fair_base(A)'
  | 'select super_admins' | 'insert myself into super_admins' | 'select tenant_limits' | 'update tenant_limits'
  | 'tenant_admin_run grant myself (caller null)' | 'tenant_admin_as_member add myself to A as admin'
  | 'add_tenant_member(A, myself, admin, caller null)' | 'set_super_admin(myself, caller null)' | 'write_tenant_limits(A)';

// The two definer helpers open to authenticated are exactly the member paths of enqueue and
// retry/cancel (and are closed to service_role, which has its own path). The service paths with
// user null (which skip the membership check) and every table are refused to signed-in users.
const MATRIX: [Call, ...Expect[]][] = [
  //                                          anon  member A  member B  no member  super admin  service_role
  ['insert_jobs for A',                       DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['insert_job_specs for A',                  DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['insert_jobs_as_member for A',             DENY, OK,       'QJ002',  'QJ002',   'QJ002',     DENY],
  ['insert_jobs_as_member for A and B',       DENY, 'QJ002',  'QJ002',  'QJ002',   'QJ002',     DENY],
  ["act_on_job_as_member cancel A's job",     DENY, OK,       'QJ003',  'QJ003',   OK,          DENY],
  ["act_on_job_as_member retry A's job",      DENY, OK,       'QJ003',  'QJ003',   OK,          DENY],
  ["retry_job(A's job, user null)",           DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ["cancel_job(A's job, user null)",          DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ["lock_job_for_caller(A's job, user null)", DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['release_running(A)',                      DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['promote_due_jobs',                        DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['parse_job_specs',                         DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['fair_base(A)',                            DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['select super_admins',                     DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['insert myself into super_admins',         DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['select tenant_limits',                    DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['update tenant_limits',                    DENY, DENY,     DENY,     DENY,      DENY,        OK],
  // Management: the one definer helper takes the caller from auth.uid(); the paths with a caller argument
  // (null = service) are service_role only.
  ['tenant_admin_run grant myself (caller null)',      DENY, DENY, DENY, DENY, DENY, OK],
  ['tenant_admin_as_member add myself to A as admin',  DENY, 'QJ010', 'QJ002', 'QJ002', OK, DENY],
  ['add_tenant_member(A, myself, admin, caller null)', DENY, DENY, DENY, DENY, DENY, OK],
  ['set_super_admin(myself, caller null)',             DENY, DENY, DENY, DENY, DENY, OK],
  ['write_tenant_limits(A)',                           DENY, DENY, DENY, DENY, DENY, OK],
];

// The RLS helpers answer only about the caller (auth.uid()), never about a tenant or user passed in.
// Values: tenant letters for member_tenant_ids(), booleans for the others.
const HELPERS: [string, (tx: TransactionSql) => Promise<unknown>, ...unknown[]][] = [
  //                                               anon  member A  member B  no member  super admin
  ['member_tenant_ids()', (tx) => memberTenants(tx), DENY, ['A'],   ['B'],    [],        []],
  ['has_tenant_role(A)', (tx) => hasRole(tx, 'A', 'member'), DENY, true, false, false, false],
  ['has_tenant_role(A, admin)', (tx) => hasRole(tx, 'A', 'admin'), DENY, false, false, false, false],
  ['has_tenant_role(B)', (tx) => hasRole(tx, 'B', 'member'), DENY, false, true, false, false],
  ['is_super_admin()', async (tx) => (await tx`select supaqueue.is_super_admin() as v`)[0].v, DENY, false, false, false, true],
];

const db = useTestDatabase();
let fx: { A: string; B: string; users: Record<Exclude<Role, 'anon' | 'service_role'>, string>; pending: string; cancelled: string };

const jobsFor = (...tenants: string[]) => tenants.map((t) => ({ tenant_id: t, type: 'test.job' }));
const CALLS: Record<Call, (tx: TransactionSql, self: string | null) => Promise<unknown>> = {
  'insert_jobs for A': async (tx) => expect((await tx`select created from supaqueue.insert_jobs(${tx.json(jobsFor(fx.A))})`)[0].created).toBe(true),
  // Already-parsed specs, built without parse_job_specs so that only insert_job_specs is being called.
  'insert_job_specs for A': async (tx) => expect((await tx`
    select created from supaqueue.insert_job_specs(array(
      select r from jsonb_populate_recordset(null::supaqueue.job_spec, ${tx.json([{
        n: 1, id: crypto.randomUUID(), tenant_id: fx.A, type: 'test.job', payload: {}, priority: 0, scheduled_at: new Date().toISOString(),
        run_at_given: false, max_attempts: 3, backoff_base_ms: 1000, backoff_max_ms: 3600000, payload_bytes: 2 }])}) r))`)[0].created).toBe(true),
  'insert_jobs_as_member for A': async (tx) =>
    expect((await tx`select created from supaqueue.insert_jobs_as_member(${tx.json(jobsFor(fx.A))})`)[0].created).toBe(true),
  'insert_jobs_as_member for A and B': (tx) => tx`select * from supaqueue.insert_jobs_as_member(${tx.json(jobsFor(fx.A, fx.B))})`,
  "act_on_job_as_member cancel A's job": async (tx) =>
    expect(await tx`select id, status from supaqueue.act_on_job_as_member('cancel', ${fx.pending})`).toEqual([{ id: fx.pending, status: 'cancelled' }]),
  "act_on_job_as_member retry A's job": async (tx) =>
    expect(await tx`select id, status from supaqueue.act_on_job_as_member('retry', ${fx.cancelled})`).toEqual([{ id: fx.cancelled, status: 'pending' }]),
  "retry_job(A's job, user null)": async (tx) =>
    expect((await tx`select status from supaqueue.retry_job(${fx.cancelled}, 0, null)`)[0].status).toBe('pending'),
  "cancel_job(A's job, user null)": async (tx) =>
    expect((await tx`select status from supaqueue.cancel_job(${fx.pending}, null)`)[0].status).toBe('cancelled'),
  "lock_job_for_caller(A's job, user null)": async (tx) =>
    expect((await tx`select (supaqueue.lock_job_for_caller(${fx.pending}, null)).id`)[0].id).toBe(fx.pending),
  'release_running(A)': (tx) => tx`select supaqueue.release_running(array[${fx.A}]::uuid[])`,
  promote_due_jobs: async (tx) => expect((await tx`select supaqueue.promote_due_jobs() as n`)[0].n).toBe(0),
  parse_job_specs: async (tx) => expect((await tx`select cardinality(supaqueue.parse_job_specs(${tx.json(jobsFor(fx.A))})) as n`)[0].n).toBe(1),
  'fair_base(A)': (tx) => tx`select supaqueue.fair_base(${fx.A}, 0::smallint)`,
  'select super_admins': async (tx) => expect((await tx`select user_id from supaqueue.super_admins`).map((r) => r.user_id)).toEqual([fx.users['super admin']]),
  'insert myself into super_admins': async (tx, self) =>
    expect(await tx`insert into supaqueue.super_admins (user_id) values (${self ?? fx.users['no membership']}) on conflict do nothing returning 1 as one`).toHaveLength(1),
  'select tenant_limits': async (tx) => expect((await tx`select tenant_id from supaqueue.tenant_limits`).map((r) => r.tenant_id)).toEqual([fx.A]),
  'update tenant_limits': async (tx) => expect(await tx`update supaqueue.tenant_limits set max_running = 1000 returning tenant_id`).toHaveLength(1),
  'tenant_admin_run grant myself (caller null)': async (tx, self) =>
    expect((await tx`select supaqueue.tenant_admin_run('grant_super_admin', ${tx.json({ user_id: self ?? fx.users['no membership'] })}, null) as r`)[0].r).toBe(true),
  'tenant_admin_as_member add myself to A as admin': async (tx, self) =>
    expect((await tx`select supaqueue.tenant_admin_as_member('add_tenant_member', ${tx.json({ tenant_id: fx.A, user_id: self, role: 'admin' })}) as r`)[0].r.role).toBe('admin'),
  'add_tenant_member(A, myself, admin, caller null)': async (tx, self) =>
    expect((await tx`select (supaqueue.add_tenant_member(${fx.A}, ${self ?? fx.users['no membership']}, 'admin', null)).role`)[0].role).toBe('admin'),
  'set_super_admin(myself, caller null)': async (tx, self) =>
    expect((await tx`select supaqueue.set_super_admin(${self ?? fx.users['no membership']}, true, null) as r`)[0].r).toBe(true),
  'write_tenant_limits(A)': async (tx) =>
    expect((await tx`select (supaqueue.write_tenant_limits(${fx.A}, ${tx.json({ max_queued_jobs: 1 })})).max_queued_jobs as n`)[0].n).toBe(1),
};

async function memberTenants(tx: TransactionSql): Promise<string[]> {
  const rows = await tx`select t from supaqueue.member_tenant_ids() t`;
  return rows.map((r) => (r.t === fx.A ? 'A' : r.t === fx.B ? 'B' : r.t)).sort();
}
async function hasRole(tx: TransactionSql, tenant: 'A' | 'B', min: string): Promise<boolean> {
  return (await tx`select supaqueue.has_tenant_role(${fx[tenant]}, ${min}) as v`)[0].v as boolean;
}

function selfOf(role: Role): string | null {
  return role === 'anon' || role === 'service_role' ? null : fx.users[role];
}
function runAs<T>(role: Role, fn: (tx: TransactionSql) => Promise<T>, rollback: boolean): Promise<T> {
  if (role === 'anon') return asRole(db.sql, 'anon', { role: 'anon' }, fn, { rollback });
  if (role === 'service_role') return asRole(db.sql, 'service_role', { role: 'service_role' }, fn, { rollback });
  return asRole(db.sql, 'authenticated', userClaims(fx.users[role]), fn, { rollback });
}

async function fingerprint(): Promise<string> {
  const [r] = await db.sql`
    select md5(coalesce((select string_agg(j::text, '|' order by j.id) from public.job_queue j), '')
            || coalesce((select string_agg(s::text, '|' order by s.user_id) from supaqueue.super_admins s), '')
            || coalesce((select string_agg(l::text, '|' order by l.tenant_id) from supaqueue.tenant_limits l), '')
            || coalesce((select string_agg(t::text, '|' order by t.id) from public.tenants t), '')
            || coalesce((select string_agg(m::text, '|' order by m.tenant_id, m.user_id) from public.tenant_members m), '')) as h`;
  return r.h as string;
}

beforeAll(async () => {
  // A has a concurrency limit, so it has a tenant_limits row.
  const [A, B] = [await makeTenant(db.sql, { name: 'A', maxConcurrentJobs: 5 }), await makeTenant(db.sql, { name: 'B' })];
  const users = {
    'member of A': await makeUser(db.sql), 'member of B': await makeUser(db.sql),
    'no membership': await makeUser(db.sql), 'super admin': await makeUser(db.sql),
  };
  await addMember(db.sql, A, users['member of A'], 'member');
  await addMember(db.sql, B, users['member of B'], 'member');
  await makeSuperAdmin(db.sql, users['super admin']);
  const [pending, cancelled] = await enqueueMany(db.sql, A, 2);
  await db.sql`select public.cancel_job(${cancelled})`;
  fx = { A, B, users, pending, cancelled };
});

test.each(MATRIX.flatMap(([call, ...e]) => ROLES.map((role, i) => ({ call, role, expect: e[i] }))))(
  '$role calls supaqueue $call -> $expect', async ({ call, role, expect: want }) => {
    if (want === OK) {
      await runAs(role, (tx) => CALLS[call](tx, selfOf(role)), true);
      return;
    }
    // Refused calls commit like a real request would; nothing may have changed.
    const before = await fingerprint();
    expect(await sqlState(runAs(role, (tx) => CALLS[call](tx, selfOf(role)), false))).toBe(want);
    expect(await fingerprint()).toBe(before);
  });

test.each(HELPERS.flatMap(([name, fn, ...values]) => ROLES.slice(0, 5).map((role, i) => ({ name, fn, role, want: values[i] }))))(
  '$role calls supaqueue.$name -> $want', async ({ fn, role, want }) => {
    const run = runAs(role, fn, true);
    if (want === DENY) expect(await sqlState(run)).toBe(DENY);
    else expect(await run).toEqual(want);
  });
