/**
 * RLS matrix for the public tables, run exactly as PostgREST runs a request (transaction, `set local
 * role`, request.jwt.claims). Every statement runs in a transaction that is rolled back, and the last
 * test checks the tables were left as they were.
 */
import type { TransactionSql } from 'postgres';
import { beforeAll, expect, test } from 'vitest';
import {
  addMember, asRole, enqueueMany, makeSuperAdmin, makeTenant, makeUser, sqlState, userClaims, useTestDatabase,
} from './helpers/db.ts';

type Role = 'anon' | 'member of A' | 'admin of A' | 'member of B' | 'no membership' | 'super admin' | 'service_role';
type Table = 'tenants' | 'tenant_members' | 'job_queue';
type Op = 'select' | 'insert' | 'update' | 'delete';
/** rows: the target tenant's rows are read/written (writes checked via RETURNING); none: zero rows; denied: 42501. */
type Expect = 'rows' | 'none' | 'denied';
const R = 'rows';
const N = 'none';
const D = 'denied';

// The expected outcome of each operation on tenant A's rows and on tenant B's rows.
// Writes by signed-in users are denied by grants (only SELECT is granted; writes go through the
// engine's functions), reads are filtered by the policies, and anon has no grant at all.
// insert on tenants is an upsert over the target's id (what supabase-js `upsert` sends).
const MATRIX: [Role, Table, Op, onA: Expect, onB: Expect][] = [
  ['anon',          'tenants',        'select', D, D],
  ['anon',          'tenants',        'insert', D, D],
  ['anon',          'tenants',        'update', D, D],
  ['anon',          'tenants',        'delete', D, D],
  ['anon',          'tenant_members', 'select', D, D],
  ['anon',          'tenant_members', 'insert', D, D],
  ['anon',          'tenant_members', 'update', D, D],
  ['anon',          'tenant_members', 'delete', D, D],
  ['anon',          'job_queue',      'select', D, D],
  ['anon',          'job_queue',      'insert', D, D],
  ['anon',          'job_queue',      'update', D, D],
  ['anon',          'job_queue',      'delete', D, D],

  ['member of A',   'tenants',        'select', R, N],
  ['member of A',   'tenants',        'insert', D, D],
  ['member of A',   'tenants',        'update', D, D],
  ['member of A',   'tenants',        'delete', D, D],
  ['member of A',   'tenant_members', 'select', R, N],
  ['member of A',   'tenant_members', 'insert', D, D],
  ['member of A',   'tenant_members', 'update', D, D],
  ['member of A',   'tenant_members', 'delete', D, D],
  ['member of A',   'job_queue',      'select', R, N],
  ['member of A',   'job_queue',      'insert', D, D],
  ['member of A',   'job_queue',      'update', D, D],
  ['member of A',   'job_queue',      'delete', D, D],

  ['admin of A',    'tenants',        'select', R, N],
  ['admin of A',    'tenants',        'insert', D, D],
  ['admin of A',    'tenants',        'update', D, D],
  ['admin of A',    'tenants',        'delete', D, D],
  ['admin of A',    'tenant_members', 'select', R, N],
  ['admin of A',    'tenant_members', 'insert', D, D],
  ['admin of A',    'tenant_members', 'update', D, D],
  ['admin of A',    'tenant_members', 'delete', D, D],
  ['admin of A',    'job_queue',      'select', R, N],
  ['admin of A',    'job_queue',      'insert', D, D],
  ['admin of A',    'job_queue',      'update', D, D],
  ['admin of A',    'job_queue',      'delete', D, D],

  ['member of B',   'tenants',        'select', N, R],
  ['member of B',   'tenants',        'insert', D, D],
  ['member of B',   'tenants',        'update', D, D],
  ['member of B',   'tenants',        'delete', D, D],
  ['member of B',   'tenant_members', 'select', N, R],
  ['member of B',   'tenant_members', 'insert', D, D],
  ['member of B',   'tenant_members', 'update', D, D],
  ['member of B',   'tenant_members', 'delete', D, D],
  ['member of B',   'job_queue',      'select', N, R],
  ['member of B',   'job_queue',      'insert', D, D],
  ['member of B',   'job_queue',      'update', D, D],
  ['member of B',   'job_queue',      'delete', D, D],

  ['no membership', 'tenants',        'select', N, N],
  ['no membership', 'tenants',        'insert', D, D],
  ['no membership', 'tenants',        'update', D, D],
  ['no membership', 'tenants',        'delete', D, D],
  ['no membership', 'tenant_members', 'select', N, N],
  ['no membership', 'tenant_members', 'insert', D, D],
  ['no membership', 'tenant_members', 'update', D, D],
  ['no membership', 'tenant_members', 'delete', D, D],
  ['no membership', 'job_queue',      'select', N, N],
  ['no membership', 'job_queue',      'insert', D, D],
  ['no membership', 'job_queue',      'update', D, D],
  ['no membership', 'job_queue',      'delete', D, D],

  ['super admin',   'tenants',        'select', R, R],
  ['super admin',   'tenants',        'insert', D, D],
  ['super admin',   'tenants',        'update', D, D],
  ['super admin',   'tenants',        'delete', D, D],
  ['super admin',   'tenant_members', 'select', R, R],
  ['super admin',   'tenant_members', 'insert', D, D],
  ['super admin',   'tenant_members', 'update', D, D],
  ['super admin',   'tenant_members', 'delete', D, D],
  ['super admin',   'job_queue',      'select', R, R],
  ['super admin',   'job_queue',      'insert', D, D],
  ['super admin',   'job_queue',      'update', D, D],
  ['super admin',   'job_queue',      'delete', D, D],

  ['service_role',  'tenants',        'select', R, R],
  ['service_role',  'tenants',        'insert', R, R],
  ['service_role',  'tenants',        'update', R, R],
  ['service_role',  'tenants',        'delete', R, R],
  ['service_role',  'tenant_members', 'select', R, R],
  ['service_role',  'tenant_members', 'insert', R, R],
  ['service_role',  'tenant_members', 'update', R, R],
  ['service_role',  'tenant_members', 'delete', R, R],
  ['service_role',  'job_queue',      'select', R, R],
  ['service_role',  'job_queue',      'insert', R, R],
  ['service_role',  'job_queue',      'update', R, R],
  ['service_role',  'job_queue',      'delete', R, R],
];

const CASES = MATRIX.flatMap(([role, table, op, onA, onB]) => [
  { role, table, op, target: 'A' as const, expect: onA },
  { role, table, op, target: 'B' as const, expect: onB },
]);

interface Fixture { tenants: { A: string; B: string }; users: Record<Exclude<Role, 'anon' | 'service_role'>, string> }
const db = useTestDatabase();
let fx: Fixture;
let before: string;

/** Each statement returns the tenant of every row it read or wrote, as `tenant`. */
type Statement = (tx: TransactionSql, tenant: string, f: Fixture) => Promise<{ tenant: string }[]>;
const STATEMENTS: Record<Table, Record<Op, Statement>> = {
  tenants: {
    select: (tx, t) => tx`select id as tenant from public.tenants where id = ${t}`,
    insert: (tx, t) => tx`insert into public.tenants (id, name) values (${t}, 'hijacked')
                          on conflict (id) do update set name = excluded.name returning id as tenant`,
    update: (tx, t) => tx`update public.tenants set name = 'renamed' where id = ${t} returning id as tenant`,
    delete: (tx, t) => tx`delete from public.tenants where id = ${t} returning id as tenant`,
  },
  tenant_members: {
    select: (tx, t) => tx`select tenant_id as tenant from public.tenant_members where tenant_id = ${t}`,
    // Adding the user without membership as an admin: the self-promotion a user would try.
    insert: (tx, t, f) => tx`insert into public.tenant_members (tenant_id, user_id, role)
                             values (${t}, ${f.users['no membership']}, 'admin') returning tenant_id as tenant`,
    update: (tx, t) => tx`update public.tenant_members set role = 'admin' where tenant_id = ${t} returning tenant_id as tenant`,
    delete: (tx, t) => tx`delete from public.tenant_members where tenant_id = ${t} returning tenant_id as tenant`,
  },
  job_queue: {
    select: (tx, t) => tx`select tenant_id as tenant from public.job_queue where tenant_id = ${t}`,
    insert: (tx, t) => tx`insert into public.job_queue (tenant_id, type) values (${t}, 'forged.job') returning tenant_id as tenant`,
    update: (tx, t) => tx`update public.job_queue set priority = 100 where tenant_id = ${t} returning tenant_id as tenant`,
    delete: (tx, t) => tx`delete from public.job_queue where tenant_id = ${t} returning tenant_id as tenant`,
  },
};

/** Runs fn as the role would reach PostgREST, in a transaction that is always rolled back. */
function runAs<T>(role: Role, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  if (role === 'anon') return asRole(db.sql, 'anon', { role: 'anon' }, fn, { rollback: true });
  if (role === 'service_role') return asRole(db.sql, 'service_role', { role: 'service_role' }, fn, { rollback: true });
  return asRole(db.sql, 'authenticated', userClaims(fx.users[role]), fn, { rollback: true });
}

/** A fingerprint of every row of the three tables, to prove the matrix changed nothing. */
async function fingerprint(): Promise<string> {
  const [r] = await db.sql`
    select md5(coalesce((select string_agg(t::text, '|' order by t.id) from public.tenants t), '')
            || coalesce((select string_agg(m::text, '|' order by m.tenant_id, m.user_id) from public.tenant_members m), '')
            || coalesce((select string_agg(j::text, '|' order by j.id) from public.job_queue j), '')) as h`;
  return r.h as string;
}

beforeAll(async () => {
  const [A, B] = [await makeTenant(db.sql, { name: 'A' }), await makeTenant(db.sql, { name: 'B' })];
  const users = {
    'member of A': await makeUser(db.sql), 'admin of A': await makeUser(db.sql), 'member of B': await makeUser(db.sql),
    'no membership': await makeUser(db.sql), 'super admin': await makeUser(db.sql),
  };
  await addMember(db.sql, A, users['member of A'], 'member');
  await addMember(db.sql, A, users['admin of A'], 'admin');
  await addMember(db.sql, B, users['member of B'], 'member');
  await makeSuperAdmin(db.sql, users['super admin']);
  await enqueueMany(db.sql, A, 2);
  await enqueueMany(db.sql, B, 2);
  fx = { tenants: { A, B }, users };
  before = await fingerprint();
});

test.each(CASES)('$role: $op on $table, rows of tenant $target -> $expect', async ({ role, table, op, target, expect: want }) => {
  const tenant = fx.tenants[target];
  const run = runAs(role, (tx) => STATEMENTS[table][op](tx, tenant, fx));
  if (want === 'denied') {
    expect(await sqlState(run)).toBe('42501');
    return;
  }
  const rows = await run;
  if (want === 'none') {
    expect(rows).toEqual([]);
  } else {
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.tenant === tenant)).toBe(true);
  }
});

test('the matrix left every table as it was', async () => {
  expect(await fingerprint()).toBe(before);
});
