/**
 * The typed frontend helpers (client/index.ts) over supabase-js, against the real function: a round
 * trip enqueue -> getJob -> cancel -> retry, waiting for a job a worker completes, and error codes.
 */
import type { SupabaseClient } from '@supabase/supabase-js';
import { randomUUID } from 'node:crypto';
import { beforeAll, expect, test } from 'vitest';
import { cancelJob, enqueueJob, getJob, listJobs, retryJob, waitForJob } from '../client/index.ts';
import { userToken } from '../scripts/lib/keys.ts';
import { client, settleJob, useApi } from './helpers/api.ts';
import { addMember, makeTenant, makeUser, useTestDatabase } from './helpers/db.ts';

const db = useTestDatabase();
const api = useApi(db);
let supabase: SupabaseClient;

beforeAll(async () => {
  const tenant = await makeTenant(db.sql);
  const user = await makeUser(db.sql);
  await addMember(db.sql, tenant, user);
  supabase = client(api, await userToken(user));
});
const uniqueType = () => `client.${randomUUID().slice(0, 8)}`;

test('round trip: enqueue -> getJob -> cancelJob -> retryJob', async () => {
  const enqueued = await enqueueJob(supabase, { type: uniqueType(), payload: { to: 'x@example.test' } }, { traceId: 'client-trip' });
  expect(enqueued.error).toBeNull();
  expect(enqueued.created).toBe(true);
  const id = enqueued.data!.id;

  const fetched = await getJob(supabase, id);
  expect(fetched.data).toMatchObject({ id, status: 'pending', trace_id: 'client-trip' });

  const cancelled = await cancelJob(supabase, id);
  expect(cancelled.data?.status).toBe('cancelled');

  const retried = await retryJob(supabase, id);
  expect(retried.data?.status).toBe('pending');
});

test('enqueueJob with a repeated idempotency key returns the same job with created false', async () => {
  const input = { type: uniqueType(), idempotency_key: randomUUID() };
  const a = await enqueueJob(supabase, input);
  const b = await enqueueJob(supabase, input);
  expect(b.created).toBe(false);
  expect(b.data?.id).toBe(a.data?.id);
});

test('waitForJob resolves with the job once a worker completes it', async () => {
  const { data: job } = await enqueueJob(supabase, { type: uniqueType() });
  const waiting = waitForJob(supabase, job!.id, { intervalMs: 50, timeoutMs: 30_000 });
  await settleJob(db, job!.id, { result: { sent: true } });
  const done = await waiting;
  expect(done.error).toBeNull();
  expect(done.data).toMatchObject({ status: 'completed', result: { sent: true } });
});

test('waitForJob ends with TIMEOUT while the job is still pending', async () => {
  const { data: job } = await enqueueJob(supabase, { type: uniqueType() });
  const r = await waitForJob(supabase, job!.id, { intervalMs: 50, timeoutMs: 300 });
  expect(r.error?.code).toBe('TIMEOUT');
});

test('waitForJob ends with ABORTED when its signal aborts', async () => {
  const { data: job } = await enqueueJob(supabase, { type: uniqueType() });
  const controller = new AbortController();
  const waiting = waitForJob(supabase, job!.id, { intervalMs: 50, timeoutMs: 30_000, signal: controller.signal });
  controller.abort();
  expect((await waiting).error?.code).toBe('ABORTED');
});

test('errors carry the API code, status and trace id', async () => {
  const r = await getJob(supabase, randomUUID(), { traceId: 'client-missing' });
  expect(r.error).toMatchObject({ code: 'JOB_NOT_FOUND', status: 404, traceId: 'client-missing' });
});

test('retryJob with extraAttempts revives an exhausted job', async () => {
  const { data: job } = await enqueueJob(supabase, { type: uniqueType(), max_attempts: 1 });
  await settleJob(db, job!.id, { error: 'boom' });
  expect((await retryJob(supabase, job!.id)).error?.code).toBe('MAX_ATTEMPTS_REACHED');
  expect((await retryJob(supabase, job!.id, { extraAttempts: 1 })).data?.max_attempts).toBe(2);
});

test('listJobs pages with nextCursor', async () => {
  const type = uniqueType();
  for (let i = 0; i < 3; i++) await enqueueJob(supabase, { type });
  const page1 = await listJobs(supabase, { type, limit: 2 });
  const page2 = await listJobs(supabase, { type, limit: 2, cursor: page1.nextCursor! });
  expect(page1.data).toHaveLength(2);
  expect(page2.data).toHaveLength(1);
  expect(page2.nextCursor).toBeNull();
});
