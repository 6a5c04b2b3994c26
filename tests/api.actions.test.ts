/**
 * The jobs HTTP API end to end, part 2: cancel and retry with every error code they answer, tenant
 * isolation (another tenant's job is indistinguishable from no job), routing errors and trace ids.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { enqueue, invoke, jobsSnapshot, raw, settleJob, useApiWorld } from './helpers/api.ts';

const { db, api, w } = useApiWorld();

describe('another tenant\'s job looks exactly like no job', () => {
  const sameTrace = { 'x-trace-id': 'cross-tenant-check' };
  test.each([
    ['GET', ''],
    ['POST', '/retry'],
    ['POST', '/cancel'],
  ] as const)('%s /jobs/:id%s: same 404 body as a nonexistent job, job unchanged', async (method, action) => {
    const job = await enqueue(w.alice);
    await invoke(w.alice, `jobs/${job.id}/cancel`, { method: 'POST' }); // cancelled: retryable, so only tenancy stops w.bob
    const before = await jobsSnapshot(db);
    const theirs = await invoke(w.bob, `jobs/${job.id}${action}`, { method, headers: sameTrace });
    const missing = await invoke(w.bob, `jobs/${randomUUID()}${action}`, { method, headers: sameTrace });
    expect(theirs.status).toBe(404);
    expect(theirs.body).toEqual(missing.body);
    expect(theirs.body.error.code).toBe('JOB_NOT_FOUND');
    expect(await jobsSnapshot(db)).toBe(before);
  });
});

describe('POST /jobs/:id/cancel', () => {
  test('cancels a pending job', async () => {
    const job = await enqueue(w.alice);
    const r = await invoke(w.alice, `jobs/${job.id}/cancel`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(r.body.data).toMatchObject({ id: job.id, status: 'cancelled' });
  });

  test('cancelling a finished job: 409 INVALID_STATE', async () => {
    const job = await enqueue(w.alice);
    await invoke(w.alice, `jobs/${job.id}/cancel`, { method: 'POST' });
    const r = await invoke(w.alice, `jobs/${job.id}/cancel`, { method: 'POST' });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('INVALID_STATE');
  });

  test('a text body: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const job = await enqueue(w.alice);
    const r = await invoke(w.alice, `jobs/${job.id}/cancel`, { method: 'POST', body: 'please' });
    expect(r.status).toBe(415);
    expect(r.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('POST /jobs/:id/retry', () => {
  test('retries a cancelled job: 200, pending again', async () => {
    const job = await enqueue(w.alice);
    await invoke(w.alice, `jobs/${job.id}/cancel`, { method: 'POST' });
    const r = await invoke(w.alice, `jobs/${job.id}/retry`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(r.body.data).toMatchObject({ id: job.id, status: 'pending' });
  });

  test('retrying a pending job: 409 INVALID_STATE', async () => {
    const job = await enqueue(w.alice);
    const r = await invoke(w.alice, `jobs/${job.id}/retry`, { method: 'POST' });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('INVALID_STATE');
  });

  test('a failed job that used all its attempts: 400 MAX_ATTEMPTS_REACHED', async () => {
    const job = await enqueue(w.alice, { max_attempts: 1 });
    await settleJob(db, job.id, { error: 'boom' });
    const r = await invoke(w.alice, `jobs/${job.id}/retry`, { method: 'POST' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('MAX_ATTEMPTS_REACHED');
  });

  test('extra_attempts grants more attempts to an exhausted job', async () => {
    const job = await enqueue(w.alice, { max_attempts: 1 });
    await settleJob(db, job.id, { error: 'boom' });
    const r = await invoke(w.alice, `jobs/${job.id}/retry`, { method: 'POST', body: { extra_attempts: 2 } });
    expect(r.status).toBe(200);
    expect(r.body.data).toMatchObject({ status: 'pending', attempts: 1, max_attempts: 3 });
  });

  test('an unknown body field: 400 INVALID_ARGUMENT', async () => {
    const job = await enqueue(w.alice);
    const r = await invoke(w.alice, `jobs/${job.id}/retry`, { method: 'POST', body: { attempts: 5 } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
  });
});

describe('routing', () => {
  test.each([
    ['PUT', 'jobs/00000000-0000-4000-8000-000000000000', 'GET, DELETE'],
    ['PUT', 'jobs', 'GET, POST'],
    ['GET', 'jobs/00000000-0000-4000-8000-000000000000/cancel', 'POST'],
    ['PATCH', 'jobs/00000000-0000-4000-8000-000000000000/retry', 'POST'],
  ] as const)('%s %s: 405 METHOD_NOT_ALLOWED with Allow', async (method, path, allow) => {
    const r = await invoke(w.alice, path, { method });
    expect(r.status).toBe(405);
    expect(r.body.error.code).toBe('METHOD_NOT_ALLOWED');
    expect(r.headers.get('allow')).toBe(allow);
  });

  test('/jobs/schedules reaches the schedules router, not /jobs/:id', async () => {
    const r = await invoke(w.alice, 'jobs/schedules', { method: 'GET' });
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual(expect.any(Array));
  });

  test('an unknown path: 404 NOT_FOUND', async () => {
    const r = await invoke(w.alice, `jobs/${randomUUID()}/explode`, { method: 'POST' });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('NOT_FOUND');
  });
});

describe('trace ids', () => {
  test('the x-trace-id sent comes back in the header and meta.trace_id', async () => {
    const r = await invoke(w.alice, 'jobs', { method: 'GET', headers: { 'x-trace-id': 'abc.123:xyz' } });
    expect(r.headers.get('x-trace-id')).toBe('abc.123:xyz');
    expect(r.body.meta.trace_id).toBe('abc.123:xyz');
  });

  test('without x-trace-id, the traceparent\'s trace id is used', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const r = await invoke(w.alice, 'jobs', { method: 'GET', headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    expect(r.headers.get('x-trace-id')).toBe(traceId);
  });

  test('an unsafe x-trace-id is replaced by a generated one, also on errors', async () => {
    const r = await invoke(w.alice, `jobs/${randomUUID()}`, { method: 'GET', headers: { 'x-trace-id': '<script>alert(1)</script>' } });
    expect(r.status).toBe(404);
    expect(r.headers.get('x-trace-id')).toMatch(/^[0-9a-f]{32}$/);
    expect(r.body.meta.trace_id).toBe(r.headers.get('x-trace-id'));
  });

  test('a request without a token still carries a trace id', async () => {
    const r = await raw(api, 'jobs');
    expect(r.status).toBe(401);
    expect(r.headers.get('x-trace-id')).toMatch(/^[0-9a-f]{32}$/);
  });
});
