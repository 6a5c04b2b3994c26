/**
 * supaqueue/server and quota tiers (issue 12): a backend puts tenants and members on tiers, and its
 * enqueues on behalf of a user (submitted_by) count against that user's limit, with the same code and
 * details as the HTTP API.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createQueue, SupaqueueError, type Queue } from '../server/index.ts';
import { addMember, createTestDatabase, makeTenant, makeUser, type TestDatabase } from './helpers/db.ts';

let db: TestDatabase;
let queue: Queue;

beforeAll(async () => {
  db = await createTestDatabase();
  queue = createQueue({ connection: db.url });
});
afterAll(async () => {
  await queue?.end();
  await db?.drop();
});

async function freeMember(): Promise<{ tenant: string; user: string }> {
  const tenant = await makeTenant(db.sql);
  const user = await makeUser(db.sql);
  await addMember(db.sql, tenant, user);
  await queue.setTenantTier(tenant, 'free');
  return { tenant, user };
}

test('an enqueue on behalf of a user records them as the submitter', async () => {
  const { tenant, user } = await freeMember();
  const { id } = await queue.enqueue({ tenant_id: tenant, type: 'srv.behalf', submitted_by: user });
  expect((await queue.getJob(id))?.submitted_by).toBe(user);
});

test('enqueues on behalf of a user at their limit: CONCURRENT_JOB_LIMIT with the limit and count', async () => {
  const { tenant, user } = await freeMember();
  await queue.enqueue({ tenant_id: tenant, type: 'srv.behalf', submitted_by: user });
  const err = await queue.enqueue({ tenant_id: tenant, type: 'srv.behalf', submitted_by: user }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SupaqueueError);
  expect(err).toMatchObject({ code: 'CONCURRENT_JOB_LIMIT', status: 429, details: { limit: 1, active: 1, adding: 1, tier: 'free' } });
});

test('setMemberTier lifts one member\'s limit and answers their limits', async () => {
  const { tenant, user } = await freeMember();
  const limits = await queue.setMemberTier(tenant, user, 'enterprise');
  expect(limits).toMatchObject({ tier: 'enterprise', tier_source: 'member', max_active_jobs_per_user: null });
  await queue.enqueueMany([1, 2].map(() => ({ tenant_id: tenant, type: 'srv.many', submitted_by: user })));
});

test('setQuotaTier creates a tier a tenant can then be put on', async () => {
  const tier = await queue.setQuotaTier('srv-team', { max_active_jobs_per_user: 2, description: 'two at a time' });
  expect(tier).toMatchObject({ name: 'srv-team', max_active_jobs_per_user: 2, description: 'two at a time' });
  const tenant = await makeTenant(db.sql);
  expect((await queue.setTenantTier(tenant, 'srv-team')).tier).toBe('srv-team');
});
