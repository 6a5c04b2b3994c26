/**
 * Hardening of the jobs function's input and output, through the real Deno function and database:
 * deeply nested JSON refused before the database driver (and served unharmed when already stored),
 * strict keyset cursors, CORS for every method the routes answer, and SCHEDULE_NOT_FOUND.
 */
import type { SupabaseClient } from '@supabase/supabase-js';
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { MAX_JSON_DEPTH } from '../supabase/functions/_supaqueue/limits.ts';
import { encodeCursor } from '../supabase/functions/jobs/schemas.ts';
import { userToken } from '../scripts/lib/keys.ts';
import { ALLOWED_ORIGIN, client, enqueue, invoke, raw, useApi } from './helpers/api.ts';
import { addMember, makeTenant, makeUser, useTestDatabase } from './helpers/db.ts';

const db = useTestDatabase();
const api = useApi(db);
let tenant: string;
let adminToken: string;
let admin: SupabaseClient;

beforeAll(async () => {
  tenant = await makeTenant(db.sql);
  const adminId = await makeUser(db.sql);
  await addMember(db.sql, tenant, adminId, 'admin');
  adminToken = await userToken(adminId);
  admin = client(api, adminToken);
});
/** A JSON text nested `depth` levels: [[[...]]]. */
const nestedText = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
/** POSTs a raw JSON text (supabase-js would stringify a deep value itself, which is what we test against). */
const postText = (path: string, text: string) => raw(api, path, {
  method: 'POST', headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' }, body: text,
});
const schedule = (extra: Record<string, unknown> = {}) =>
  ({ name: `s-${randomUUID().slice(0, 8)}`, cron: '0 9 * * *', job_type: 'report.daily', ...extra });

describe('deeply nested JSON', () => {
  test('POST /jobs with a 12,000-level payload: 400 INVALID_ARGUMENT, nothing stored', async () => {
    const [{ n: before }] = await db.sql`select count(*)::int as n from public.job_queue`;
    const r = await postText('jobs', `{"type":"deep.job","payload":${nestedText(12_000)}}`);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
    const [{ n: after }] = await db.sql`select count(*)::int as n from public.job_queue`;
    expect(after).toBe(before);
  });

  test('POST /jobs/schedules with a 12,000-level payload: 400 INVALID_ARGUMENT, no schedule stored', async () => {
    const name = `deep-${randomUUID().slice(0, 8)}`;
    const body = JSON.stringify(schedule({ name, payload: [] })).replace('"payload":[]', `"payload":${nestedText(12_000)}`);
    const r = await postText('jobs/schedules', body);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
    expect(await db.sql`select 1 from public.job_schedules where name = ${name}`).toHaveLength(0);
  });

  test(`a payload exactly ${MAX_JSON_DEPTH} levels deep is accepted`, async () => {
    const r = await postText('jobs', `{"type":"deep.ok","payload":${nestedText(MAX_JSON_DEPTH)}}`);
    expect(r.status).toBe(201);
  });

  test(`a payload ${MAX_JSON_DEPTH + 1} levels deep: 400 INVALID_ARGUMENT`, async () => {
    const r = await postText('jobs', `{"type":"deep.over","payload":${nestedText(MAX_JSON_DEPTH + 1)}}`);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
  });

  test('brackets inside strings do not count as nesting', async () => {
    const r = await postText('jobs', JSON.stringify({ type: 'deep.text', payload: { text: '['.repeat(5000) + '{"\\"'.repeat(100) } }));
    expect(r.status).toBe(201);
  });
});

describe('a too-deep row stored before the upgrade', () => {
  const DEEP = 12_000;
  let jobId: string;
  let scheduleId: string;

  beforeAll(async () => {
    // Written as the superuser with triggers off: what an older version may have stored.
    jobId = (await enqueue(admin, { type: 'deep.legacy' })).id;
    const created = await invoke(admin, 'jobs/schedules', { method: 'POST', body: schedule() });
    scheduleId = created.body.data.id;
    await db.sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`update public.job_queue set payload = ${nestedText(DEEP)}::text::jsonb where id = ${jobId}`;
      await tx`update public.job_schedules set payload = ${nestedText(DEEP)}::text::jsonb where id = ${scheduleId}`;
    });
  });

  test('GET /jobs still answers 200 for the tenant, with that job and its payload intact', async () => {
    const r = await raw(api, 'jobs?limit=100', { headers: { Authorization: `Bearer ${adminToken}` } });
    expect(r.status).toBe(200);
    const job = r.body.data.find((j: { id: string }) => j.id === jobId);
    let depth = 0;
    for (let v = job.payload; Array.isArray(v); v = v[0]) depth++;
    expect(depth).toBe(DEEP);
  });

  test('GET /jobs/:id answers 200', async () => {
    const r = await raw(api, `jobs/${jobId}`, { headers: { Authorization: `Bearer ${adminToken}` } });
    expect(r.status).toBe(200);
  });

  test('GET /jobs/schedules still answers 200 for the tenant, with that schedule', async () => {
    const r = await raw(api, 'jobs/schedules?limit=100', { headers: { Authorization: `Bearer ${adminToken}` } });
    expect(r.status).toBe(200);
    expect(r.body.data.map((s: { id: string }) => s.id)).toContain(scheduleId);
  });
});

describe('cursors', () => {
  const id = randomUUID();
  // What a client can forge: base64url JSON [created_at, id], well-formed but not a real instant.
  const forged = (createdAt: string) => encodeCursor(createdAt, id);

  test.each([
    ['month 13', '2026-13-01T10:00:00.123456+00:00'],
    ['hour 25', '2026-05-01T25:00:00.123456+00:00'],
    ['30 February', '2026-02-30T10:00:00.123456+00:00'],
    ['29 February of a common year', '2026-02-29T10:00:00+00:00'],
    ['minute 60', '2026-05-01T10:60:00+00:00'],
    ['offset +16:00', '2026-05-01T10:00:00+16:00'],
  ])('GET /jobs with a cursor holding %s: 400 INVALID_ARGUMENT', async (_what, createdAt) => {
    const r = await invoke(admin, `jobs?cursor=${forged(createdAt)}`, { method: 'GET' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
  });

  test.each([
    ['month 13', '2026-13-01T10:00:00.123456+00:00'],
    ['hour 25', '2026-05-01T25:00:00.123456+00:00'],
    ['30 February', '2026-02-30T10:00:00.123456+00:00'],
  ])('GET /jobs/schedules with a cursor holding %s: 400 INVALID_ARGUMENT', async (_what, createdAt) => {
    const r = await invoke(admin, `jobs/schedules?cursor=${forged(createdAt)}`, { method: 'GET' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
  });

  test('a cursor in another spelling of the same position (padding added): 400 INVALID_ARGUMENT', async () => {
    const r = await invoke(admin, `jobs?cursor=${forged('2026-05-01T10:00:00.123456+00:00')}==`, { method: 'GET' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
  });

  test('29 February of a leap year is a real instant: 200', async () => {
    const r = await invoke(admin, `jobs?cursor=${forged('2028-02-29T10:00:00.123456+00:00')}`, { method: 'GET' });
    expect(r.status).toBe(200);
  });

  test('the cursor the API hands out is accepted', async () => {
    await enqueue(admin);
    await enqueue(admin);
    const first = await invoke(admin, 'jobs?limit=1', { method: 'GET' });
    const next = await invoke(admin, `jobs?limit=1&cursor=${first.body.meta.next_cursor}`, { method: 'GET' });
    expect(next.status).toBe(200);
  });
});

describe('CORS', () => {
  const preflight = (path: string, method: string) => raw(api, path, {
    method: 'OPTIONS',
    headers: { Origin: ALLOWED_ORIGIN, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': 'authorization, content-type' },
  });
  const allowed = (r: { headers: Headers }) => (r.headers.get('access-control-allow-methods') ?? '').split(',').map((m) => m.trim());

  test.each(['PATCH', 'DELETE'])('a preflight for %s on a schedule allows it', async (method) => {
    const r = await preflight(`jobs/schedules/${randomUUID()}`, method);
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    expect(allowed(r)).toContain(method);
  });

  test('the allowed methods are exactly the ones the routes answer', async () => {
    const r = await preflight('jobs', 'GET');
    expect(allowed(r).sort()).toEqual(['DELETE', 'GET', 'OPTIONS', 'PATCH', 'POST']);
  });
});

describe('SCHEDULE_NOT_FOUND', () => {
  test.each([
    ['GET', undefined],
    ['PATCH', { enabled: false }],
    ['DELETE', undefined],
  ] as const)('%s of a missing schedule: 404 SCHEDULE_NOT_FOUND', async (method, body) => {
    const r = await invoke(admin, `jobs/schedules/${randomUUID()}`, { method, ...(body ? { body } : {}) });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('SCHEDULE_NOT_FOUND');
  });

  test('running a missing schedule: 404 SCHEDULE_NOT_FOUND', async () => {
    const r = await invoke(admin, `jobs/schedules/${randomUUID()}/run`, { method: 'POST' });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('SCHEDULE_NOT_FOUND');
  });
});
