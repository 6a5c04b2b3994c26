/**
 * Access comes only from rows in tenant_members and supaqueue.super_admins, read at request time:
 * claims a user can forge or that go stale (user_metadata, app_metadata, a role claim that disagrees
 * with the database role, a tenant id) grant nothing, and a revoked membership stops at once.
 */
import type { TransactionSql } from 'postgres';
import { beforeAll, expect, test } from 'vitest';
import {
  addMember, asRole, type Claims, enqueueMany, makeTenant, makeUser, sqlState, userClaims, useTestDatabase,
} from './helpers/db.ts';

const db = useTestDatabase();
let tenantA: string;
let jobA: string;

beforeAll(async () => {
  tenantA = await makeTenant(db.sql, { name: 'A' });
  [jobA] = await enqueueMany(db.sql, tenantA, 1);
  // A real member, so that "sees nothing" below is not just an empty tenant.
  await addMember(db.sql, tenantA, await makeUser(db.sql), 'admin');
});


/** Everything a caller with these claims can see or do to tenant A, each in a rolled-back request. */
async function probeTenantA(claims: Claims) {
  const as = <T>(fn: (tx: TransactionSql) => Promise<T>) => asRole(db.sql, 'authenticated', claims, fn, { rollback: true });
  const visible = await as(async (tx) => {
    const [t] = await tx`select count(*)::int as n from public.tenants where id = ${tenantA}`;
    const [m] = await tx`select count(*)::int as n from public.tenant_members where tenant_id = ${tenantA}`;
    const [j] = await tx`select count(*)::int as n from public.job_queue where tenant_id = ${tenantA}`;
    return { tenants: t.n as number, members: m.n as number, jobs: j.n as number };
  });
  return {
    ...visible,
    enqueue: await sqlState(as((tx) => tx`select * from public.enqueue_job(${tenantA}, 'probe.job')`)),
    cancel: await sqlState(as((tx) => tx`select * from public.cancel_job(${jobA})`)),
    retry: await sqlState(as((tx) => tx`select * from public.retry_job(${jobA}, 1)`)),
    update: await sqlState(as((tx) => tx`update public.job_queue set priority = 100 where tenant_id = ${tenantA}`)),
    claim: await sqlState(as((tx) => tx`select * from public.claim_jobs('forged-worker')`)),
  };
}

const NO_ACCESS = { tenants: 0, members: 0, jobs: 0, enqueue: 'QJ002', cancel: 'QJ003', retry: 'QJ003', update: '42501', claim: '42501' };

async function jobFingerprint(): Promise<string> {
  const [r] = await db.sql`select md5(j::text) as h from public.job_queue j where j.id = ${jobA}`;
  return r.h as string;
}

/** Without a subject there is no user at all: the user-facing functions answer "sign in" (QJ008). */
const NO_USER = { ...NO_ACCESS, enqueue: 'QJ008', cancel: 'QJ008', retry: 'QJ008' };

const FORGED: { name: string; claims: (userId: string) => Claims; want?: typeof NO_ACCESS;
  userMetadata?: Claims; appMetadata?: Claims; authSuperAdmin?: boolean }[] = [
  {
    name: 'user_metadata claiming super admin, tenant A and admin (also in auth.users, with is_super_admin)',
    claims: (u) => userClaims(u, { user_metadata: { role: 'super_admin', tenant_id: tenantA, is_admin: true } }),
    userMetadata: { role: 'super_admin', is_admin: true },
    authSuperAdmin: true,
  },
  {
    name: 'app_metadata claiming tenant A and service_role (also in auth.users)',
    claims: (u) => userClaims(u, { app_metadata: { provider: 'email', providers: ['email'], tenant_id: tenantA, role: 'service_role' } }),
    appMetadata: { role: 'service_role' },
  },
  {
    name: 'a role claim of service_role while the database role is authenticated',
    claims: (u) => userClaims(u, { role: 'service_role' }),
  },
  {
    name: 'a role claim of service_role with no subject, database role authenticated',
    claims: () => ({ role: 'service_role' }),
    want: NO_USER,
  },
  {
    name: 'a tenant_id claim (top level and app_metadata) for a user who is not a member',
    claims: (u) => userClaims(u, { tenant_id: tenantA, app_metadata: { provider: 'email', providers: ['email'], tenant_id: tenantA } }),
  },
];

test.each(FORGED)('forged: $name -> no access to tenant A', async ({ claims, want, userMetadata, appMetadata, authSuperAdmin }) => {
  const user = await makeUser(db.sql, { userMetadata: { ...userMetadata, tenant_id: tenantA }, appMetadata: { ...appMetadata, tenant_id: tenantA } });
  if (authSuperAdmin) await db.sql`update auth.users set is_super_admin = true where id = ${user}`;
  const before = await jobFingerprint();
  expect(await probeTenantA(claims(user))).toEqual(want ?? NO_ACCESS);
  expect(await jobFingerprint()).toBe(before);
});

test('an anonymous sign-in user (is_anonymous, authenticated role, no membership) sees and changes nothing', async () => {
  const user = await makeUser(db.sql, { appMetadata: { provider: 'anonymous', providers: ['anonymous'] } });
  await db.sql`update auth.users set is_anonymous = true, email = null where id = ${user}`;
  const claims = userClaims(user, { is_anonymous: true, email: '', app_metadata: { provider: 'anonymous', providers: ['anonymous'] } });
  expect(await probeTenantA(claims)).toEqual(NO_ACCESS);
});

test('the member who is probed has access before revocation (the probe can tell access from none)', async () => {
  const member = await makeUser(db.sql);
  await addMember(db.sql, tenantA, member);
  const seen = await probeTenantA(userClaims(member));
  expect({ tenants: seen.tenants, jobs: seen.jobs, enqueue: seen.enqueue, cancel: seen.cancel })
    .toEqual({ tenants: 1, jobs: 1, enqueue: undefined, cancel: undefined });
});

test('revoking a membership takes effect at the next request, with the same (still valid) token', async () => {
  const member = await makeUser(db.sql);
  await addMember(db.sql, tenantA, member);
  const token = userClaims(member);
  const [seen] = await asRole(db.sql, 'authenticated', token, (tx) => tx`select count(*)::int as n from public.job_queue`);
  expect(seen.n).toBe(1);

  await db.sql`delete from public.tenant_members where tenant_id = ${tenantA} and user_id = ${member}`;

  expect(await probeTenantA(token)).toEqual(NO_ACCESS);
});
