/**
 * The jobs HTTP API end to end, part 1: enqueue, read and list. supabase-js `functions.invoke` with a
 * user's token, exactly as a frontend calls it -> the real `jobs` function in Deno -> the engine in
 * Postgres. (Cancel, retry, tenancy isolation, routing and trace ids: api.actions.test.ts.)
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { enqueue, invoke, jobsSnapshot, uniqueType, useApiWorld } from './helpers/api.ts';
import { enqueueMany } from './helpers/db.ts';

const { db, api, w } = useApiWorld();

describe('POST /jobs', () => {
  test('enqueues into the caller\'s only tenant: 201 with the job, envelope from the request', async () => {
    const r = await invoke(w.alice, 'jobs', {
      method: 'POST',
      body: { type: 'email.send', payload: { to: 'a@example.test' }, priority: -5, max_attempts: 4 },
      headers: { 'x-trace-id': 'trace-enqueue-1', 'x-request-id': 'req-1' },
    });
    expect(r.status).toBe(201);
    expect(r.body.data).toMatchObject({
      type: 'email.send', status: 'pending', payload: { to: 'a@example.test' }, priority: -5, max_attempts: 4,
      attempts: 0, tenant_id: w.tenantA, actor_id: w.aliceId, trace_id: 'trace-enqueue-1', request_id: 'req-1',
    });
    const [row] = await db.sql`select tenant_id, actor_id, trace_id, request_id from public.job_queue where id = ${r.body.data.id}`;
    expect(row).toEqual({ tenant_id: w.tenantA, actor_id: w.aliceId, trace_id: 'trace-enqueue-1', request_id: 'req-1' });
  });

  test('an idempotent repeat answers 200 with the same job and inserts nothing', async () => {
    const key = `k-${randomUUID()}`;
    const first = await invoke(w.alice, 'jobs', { method: 'POST', body: { type: 'a.b', idempotency_key: key } });
    const again = await invoke(w.alice, 'jobs', { method: 'POST', body: { type: 'a.b', idempotency_key: key } });
    expect([first.status, again.status]).toEqual([201, 200]);
    expect(again.body.data.id).toBe(first.body.data.id);
    const [{ n }] = await db.sql`select count(*)::int as n from public.job_queue where idempotency_key = ${key}`;
    expect(n).toBe(1);
  });

  test('delay_ms schedules the job later', async () => {
    const job = await enqueue(w.alice, { delay_ms: 3_600_000 });
    expect(Date.parse(job.scheduled_at) - Date.parse(job.created_at)).toBeGreaterThanOrEqual(3_599_000);
  });

  test('run_at schedules the job at that time', async () => {
    const at = new Date(Date.now() + 86_400_000).toISOString();
    const job = await enqueue(w.alice, { run_at: at });
    expect(Date.parse(job.scheduled_at)).toBe(Date.parse(at));
  });

  test('a member of several tenants must name one: 400 INVALID_ARGUMENT', async () => {
    const r = await invoke(w.both, 'jobs', { method: 'POST', body: { type: 'a.b' } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
  });

  test('a member of several tenants enqueues into the one named', async () => {
    const job = await enqueue(w.both, { tenant_id: w.tenantB });
    expect(job.tenant_id).toBe(w.tenantB);
  });

  test('another tenant\'s id: 404 TENANT_NOT_FOUND and nothing inserted', async () => {
    const before = await jobsSnapshot(db);
    const r = await invoke(w.alice, 'jobs', { method: 'POST', body: { type: 'a.b', tenant_id: w.tenantB } });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('TENANT_NOT_FOUND');
    expect(await jobsSnapshot(db)).toBe(before);
  });

  test('a user without a tenant: 404 TENANT_NOT_FOUND', async () => {
    const r = await invoke(w.loner, 'jobs', { method: 'POST', body: { type: 'a.b' } });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('TENANT_NOT_FOUND');
  });

  test('the tenant\'s queued-job quota: 429 QUEUE_QUOTA_EXCEEDED with Retry-After', async () => {
    expect((await invoke(w.quotaUser, 'jobs', { method: 'POST', body: { type: 'a.b' } })).status).toBe(201);
    const r = await invoke(w.quotaUser, 'jobs', { method: 'POST', body: { type: 'a.b' } });
    expect(r.status).toBe(429);
    expect(r.body.error.code).toBe('QUEUE_QUOTA_EXCEEDED');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  test('a body over the size limit: 413 PAYLOAD_TOO_LARGE, nothing inserted', async () => {
    const before = await jobsSnapshot(db);
    const r = await invoke(w.alice, 'jobs', { method: 'POST', body: { type: 'a.b', payload: { blob: 'x'.repeat(300 * 1024) } } });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await jobsSnapshot(db)).toBe(before);
  });

  test('a payload over 256 KiB inside an accepted body: 413 PAYLOAD_TOO_LARGE from the engine', async () => {
    const r = await invoke(w.alice, 'jobs', { method: 'POST', body: { type: 'a.b', payload: { blob: 'x'.repeat(262_144) } } });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  test('a text body: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const r = await invoke(w.alice, 'jobs', { method: 'POST', body: '{"type":"a.b"}' });
    expect(r.status).toBe(415);
    expect(r.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  test('no body at all: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const r = await invoke(w.alice, 'jobs', { method: 'POST' });
    expect(r.status).toBe(415);
    expect(r.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  test('invalid JSON: 400 INVALID_ARGUMENT', async () => {
    const r = await invoke(w.alice, 'jobs', { method: 'POST', body: '{"type": "a.b",', headers: { 'Content-Type': 'application/json' } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
  });

  test.each([
    ['an unknown field', { type: 'a.b', colour: 'red' }],
    ['a negative delay', { type: 'a.b', delay_ms: -1 }],
    ['run_at and delay_ms together', { type: 'a.b', delay_ms: 5, run_at: new Date().toISOString() }],
    ['a bad type', { type: 'Not A Type' }],
    ['a string payload', { type: 'a.b', payload: 'hello' }],
    ['priority out of range', { type: 'a.b', priority: 101 }],
    ['a client-chosen actor', { type: 'a.b', actor_id: 'someone-else' }],
  ])('%s: 400 INVALID_ARGUMENT', async (_name, body) => {
    const r = await invoke(w.alice, 'jobs', { method: 'POST', body });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
  });
});

describe('GET /jobs/:id', () => {
  test('returns the job with its public fields and no lease internals', async () => {
    const job = await enqueue(w.alice);
    const r = await invoke(w.alice, `jobs/${job.id}`, { method: 'GET' });
    expect(r.status).toBe(200);
    expect(r.body.data.id).toBe(job.id);
    for (const key of ['status', 'type', 'payload', 'result', 'progress', 'attempts', 'max_attempts', 'last_error', 'errors',
      'scheduled_at', 'started_at', 'completed_at', 'created_at', 'trace_id', 'actor_id', 'request_id', 'tenant_id', 'priority',
      'worker_id', 'submitted_by', 'position']) {
      expect(r.body.data).toHaveProperty(key);
    }
    for (const key of ['lease_id', 'locked_until', 'fair_key']) expect(r.body.data).not.toHaveProperty(key);
  });

  test('an unknown id: 404 JOB_NOT_FOUND', async () => {
    const r = await invoke(w.alice, `jobs/${randomUUID()}`, { method: 'GET' });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('JOB_NOT_FOUND');
  });

  test('a super admin reads any tenant\'s job', async () => {
    const job = await enqueue(w.bob);
    const r = await invoke(w.admin, `jobs/${job.id}`, { method: 'GET' });
    expect(r.status).toBe(200);
    expect(r.body.data.tenant_id).toBe(w.tenantB);
  });
});

describe('GET /jobs', () => {
  test('lists only the caller\'s tenants\' jobs, newest first', async () => {
    await enqueue(w.bob);
    const r = await invoke(w.alice, 'jobs?limit=100', { method: 'GET' });
    expect(r.status).toBe(200);
    expect(r.body.data.length).toBeGreaterThan(0);
    expect(new Set(r.body.data.map((j: any) => j.tenant_id))).toEqual(new Set([w.tenantA]));
    const keys = r.body.data.map((j: any) => `${j.created_at}|${j.id}`);
    expect([...keys].sort().reverse()).toEqual(keys);
  });

  test('filters by status, type and tenant_id', async () => {
    const type = uniqueType();
    const a = await enqueue(w.both, { type, tenant_id: w.tenantA });
    await enqueue(w.both, { type, tenant_id: w.tenantB });
    await invoke(w.both, `jobs/${a.id}/cancel`, { method: 'POST' });
    const r = await invoke(w.both, `jobs?type=${type}&status=cancelled&tenant_id=${w.tenantA}`, { method: 'GET' });
    expect(r.body.data.map((j: any) => j.id)).toEqual([a.id]);
  });

  test('pages with limit and an opaque cursor, without gaps or repeats', async () => {
    const type = uniqueType();
    const ids = [];
    for (let i = 0; i < 7; i++) ids.push((await enqueue(w.bob, { type })).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await invoke(w.bob, `jobs?type=${type}&limit=3${cursor ? `&cursor=${cursor}` : ''}`, { method: 'GET' });
      expect(r.status).toBe(200);
      seen.push(...r.body.data.map((j: any) => j.id));
      cursor = r.body.meta.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());
  });

  test('pages through one bulk enqueue (one created_at for every job) without ending early', async () => {
    const type = uniqueType();
    const ids = await enqueueMany(db.sql, w.tenantA, 7, { type });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await invoke(w.alice, `jobs?type=${type}&limit=3${cursor ? `&cursor=${cursor}` : ''}`, { method: 'GET' });
      expect(r.status).toBe(200);
      seen.push(...r.body.data.map((j: any) => j.id));
      cursor = r.body.meta.next_cursor;
    } while (cursor);
    expect(seen.sort()).toEqual([...ids].sort());
  });

  test('the default page size is 20', async () => {
    const type = uniqueType();
    for (let i = 0; i < 21; i++) await enqueue(w.bob, { type });
    const r = await invoke(w.bob, `jobs?type=${type}`, { method: 'GET' });
    expect(r.body.data).toHaveLength(20);
    expect(r.body.meta.next_cursor).toEqual(expect.any(String));
  });

  test('a super admin lists every tenant\'s jobs', async () => {
    const type = uniqueType();
    await enqueue(w.alice, { type });
    await enqueue(w.bob, { type });
    const r = await invoke(w.admin, `jobs?type=${type}`, { method: 'GET' });
    expect(new Set(r.body.data.map((j: any) => j.tenant_id))).toEqual(new Set([w.tenantA, w.tenantB]));
  });

  test.each([
    ['limit over 100', 'limit=101'],
    ['limit 0', 'limit=0'],
    ['an unknown status', 'status=done'],
    ['a forged cursor', 'cursor=bm90LWEtY3Vyc29y'],
    ['an unknown parameter', 'stauts=failed'],
    ['a bad tenant id', 'tenant_id=abc'],
  ])('%s: 400 INVALID_ARGUMENT', async (_name, qs) => {
    const r = await invoke(w.alice, `jobs?${qs}`, { method: 'GET' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
  });
});

