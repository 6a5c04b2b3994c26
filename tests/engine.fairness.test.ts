/** Fair queueing across tenants: one tenant's deep backlog does not starve the others. */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestDatabase, enqueueMany, makeTenant, type TestDatabase } from './helpers/db.ts';
import { clearPendingJobs, claim, complete } from './engine.helpers.ts';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db.drop(); });

const BIG = 10_000;
const SMALL_TENANTS = 9;
const SMALL = 100;
const TOTAL = BIG + SMALL_TENANTS * SMALL; // 10,900
const FIRST_TEN_PERCENT = TOTAL / 10; // 1,090 claims

test(`all ${SMALL_TENANTS * SMALL} small-tenant jobs are among the first ${FIRST_TEN_PERCENT} claims (10% of ${TOTAL}) after one tenant enqueued ${BIG}`, async () => {
  const big = await makeTenant(db.sql, { name: 'big' });
  await enqueueMany(db.sql, big, BIG);
  const small = new Set<string>();
  for (let i = 0; i < SMALL_TENANTS; i++) {
    for (const id of await enqueueMany(db.sql, await makeTenant(db.sql), SMALL)) small.add(id);
  }

  const order: string[] = [];
  while (order.length < FIRST_TEN_PERCENT) {
    const jobs = await claim(db.sql, 'fair-worker', Math.min(10, FIRST_TEN_PERCENT - order.length));
    expect(jobs.length).toBeGreaterThan(0);
    order.push(...jobs.map((j) => j.id));
    await complete(db.sql, jobs);
  }
  const smallClaimed = order.filter((id) => small.has(id)).length;
  expect(smallClaimed).toBe(SMALL_TENANTS * SMALL);
  // Round-robin: in each round every tenant with work gets one job, so the small tenants' 100 rounds
  // end after 100 × 10 = 1,000 claims.
  const lastSmall = Math.max(...order.map((id, i) => (small.has(id) ? i + 1 : 0)));
  expect(lastSmall).toBeLessThanOrEqual(1000);
}, 90_000);

test('a tenant that enqueues after others have drained part of their backlog joins the front of the line', async () => {
  // Start from an empty ready line (the test above leaves the big tenant's backlog behind).
  await clearPendingJobs(db.sql);
  const a = await makeTenant(db.sql);
  const b = await makeTenant(db.sql);
  await enqueueMany(db.sql, a, 50);
  // a's first 20 jobs run before b exists; b must not be queued behind a's remaining 30.
  for (let i = 0; i < 2; i++) await complete(db.sql, await claim(db.sql, 'w', 10));
  const bIds = new Set(await enqueueMany(db.sql, b, 5));
  const next = await claim(db.sql, 'w', 10);
  expect(next.filter((j) => bIds.has(j.id))).toHaveLength(5);
});
