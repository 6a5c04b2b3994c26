/**
 * Who may read and manage recurring-job schedules, through the SQL functions exactly as PostgREST
 * calls them: members read their tenant's schedules; tenant admins and super admins manage them; plain
 * members get QJ010; other tenants' users get "not found" (QJ002 for the tenant, QJ011 for a schedule).
 * Allowed calls run in a rolled-back transaction and check their effect; refused calls commit like a
 * real request, and the test then checks the schedule is unchanged.
 */
import type { TransactionSql } from 'postgres';
import { beforeAll, expect, test } from 'vitest';
import { addMember, asRole, makeSuperAdmin, makeTenant, makeUser, sqlState, userClaims, useTestDatabase } from './helpers/db.ts';

type Role = 'anon' | 'member of A' | 'admin of A' | 'admin of B' | 'no membership' | 'super admin' | 'service_role';
type Call = 'list' | 'create' | 'update' | 'delete' | 'run';
type Expect = 'ok' | 'hidden' | '42501' | 'QJ002' | 'QJ011' | 'QJ010';

// hidden: the list succeeds but shows none of tenant A's schedules.
const MATRIX: Record<Role, Record<Call, Expect>> = {
  'anon':          { list: '42501',  create: '42501', update: '42501', delete: '42501', run: '42501' },
  'member of A':   { list: 'ok',     create: 'QJ010', update: 'QJ010', delete: 'QJ010', run: 'QJ010' },
  'admin of A':    { list: 'ok',     create: 'ok',    update: 'ok',    delete: 'ok',    run: 'ok' },
  'admin of B':    { list: 'hidden', create: 'QJ002', update: 'QJ011', delete: 'QJ011', run: 'QJ011' },
  'no membership': { list: 'hidden', create: 'QJ002', update: 'QJ011', delete: 'QJ011', run: 'QJ011' },
  'super admin':   { list: 'ok',     create: 'ok',    update: 'ok',    delete: 'ok',    run: 'ok' },
  'service_role':  { list: 'ok',     create: 'ok',    update: 'ok',    delete: 'ok',    run: 'ok' },
};

const db = useTestDatabase();
let tenantA: string;
let scheduleA: string;
const users: Partial<Record<Role, string>> = {};

beforeAll(async () => {
  tenantA = await makeTenant(db.sql);
  const tenantB = await makeTenant(db.sql);
  for (const role of ['member of A', 'admin of A', 'admin of B', 'no membership', 'super admin'] as Role[]) users[role] = await makeUser(db.sql);
  await addMember(db.sql, tenantA, users['member of A']!, 'member');
  await addMember(db.sql, tenantA, users['admin of A']!, 'admin');
  await addMember(db.sql, tenantB, users['admin of B']!, 'admin');
  await makeSuperAdmin(db.sql, users['super admin']!);
  const [s] = await db.sql`
    insert into public.job_schedules (tenant_id, name, cron, job_type, next_run_at)
    values (${tenantA}, 'nightly', '0 3 * * *', 'report.nightly', now() + interval '1 hour') returning id`;
  scheduleA = s.id;
});

function as<T>(role: Role, fn: (tx: TransactionSql) => Promise<T>, rollback: boolean): Promise<T> {
  if (role === 'anon') return asRole(db.sql, 'anon', { role: 'anon' }, fn, { rollback });
  if (role === 'service_role') return asRole(db.sql, 'service_role', { role: 'service_role' }, fn, { rollback });
  return asRole(db.sql, 'authenticated', userClaims(users[role]!), fn, { rollback });
}

/** Performs the call and asserts, inside the same transaction, that it did what it says. */
const CALLS: Record<Call, (tx: TransactionSql) => Promise<void>> = {
  async list(tx) {
    const rows = await tx`select id from public.job_schedules where tenant_id = ${tenantA}`;
    expect(rows.map((r) => r.id)).toEqual([scheduleA]);
  },
  async create(tx) {
    const [row] = await tx`select * from public.create_job_schedule(${tx.json({
      tenant_id: tenantA, name: 'hourly', cron: '0 * * * *', job_type: 'report.hourly', time_zone: 'Europe/Berlin',
    } as never)})`;
    expect(row).toMatchObject({ tenant_id: tenantA, name: 'hourly', time_zone: 'Europe/Berlin', enabled: true });
  },
  async update(tx) {
    const [row] = await tx`select * from public.update_job_schedule(${scheduleA}, ${tx.json({ priority: 7 } as never)})`;
    expect(row).toMatchObject({ id: scheduleA, priority: 7 });
  },
  async delete(tx) {
    const [row] = await tx`select * from public.delete_job_schedule(${scheduleA})`;
    expect(row.id).toBe(scheduleA);
    expect(await tx`select 1 from public.job_schedules where id = ${scheduleA}`).toHaveLength(0);
  },
  async run(tx) {
    const [{ job_id }] = await tx`select public.run_job_schedule(${scheduleA}) as job_id`;
    const [job] = await tx`select tenant_id, type, actor_id from public.job_queue where id = ${job_id}`;
    expect(job).toEqual({ tenant_id: tenantA, type: 'report.nightly', actor_id: `schedule:${scheduleA}` });
  },
};

async function snapshot(): Promise<string> {
  const rows = await db.sql`select s::text as s from public.job_schedules s order by id`;
  const [{ jobs }] = await db.sql`select count(*)::int as jobs from public.job_queue`;
  return JSON.stringify({ rows, jobs });
}

const CASES = (Object.keys(MATRIX) as Role[]).flatMap((role) =>
  (Object.keys(MATRIX[role]) as Call[]).map((call) => [role, call, MATRIX[role][call]] as const));

test.each(CASES)('%s: %s -> %s', async (role, call, expected) => {
  if (expected === 'ok') {
    await as(role, CALLS[call], true);
    return;
  }
  if (expected === 'hidden') {
    const rows = await as(role, (tx) => tx`select id from public.job_schedules where tenant_id = ${tenantA}`, false);
    expect(rows).toHaveLength(0);
    return;
  }
  const before = await snapshot();
  expect(await sqlState(as(role, CALLS[call], false))).toBe(expected);
  expect(await snapshot()).toBe(before);
});

test('a plain member cannot write the table directly either (no grant)', async () => {
  const state = await sqlState(as('member of A', (tx) => tx`update public.job_schedules set priority = 9 where id = ${scheduleA}`, false));
  expect(state).toBe('42501');
});
