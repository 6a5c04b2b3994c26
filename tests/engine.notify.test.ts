/**
 * The wake-up hint: NOTIFY on channel supaqueue_jobs, one per enqueue statement that made ready work.
 * Notifications arrive in commit order, so each test ends with a marker enqueue and counts everything
 * received up to and including the marker's notification: no fixed sleeps.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import { asRole, asService, createTestDatabase, makeTenant, type TestDatabase } from './helpers/db.ts';
import { waitFor } from './engine.helpers.ts';

let db: TestDatabase;
let listener: postgres.Sql;
let tenant: string;
let received = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  tenant = await makeTenant(db.sql);
  // A separate session, as a worker's LISTEN connection is.
  listener = postgres(db.url, { max: 1, onnotice: () => {} });
  await listener.listen('supaqueue_jobs', () => { received++; });
});
afterAll(async () => {
  await listener.end({ timeout: 5 });
  await db.drop();
});
beforeEach(() => { received = 0; });

const jobs = (n: number, spec: object = {}) => Array.from({ length: n }, (_, i) => ({ tenant_id: tenant, type: 'notify.job', payload: { i }, ...spec }));
const enqueue = (list: object[]) => asService(db.sql, (tx) => tx`select * from public.enqueue_jobs(${tx.json(list as never)})`);

/** Enqueues one ready job in its own transaction and waits for its notification; returns the total received. */
async function countThroughMarker(expectedBeforeMarker: number): Promise<number> {
  await enqueue(jobs(1));
  await waitFor(async () => received >= expectedBeforeMarker + 1, { timeoutMs: 20_000, intervalMs: 20 });
  return received;
}

test('a bulk enqueue of 1,000 jobs sends one notification, not 1,000', async () => {
  await enqueue(jobs(1000));
  expect(await countThroughMarker(1)).toBe(2);
});

test('each committed enqueue statement sends its own notification', async () => {
  await enqueue(jobs(3));
  await enqueue(jobs(3));
  await enqueue(jobs(3));
  expect(await countThroughMarker(3)).toBe(4);
});

test('an enqueue of only delayed jobs sends none (nothing is ready to claim)', async () => {
  await enqueue(jobs(50, { delay_ms: 3_600_000 }));
  expect(await countThroughMarker(0)).toBe(1);
});

test('an enqueue that rolls back sends none', async () => {
  await asRole(db.sql, 'service_role', { role: 'service_role' }, (tx) => tx`select * from public.enqueue_jobs(${tx.json(jobs(10) as never)})`, { rollback: true });
  expect(await countThroughMarker(0)).toBe(1);
});
