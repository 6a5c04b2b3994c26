/**
 * Per-user rate limiting of the `jobs` function at 60 requests per minute, counted in Postgres so all
 * instances share one budget. This file has its own function server and database, so no other test
 * is throttled.
 */
import type { SupabaseClient } from '@supabase/supabase-js';
import { beforeAll, expect, test } from 'vitest';
import { userToken } from '../scripts/lib/keys.ts';
import { client, invoke, jobsSnapshot, useApi } from './helpers/api.ts';
import { addMember, makeTenant, makeUser, useTestDatabase } from './helpers/db.ts';

const LIMIT = 60;

const db = useTestDatabase();
const api = useApi(db, { SUPAQUEUE_RATE_LIMIT_PER_MINUTE: String(LIMIT) });
let first: SupabaseClient;
let second: SupabaseClient;
// The 61st answer of the first user (taken once: the budget is spent only once per minute).
let overLimit: Awaited<ReturnType<typeof invoke>>;
let statusesWithinLimit: number[];

beforeAll(async () => {
  const tenant = await makeTenant(db.sql);
  const [u1, u2] = [await makeUser(db.sql), await makeUser(db.sql)];
  await addMember(db.sql, tenant, u1);
  await addMember(db.sql, tenant, u2);
  first = client(api, await userToken(u1));
  second = client(api, await userToken(u2));
  statusesWithinLimit = [];
  for (let i = 0; i < LIMIT; i++) statusesWithinLimit.push((await invoke(first, 'jobs?limit=1', { method: 'GET' })).status);
  overLimit = await invoke(first, 'jobs?limit=1', { method: 'GET' });
});
test('the first 60 requests of a minute are served', () => {
  expect(statusesWithinLimit).toEqual(Array(LIMIT).fill(200));
});

test('the 61st gets 429 RATE_LIMITED', () => {
  expect(overLimit.status).toBe(429);
  expect(overLimit.body.error.code).toBe('RATE_LIMITED');
});

test('the 429 says when to come back: Retry-After within the minute', () => {
  const seconds = Number(overLimit.headers.get('retry-after'));
  expect(seconds).toBeGreaterThanOrEqual(1);
  expect(seconds).toBeLessThanOrEqual(60);
});

test('a throttled enqueue does nothing', async () => {
  const before = await jobsSnapshot(db);
  const r = await invoke(first, 'jobs', { method: 'POST', body: { type: 'a.b' } });
  expect(r.status).toBe(429);
  expect(await jobsSnapshot(db)).toBe(before);
});

test('another user has a budget of their own', async () => {
  const r = await invoke(second, 'jobs?limit=1', { method: 'GET' });
  expect(r.status).toBe(200);
});

test('the counters live in the private schema, out of reach of API roles', async () => {
  const [row] = await db.sql`select has_function_privilege('authenticated', 'supaqueue.rate_limit_hit(text, integer, integer)', 'execute') as auth_exec,
                                    has_function_privilege('anon', 'supaqueue.rate_limit_hit(text, integer, integer)', 'execute') as anon_exec,
                                    has_table_privilege('authenticated', 'supaqueue.rate_limits', 'select') as auth_read`;
  expect(row).toEqual({ auth_exec: false, anon_exec: false, auth_read: false });
});
