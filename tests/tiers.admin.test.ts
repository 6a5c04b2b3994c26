/**
 * Quota tiers (issue 12) as data, and who may change them: the service role and super admins only.
 * Members read the tiers and their own effective limits (my_limits), never change them; a member's
 * override is private. Calls run as PostgREST runs them.
 */
import { beforeAll, expect, test } from 'vitest';
import { addMember, asService, asUser, makeTenant, makeUser, makeWorld, sqlState, useTestDatabase } from './helpers/db.ts';

const db = useTestDatabase();
let w: { tenant: string; member: string; admin: string; other: string; superAdmin: string };
let otherTenant: string;

beforeAll(async () => {
  w = await makeWorld(db.sql, { member: 'member', admin: 'admin', other: 'none', superAdmin: 'super_admin' });
  otherTenant = await makeTenant(db.sql);
  await addMember(db.sql, otherTenant, w.other);
});

const myLimits = (user: string, tenant = w.tenant) =>
  asUser(db.sql, user, async (tx) => (await tx`select public.my_limits(${tenant}::uuid) as l`)[0].l);
const tenantTier = async (tenant = w.tenant) => (await db.sql`select tier from public.tenants where id = ${tenant}`)[0].tier;
const memberTier = async (user: string) =>
  (await db.sql`select tier from supaqueue.member_tiers where tenant_id = ${w.tenant} and user_id = ${user}`)[0]?.tier ?? null;

test('the seeded tiers: free allows one active job per user, pro ten, enterprise has no limit', async () => {
  const rows = await db.sql`select name, max_active_jobs_per_user from public.quota_tiers where name in ('free', 'pro', 'enterprise') order by name`;
  expect(rows).toEqual([
    { name: 'enterprise', max_active_jobs_per_user: null },
    { name: 'free', max_active_jobs_per_user: 1 },
    { name: 'pro', max_active_jobs_per_user: 10 },
  ]);
});

test('a new tenant has no tier, so its users have no per-user limit (nothing changes without an operator)', async () => {
  const [t] = await asService(db.sql, (tx) => tx`select id, tier from public.create_tenant('fresh')`);
  expect(t.tier).toBeNull();
  expect(await myLimits(w.member)).toMatchObject({ tier: null, tier_source: null, max_active_jobs_per_user: null });
});

test('members read the tiers', async () => {
  const rows = await asUser(db.sql, w.member, (tx) => tx`select name from public.quota_tiers where name = 'free'`);
  expect(rows).toEqual([{ name: 'free' }]);
});

test('the attack: a member cannot raise their own tier (QJ010, nothing stored)', async () => {
  expect(await sqlState(asUser(db.sql, w.member, (tx) => tx`select public.set_member_tier(${w.tenant}::uuid, ${w.member}::uuid, 'enterprise')`))).toBe('QJ010');
  expect(await memberTier(w.member)).toBeNull();
});

test('the attack: a tenant admin cannot change the tenant\'s tier (QJ010)', async () => {
  expect(await sqlState(asUser(db.sql, w.admin, (tx) => tx`select tier from public.set_tenant_tier(${w.tenant}::uuid, 'enterprise')`))).toBe('QJ010');
  expect(await tenantTier()).toBeNull();
});

test('the attack: a member cannot raise a tier\'s limit (QJ010)', async () => {
  expect(await sqlState(asUser(db.sql, w.member, (tx) => tx`select name from public.set_quota_tier('free', ${tx.json({ max_active_jobs_per_user: 1000 })})`))).toBe('QJ010');
  expect((await db.sql`select max_active_jobs_per_user from public.quota_tiers where name = 'free'`)[0].max_active_jobs_per_user).toBe(1);
});

test('the attack: a member cannot write the tiers table directly (42501)', async () => {
  expect(await sqlState(asUser(db.sql, w.member, (tx) => tx`update public.quota_tiers set max_active_jobs_per_user = null`))).toBe('42501');
});

test('the attack: a member cannot read or write the private overrides and counters (42501)', async () => {
  expect(await sqlState(asUser(db.sql, w.member, (tx) => tx`insert into supaqueue.member_tiers (tenant_id, user_id, tier) values (${w.tenant}, ${w.member}, 'enterprise')`))).toBe('42501');
  expect(await sqlState(asUser(db.sql, w.member, (tx) => tx`select active from supaqueue.user_active_jobs`))).toBe('42501');
});

test('another tenant\'s user changing this tenant\'s tier gets TENANT_NOT_FOUND (QJ002)', async () => {
  expect(await sqlState(asUser(db.sql, w.other, (tx) => tx`select tier from public.set_tenant_tier(${w.tenant}::uuid, 'free')`))).toBe('QJ002');
});

test('a super admin puts a tenant on a tier; its members see it at once', async () => {
  await asUser(db.sql, w.superAdmin, (tx) => tx`select tier from public.set_tenant_tier(${w.tenant}::uuid, 'free')`);
  expect(await myLimits(w.member)).toMatchObject({ tier: 'free', tier_source: 'tenant', max_active_jobs_per_user: 1, active_jobs: 0 });
  await asService(db.sql, (tx) => tx`select tier from public.set_tenant_tier(${w.tenant}::uuid, null)`);
});

test('a member override wins over the tenant\'s tier, for that member only', async () => {
  await asService(db.sql, (tx) => tx`select tier from public.set_tenant_tier(${w.tenant}::uuid, 'free')`);
  const answer = await asService(db.sql, async (tx) => (await tx`select public.set_member_tier(${w.tenant}::uuid, ${w.member}::uuid, 'pro') as l`)[0].l);
  expect(answer).toMatchObject({ user_id: w.member, tier: 'pro', tier_source: 'member', max_active_jobs_per_user: 10 });
  expect(await myLimits(w.member)).toMatchObject({ tier: 'pro', tier_source: 'member' });
  expect(await myLimits(w.admin)).toMatchObject({ tier: 'free', tier_source: 'tenant' });
  await asService(db.sql, (tx) => tx`select public.set_member_tier(${w.tenant}::uuid, ${w.member}::uuid, null)`);
  expect(await myLimits(w.member)).toMatchObject({ tier: 'free', tier_source: 'tenant' });
  await asService(db.sql, (tx) => tx`select tier from public.set_tenant_tier(${w.tenant}::uuid, null)`);
});

test('removing a member removes their override', async () => {
  const user = await makeUser(db.sql);
  await addMember(db.sql, w.tenant, user);
  await asService(db.sql, (tx) => tx`select public.set_member_tier(${w.tenant}::uuid, ${user}::uuid, 'enterprise')`);
  await asService(db.sql, (tx) => tx`select public.remove_tenant_member(${w.tenant}::uuid, ${user}::uuid)`);
  expect(await memberTier(user)).toBeNull();
});

test('an override for a user who is not a member is INVALID_ARGUMENT (QJ001)', async () => {
  expect(await sqlState(asService(db.sql, (tx) => tx`select public.set_member_tier(${w.tenant}::uuid, ${w.other}::uuid, 'pro')`))).toBe('QJ001');
});

test('an unknown tier is INVALID_ARGUMENT (QJ001)', async () => {
  expect(await sqlState(asService(db.sql, (tx) => tx`select tier from public.set_tenant_tier(${w.tenant}::uuid, 'platinum')`))).toBe('QJ001');
});

test('the service role creates a tier and changes one limit, keeping the others', async () => {
  await asService(db.sql, (tx) => tx`select name from public.set_quota_tier('team', ${tx.json({ max_active_jobs_per_user: 3, max_attempts: 5 })})`);
  const [t] = await asService(db.sql, (tx) => tx`select max_active_jobs_per_user, max_attempts from public.set_quota_tier('team', ${tx.json({ max_active_jobs_per_user: 4 })})`);
  expect(t).toEqual({ max_active_jobs_per_user: 4, max_attempts: 5 });
});

test.each([
  ['an unknown field', { max_jobs: 1 }],
  ['a zero limit', { max_active_jobs_per_user: 0 }],
  ['max_attempts above the engine\'s limit', { max_attempts: 1001 }],
  ['a non-number', { max_payload_bytes: 'big' }],
])('set_quota_tier refuses %s (QJ001)', async (_what, limits) => {
  expect(await sqlState(asService(db.sql, (tx) => tx`select name from public.set_quota_tier('odd', ${tx.json(limits)})`))).toBe('QJ001');
});

test('a tier name outside the format is INVALID_ARGUMENT (QJ001)', async () => {
  expect(await sqlState(asService(db.sql, (tx) => tx`select name from public.set_quota_tier('Free Tier', '{}'::jsonb)`))).toBe('QJ001');
});

test('my_limits of a tenant the user does not belong to is TENANT_NOT_FOUND (QJ002)', async () => {
  expect(await sqlState(myLimits(w.other))).toBe('QJ002');
});

test('my_limits needs a signed-in user (QJ008 for the service role)', async () => {
  expect(await sqlState(asService(db.sql, (tx) => tx`select public.my_limits(${w.tenant}::uuid)`))).toBe('QJ008');
});
