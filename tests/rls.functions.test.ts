/**
 * Every public function x every role, called exactly as PostgREST calls an RPC. Allowed calls run in a
 * rolled-back transaction and check what they did; refused calls commit like a real request would,
 * and the test then checks no job changed.
 */
import type { TransactionSql } from 'postgres';
import { beforeAll, expect, test } from 'vitest';
import {
  addMember, asRole, asService, enqueueMany, makeSuperAdmin, makeTenant, makeUser, sqlState, userClaims, useTestDatabase,
} from './helpers/db.ts';
import { DENY, OK, ROLES, type Expect, type Role } from './helpers/roles.ts';


type Call =
  | 'claim_jobs' | 'complete_jobs' | 'complete_job' | 'fail_jobs' | 'fail_job' | 'release_jobs' | 'heartbeat_jobs'
  | 'set_job_progress' | 'reclaim_expired_jobs' | 'purge_finished_jobs' | 'run_maintenance'
  | 'enqueue_job for A' | 'enqueue_job for B' | 'enqueue_jobs for A' | 'enqueue_jobs for A and B'
  | "retry_job on A's job" | "retry_job on B's job" | "cancel_job on A's job" | "cancel_job on B's job"
  | 'create_tenant' | 'rename_tenant A' | 'set_tenant_limits A' | 'delete_tenant A' | 'add_tenant_member A'
  | 'remove_tenant_member A' | 'grant_super_admin' | 'revoke_super_admin';

// The worker API is service_role only. Enqueue: members for their own tenants (a batch must be all
// theirs), service_role for any; super admins read every tenant but enqueue for none. Retry/cancel:
// members of the job's tenant and super admins. "Not yours" and "does not exist" give the same code.
const MATRIX: [Call, ...Expect[]][] = [
  //                              anon  member A  member B  no member  super admin  service_role
  ['claim_jobs',                  DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['complete_jobs',               DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['complete_job',                DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['fail_jobs',                   DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['fail_job',                    DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['release_jobs',                DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['heartbeat_jobs',              DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['set_job_progress',            DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['reclaim_expired_jobs',        DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['purge_finished_jobs',         DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['run_maintenance',             DENY, DENY,     DENY,     DENY,      DENY,        OK],
  ['enqueue_job for A',           DENY, OK,       'QJ002',  'QJ002',   'QJ002',     OK],
  ['enqueue_job for B',           DENY, 'QJ002',  OK,       'QJ002',   'QJ002',     OK],
  ['enqueue_jobs for A',          DENY, OK,       'QJ002',  'QJ002',   'QJ002',     OK],
  ['enqueue_jobs for A and B',    DENY, 'QJ002',  'QJ002',  'QJ002',   'QJ002',     OK],
  ["retry_job on A's job",        DENY, OK,       'QJ003',  'QJ003',   OK,          OK],
  ["retry_job on B's job",        DENY, 'QJ003',  OK,       'QJ003',   OK,          OK],
  ["cancel_job on A's job",       DENY, OK,       'QJ003',  'QJ003',   OK,          OK],
  ["cancel_job on B's job",       DENY, 'QJ003',  OK,       'QJ003',   OK,          OK],
  // Management (tests/admin.access.test.ts has the tenant-admin cases): operators only, except that a
  // tenant's admins manage its members; plain members get FORBIDDEN, outsiders "tenant not found".
  ['create_tenant',               DENY, 'QJ010',  'QJ010',  'QJ010',   OK,          OK],
  ['rename_tenant A',             DENY, 'QJ010',  'QJ002',  'QJ002',   OK,          OK],
  ['set_tenant_limits A',         DENY, 'QJ010',  'QJ002',  'QJ002',   OK,          OK],
  ['delete_tenant A',             DENY, 'QJ010',  'QJ002',  'QJ002',   OK,          OK],
  ['add_tenant_member A',         DENY, 'QJ010',  'QJ002',  'QJ002',   OK,          OK],
  ['remove_tenant_member A',      DENY, 'QJ010',  'QJ002',  'QJ002',   OK,          OK],
  ['grant_super_admin',           DENY, 'QJ010',  'QJ010',  'QJ010',   OK,          OK],
  ['revoke_super_admin',          DENY, 'QJ010',  'QJ010',  'QJ010',   OK,          OK],
];

const CASES = MATRIX.flatMap(([call, ...expects]) => ROLES.map((role, i) => ({ call, role, expect: expects[i] })));

interface Fixture {
  A: string; B: string;
  users: Record<Exclude<Role, 'anon' | 'service_role'>, string>;
  /** Per tenant: a pending job (to cancel) and a cancelled one (to retry). */
  pending: { A: string; B: string };
  cancelled: { A: string; B: string };
  /** A job of A held by a worker, and its lease: what the worker functions act on. */
  held: { id: string; lease: string };
}
const db = useTestDatabase();
let fx: Fixture;

/** Each call runs its statements and throws (via expect) when an allowed call did not do its job. */
const CALLS: Record<Call, (tx: TransactionSql) => Promise<void>> = {
  claim_jobs: async (tx) => expect((await tx`select id from public.claim_jobs('w-test', array['test.job'], 1)`).length).toBe(1),
  complete_jobs: async (tx) => expect(await tx`select id from public.complete_jobs(array[${fx.held.id}]::uuid[], array[${fx.held.lease}]::uuid[])`).toEqual([{ id: fx.held.id }]),
  complete_job: async (tx) => expect((await tx`select public.complete_job(${fx.held.id}, ${fx.held.lease}) as ok`)[0].ok).toBe(true),
  fail_jobs: async (tx) => expect((await tx`select status from public.fail_jobs(array[${fx.held.id}]::uuid[], array[${fx.held.lease}]::uuid[], array['boom'])`)[0].status).toBe('pending'),
  fail_job: async (tx) => expect((await tx`select public.fail_job(${fx.held.id}, ${fx.held.lease}, 'boom') as s`)[0].s).toBe('pending'),
  release_jobs: async (tx) => expect(await tx`select id from public.release_jobs(array[${fx.held.id}]::uuid[], array[${fx.held.lease}]::uuid[])`).toEqual([{ id: fx.held.id }]),
  heartbeat_jobs: async (tx) => expect((await tx`select lease_valid from public.heartbeat_jobs(array[${fx.held.id}]::uuid[], array[${fx.held.lease}]::uuid[])`)[0].lease_valid).toBe(true),
  set_job_progress: async (tx) => expect((await tx`select public.set_job_progress(${fx.held.id}, ${fx.held.lease}, '{"percent": 50}') as ok`)[0].ok).toBe(true),
  reclaim_expired_jobs: async (tx) => expect((await tx`select public.reclaim_expired_jobs() as n`)[0].n).toBe(0),
  purge_finished_jobs: async (tx) => {
    const [{ n }] = await tx`select public.purge_finished_jobs('0 seconds') as n`;
    const [{ left }] = await tx`select count(*)::int as left from public.job_queue where completed_at is not null`;
    expect({ n, left }).toEqual({ n: 2, left: 0 }); // the two cancelled jobs
  },
  run_maintenance: async (tx) => expect(Object.keys((await tx`select public.run_maintenance() as r`)[0].r).sort()).toEqual(['promoted', 'purged', 'reclaimed', 'stats_folded']),
  'enqueue_job for A': (tx) => enqueuedFor(tx, tx`select * from public.enqueue_job(${fx.A}, 'test.job')`, [fx.A]),
  'enqueue_job for B': (tx) => enqueuedFor(tx, tx`select * from public.enqueue_job(${fx.B}, 'test.job')`, [fx.B]),
  'enqueue_jobs for A': (tx) => enqueuedFor(tx, tx`select * from public.enqueue_jobs(${tx.json([{ tenant_id: fx.A, type: 'test.job' }])})`, [fx.A]),
  'enqueue_jobs for A and B': (tx) => enqueuedFor(tx,
    tx`select * from public.enqueue_jobs(${tx.json([{ tenant_id: fx.A, type: 'test.job' }, { tenant_id: fx.B, type: 'test.job' }])})`, [fx.A, fx.B]),
  "retry_job on A's job": (tx) => settledTo(tx`select id, status from public.retry_job(${fx.cancelled.A})`, fx.cancelled.A, 'pending'),
  "retry_job on B's job": (tx) => settledTo(tx`select id, status from public.retry_job(${fx.cancelled.B})`, fx.cancelled.B, 'pending'),
  "cancel_job on A's job": (tx) => settledTo(tx`select id, status from public.cancel_job(${fx.pending.A})`, fx.pending.A, 'cancelled'),
  "cancel_job on B's job": (tx) => settledTo(tx`select id, status from public.cancel_job(${fx.pending.B})`, fx.pending.B, 'cancelled'),
  create_tenant: async (tx) => expect((await tx`select name from public.create_tenant('C')`)[0].name).toBe('C'),
  'rename_tenant A': async (tx) => expect((await tx`select name from public.rename_tenant(${fx.A}, 'A2')`)[0].name).toBe('A2'),
  'set_tenant_limits A': async (tx) =>
    expect((await tx`select max_queued_jobs from public.set_tenant_limits(${fx.A}, ${tx.json({ max_queued_jobs: 9 })})`)[0].max_queued_jobs).toBe(9),
  'delete_tenant A': async (tx) => {
    await tx`select id from public.delete_tenant(${fx.A}, true)`;
    expect(await tx`select 1 from public.tenants where id = ${fx.A}`).toHaveLength(0);
  },
  'add_tenant_member A': async (tx) =>
    expect((await tx`select role from public.add_tenant_member(${fx.A}, ${fx.users['no membership']}, 'admin')`)[0].role).toBe('admin'),
  'remove_tenant_member A': async (tx) =>
    expect((await tx`select public.remove_tenant_member(${fx.A}, ${fx.users['member of A']}) as ok`)[0].ok).toBe(true),
  grant_super_admin: async (tx) => expect((await tx`select public.grant_super_admin(${fx.users['no membership']}) as ok`)[0].ok).toBe(true),
  revoke_super_admin: async (tx) => expect((await tx`select public.revoke_super_admin(${fx.users['super admin']}) as ok`)[0].ok).toBe(true),
};

/** The enqueue created one new job per tenant given, each in that tenant (read back in the same request). */
async function enqueuedFor(tx: TransactionSql, call: Promise<readonly Record<string, unknown>[]>, tenants: string[]): Promise<void> {
  const rows = await call;
  expect(rows.map((r) => r.created)).toEqual(tenants.map(() => true));
  const ids = rows.map((r) => r.job_id as string);
  const found = await tx`select tenant_id from public.job_queue where id = any (${ids}::uuid[]) order by array_position(${ids}::uuid[], id)`;
  expect(found.map((r) => r.tenant_id)).toEqual(tenants);
}

async function settledTo(call: Promise<readonly Record<string, unknown>[]>, id: string, status: string): Promise<void> {
  expect(await call).toEqual([{ id, status }]);
}

function runAs(role: Role, fn: (tx: TransactionSql) => Promise<void>, rollback: boolean): Promise<void> {
  if (role === 'anon') return asRole(db.sql, 'anon', { role: 'anon' }, fn, { rollback });
  if (role === 'service_role') return asRole(db.sql, 'service_role', { role: 'service_role' }, fn, { rollback });
  return asRole(db.sql, 'authenticated', userClaims(fx.users[role]), fn, { rollback });
}

/** Jobs, and what the management functions change (tenants, members, super admins). */
async function jobsFingerprint(): Promise<string> {
  const [r] = await db.sql`select md5(concat_ws('#', coalesce(string_agg(j::text, '|' order by j.id), ''),
    (select string_agg(t::text, '|' order by t.id) from public.tenants t),
    (select string_agg(m::text, '|' order by m.tenant_id, m.user_id) from public.tenant_members m),
    (select string_agg(s.user_id::text, '|' order by s.user_id) from supaqueue.super_admins s))) as h from public.job_queue j`;
  return r.h as string;
}

beforeAll(async () => {
  const [A, B] = [await makeTenant(db.sql, { name: 'A' }), await makeTenant(db.sql, { name: 'B' })];
  const users = {
    'member of A': await makeUser(db.sql), 'member of B': await makeUser(db.sql),
    'no membership': await makeUser(db.sql), 'super admin': await makeUser(db.sql),
  };
  await addMember(db.sql, A, users['member of A']);
  await addMember(db.sql, B, users['member of B']);
  await makeSuperAdmin(db.sql, users['super admin']);
  const [heldId] = await enqueueMany(db.sql, A, 1, { type: 'held.job' });
  const [claimed] = await asService(db.sql, (tx) => tx`select id, lease_id from public.claim_jobs('w-held', array['held.job'], 1, 3600)`);
  const [pendingA, cancelledA] = await enqueueMany(db.sql, A, 2);
  const [pendingB, cancelledB] = await enqueueMany(db.sql, B, 2);
  // As the owner, not service_role: this fixture must not depend on the service path under test.
  await db.sql`select public.cancel_job(${cancelledA}), public.cancel_job(${cancelledB})`;
  expect(claimed.id).toBe(heldId);
  fx = { A, B, users, pending: { A: pendingA, B: pendingB }, cancelled: { A: cancelledA, B: cancelledB },
    held: { id: heldId, lease: claimed.lease_id as string } };
});

test.each(CASES)('$role calls $call -> $expect', async ({ call, role, expect: want }) => {
  if (want === OK) {
    await runAs(role, CALLS[call], true);
    return;
  }
  const before = await jobsFingerprint();
  expect(await sqlState(runAs(role, CALLS[call], false))).toBe(want);
  expect(await jobsFingerprint()).toBe(before);
});
