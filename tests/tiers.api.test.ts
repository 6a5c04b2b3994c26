/**
 * Issue 12 through the real jobs function and supabase-js: the customers' own check (free tier: 201,
 * 429 CONCURRENT_JOB_LIMIT, 429), GET /jobs/limits, "my jobs", DELETE /jobs/:id as cancel, the job shape
 * (worker_id, started/completed timestamps, submitted_by) and the position of a waiting job.
 */
import type { SupabaseClient } from '@supabase/supabase-js';
import { beforeAll, expect, test } from 'vitest';
import { userToken } from '../scripts/lib/keys.ts';
import { enqueueJob, getLimits, listJobs } from '../client/index.ts';
import { client, enqueue, invoke, settleJob, uniqueType, useApi } from './helpers/api.ts';
import { addMember, asService, makeTenant, makeUser, useTestDatabase } from './helpers/db.ts';

const db = useTestDatabase();
const api = useApi(db);

/** A member of a fresh tenant on `tier`, signed in through supabase-js. */
async function member(tier: string | null): Promise<{ sb: SupabaseClient; id: string; tenant: string }> {
  const tenant = await makeTenant(db.sql);
  if (tier) await asService(db.sql, (tx) => tx`select tier from public.set_tenant_tier(${tenant}::uuid, ${tier})`);
  const id = await makeUser(db.sql);
  await addMember(db.sql, tenant, id);
  return { sb: client(api, await userToken(id)), id, tenant };
}

let free: Awaited<ReturnType<typeof member>>;
beforeAll(async () => { free = await member('free'); });

test('the customers\' check: on the free tier, three POST /jobs in a row answer 201, 429, 429', async () => {
  const post = () => invoke(free.sb, 'jobs', { method: 'POST', body: { type: 'report.generate', payload: { month: '2026-10' } } });
  const statuses = [];
  const codes = [];
  for (let i = 0; i < 3; i++) {
    const r = await post();
    statuses.push(r.status);
    codes.push(r.body.error?.code ?? null);
  }
  expect(statuses).toEqual([201, 429, 429]);
  expect(codes).toEqual([null, 'CONCURRENT_JOB_LIMIT', 'CONCURRENT_JOB_LIMIT']);
});

test('CONCURRENT_JOB_LIMIT carries Retry-After and the limit and current count', async () => {
  const r = await invoke(free.sb, 'jobs', { method: 'POST', body: { type: uniqueType() } });
  expect(r.status).toBe(429);
  expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(r.body.error).toMatchObject({ code: 'CONCURRENT_JOB_LIMIT', details: { limit: 1, active: 1, tier: 'free' } });
});

test('the client helper reports the code, Retry-After and details', async () => {
  const { error } = await enqueueJob(free.sb, { type: uniqueType() });
  expect(error).toMatchObject({ code: 'CONCURRENT_JOB_LIMIT', status: 429, details: { limit: 1, active: 1 } });
  expect(error?.retryAfterSeconds).toBeGreaterThan(0);
});

test('GET /jobs/limits: the caller\'s tier, limits and active jobs', async () => {
  const { data, error } = await getLimits(free.sb);
  expect(error).toBeNull();
  expect(data).toMatchObject({ tenant_id: free.tenant, user_id: free.id, tier: 'free', tier_source: 'tenant', max_active_jobs_per_user: 1, active_jobs: 1 });
});

test('GET /jobs/limits of a tenant the caller does not belong to: 404 TENANT_NOT_FOUND', async () => {
  const r = await invoke(free.sb, `jobs/limits?tenant_id=${await makeTenant(db.sql)}`, { method: 'GET' });
  expect(r.status).toBe(404);
  expect(r.body.error.code).toBe('TENANT_NOT_FOUND');
});

test('GET /jobs?mine=true lists only the caller\'s own jobs', async () => {
  const me = await member(null);
  const peerId = await makeUser(db.sql);
  await addMember(db.sql, me.tenant, peerId);
  const peer = client(api, await userToken(peerId));
  const mine = await enqueue(me.sb);
  await enqueue(peer);
  const { data } = await listJobs(me.sb, { mine: true });
  expect(data!.map((j) => j.id)).toEqual([mine.id]);
  const all = await listJobs(me.sb, {});
  expect(all.data).toHaveLength(2);
});

test('DELETE /jobs/:id cancels, exactly like POST /jobs/:id/cancel', async () => {
  const me = await member(null);
  const job = await enqueue(me.sb);
  const r = await invoke(me.sb, `jobs/${job.id}`, { method: 'DELETE' });
  expect(r.status).toBe(200);
  expect(r.body.data).toMatchObject({ id: job.id, status: 'cancelled' });
});

test('DELETE of a finished job: 409 INVALID_STATE, as the cancel route answers', async () => {
  const me = await member(null);
  const job = await enqueue(me.sb);
  await invoke(me.sb, `jobs/${job.id}`, { method: 'DELETE' });
  const viaDelete = await invoke(me.sb, `jobs/${job.id}`, { method: 'DELETE' });
  const viaPost = await invoke(me.sb, `jobs/${job.id}/cancel`, { method: 'POST' });
  expect([viaDelete.status, viaDelete.body.error.code]).toEqual([409, 'INVALID_STATE']);
  expect([viaPost.status, viaPost.body.error.code]).toEqual([409, 'INVALID_STATE']);
});

test('the job shape has worker_id, started_at, completed_at and submitted_by', async () => {
  const me = await member(null);
  const job = await enqueue(me.sb);
  expect(job).toMatchObject({ worker_id: null, started_at: null, completed_at: null, submitted_by: me.id });
  await settleJob(db, job.id, { result: { ok: true } });
  const r = await invoke(me.sb, `jobs/${job.id}`, { method: 'GET' });
  expect(r.body.data).toMatchObject({ status: 'completed', worker_id: 'api-test-worker', submitted_by: me.id });
  expect(typeof r.body.data.started_at).toBe('string');
  expect(typeof r.body.data.completed_at).toBe('string');
});

test('the enqueue answer and GET /jobs/:id carry a waiting job\'s position; a finished job\'s is null', async () => {
  const me = await member(null);
  const type = uniqueType();
  const job = await enqueue(me.sb, { type });
  expect(job.position).toMatchObject({ state: 'ready', capped: false });
  expect(Number.isInteger(job.position.ahead)).toBe(true);
  await settleJob(db, job.id, { result: null });
  const r = await invoke(me.sb, `jobs/${job.id}`, { method: 'GET' });
  expect(r.body.data.position).toBeNull();
});

test('a delayed job\'s position is its due time', async () => {
  const me = await member(null);
  const job = await enqueue(me.sb, { delay_ms: 60_000 });
  expect(job.position).toMatchObject({ state: 'delayed' });
  expect(new Date(job.position.due_at).getTime()).toBeGreaterThan(Date.now() + 50_000);
});
