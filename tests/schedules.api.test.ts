/**
 * The /jobs/schedules endpoints, through supabase-js against real Deno and a real database, with the
 * same error contract as the jobs endpoints.
 *
 * The router is served inside the real jobs app (createApp from supabase/functions/jobs/app.ts, with
 * the real auth, rate limit and DB modules), mounted at /jobs/schedules by a small entry point written
 * here, which is exactly what the jobs function's index.ts does once it mounts the router.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SupabaseClient } from '@supabase/supabase-js';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { nextSlot } from '../supabase/functions/_supaqueue/cron.ts';
import { serveFunctions } from '../scripts/lib/functions.ts';
import { apiKey, LOCAL_API_URL, LOCAL_JWT_SECRET, userToken } from '../scripts/lib/keys.ts';
import { freePort } from '../scripts/lib/pg.ts';
import { ROOT } from '../scripts/lib/stack.ts';
import { client, invoke, raw, type Api } from './helpers/api.ts';
import { addMember, createTestDatabase, makeSuperAdmin, makeTenant, makeUser, type TestDatabase } from './helpers/db.ts';

const FN = path.join(ROOT, 'supabase/functions');
const ENTRY = `
import { createVerifier } from '${FN}/_supaqueue/auth.ts';
import { getConfig } from '${FN}/_supaqueue/config.ts';
import { createDb } from '${FN}/_supaqueue/db.ts';
import { createApp } from '${FN}/jobs/app.ts';
import { createSchedulesRouter } from '${FN}/jobs/schedules-routes.ts';
const cfg = getConfig();
const db = createDb(cfg);
const app = createApp(cfg, { db, verify: createVerifier(cfg.jwt) },
  [{ path: '/jobs/schedules', router: createSchedulesRouter({ db, maxBodyBytes: cfg.maxBodyBytes }) }]);
Deno.serve({ port: Number(Deno.env.get('PORT')), hostname: '127.0.0.1', onListen() {} }, app.fetch);
`;

let db: TestDatabase;
let api: Api;
let dir: string;
let tenantA: string;
let admin: SupabaseClient;
let member: SupabaseClient;
let otherAdmin: SupabaseClient;
let superAdmin: SupabaseClient;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supaqueue-schedules-fn-'));
  fs.mkdirSync(path.join(dir, 'jobs'));
  fs.writeFileSync(path.join(dir, 'jobs/index.ts'), ENTRY);
  // The import map of the deployed functions (croner included).
  fs.copyFileSync(path.join(FN, 'jobs-scheduler/deno.json'), path.join(dir, 'jobs/deno.json'));
  const anonKey = await apiKey('anon');
  const server = await serveFunctions({
    port: await freePort(), functionsDir: dir, quiet: true,
    env: {
      SUPABASE_URL: LOCAL_API_URL, SUPABASE_DB_URL: db.url, SUPABASE_JWT_SECRET: LOCAL_JWT_SECRET,
      SUPAQUEUE_RATE_LIMIT_PER_MINUTE: '0', SUPAQUEUE_JWKS_URL: 'http://127.0.0.1:9/jwks.json',
    },
  });
  api = { server, anonKey, serviceKey: await apiKey('service_role'), stop: () => server.stop() };

  tenantA = await makeTenant(db.sql);
  const tenantB = await makeTenant(db.sql);
  const [a, m, b, s] = await Promise.all([1, 2, 3, 4].map(() => makeUser(db.sql)));
  await addMember(db.sql, tenantA, a, 'admin');
  await addMember(db.sql, tenantA, m, 'member');
  await addMember(db.sql, tenantB, b, 'admin');
  await makeSuperAdmin(db.sql, s);
  [admin, member, otherAdmin, superAdmin] = await Promise.all([a, m, b, s].map(async (u) => client(api, await userToken(u))));
}, 120_000);
afterAll(async () => {
  await api?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  await db?.drop();
});

let seq = 0;
async function create(as: SupabaseClient, body: Record<string, unknown> = {}) {
  seq += 1;
  return invoke(as, 'jobs/schedules', {
    method: 'POST',
    body: { tenant_id: tenantA, name: `sched-${seq}`, cron: '0 9 * * *', time_zone: 'Europe/Berlin', job_type: 'report.daily', ...body },
  });
}

test('an admin creates a schedule: 201, with next_run_at the next 09:00 in its time zone', async () => {
  const reply = await create(admin, { cron: ' 0  9 * * * ', payload: { report: 'daily' } });
  expect(reply.status).toBe(201);
  const s = reply.body.data;
  expect(s).toMatchObject({ tenant_id: tenantA, cron: '0 9 * * *', time_zone: 'Europe/Berlin', enabled: true, last_run_at: null });
  expect(new Date(s.next_run_at).toISOString()).toBe(nextSlot('0 9 * * *', 'Europe/Berlin', new Date(s.created_at)).toISOString());
});

test.each([
  ['a cron with a seconds field', { cron: '0 0 9 * * *' }],
  ['an impossible cron', { cron: '0 0 30 2 *' }],
  ['an unknown time zone', { time_zone: 'Europe/Atlantis' }],
  ['an unknown field', { colour: 'blue' }],
])('creating with %s: 400 INVALID_ARGUMENT', async (_what, body) => {
  const reply = await create(admin, body);
  expect(reply.status).toBe(400);
  expect(reply.body.error.code).toBe('INVALID_ARGUMENT');
});

test('a plain member lists the tenant\'s schedules', async () => {
  const { body: { data: s } } = await create(admin);
  const reply = await invoke(member, `jobs/schedules?tenant_id=${tenantA}`, { method: 'GET' });
  expect(reply.status).toBe(200);
  expect(reply.body.data.map((x: { id: string }) => x.id)).toContain(s.id);
});

test('a plain member cannot create: 403 FORBIDDEN', async () => {
  const reply = await create(member);
  expect(reply.status).toBe(403);
  expect(reply.body.error.code).toBe('FORBIDDEN');
});

test.each(['PATCH', 'DELETE', 'POST run'] as const)('a plain member cannot %s a schedule: 403 FORBIDDEN', async (op) => {
  const { body: { data: s } } = await create(admin);
  const reply = op === 'POST run'
    ? await invoke(member, `jobs/schedules/${s.id}/run`, { method: 'POST' })
    : await invoke(member, `jobs/schedules/${s.id}`, { method: op, ...(op === 'PATCH' ? { body: { priority: 5 } } : {}) });
  expect(reply.status).toBe(403);
  expect(reply.body.error.code).toBe('FORBIDDEN');
});

test("another tenant's admin does not see the schedule in the list", async () => {
  const { body: { data: s } } = await create(admin);
  const reply = await invoke(otherAdmin, 'jobs/schedules', { method: 'GET' });
  expect(reply.status).toBe(200);
  expect(reply.body.data.map((x: { id: string }) => x.id)).not.toContain(s.id);
});

test.each(['GET', 'PATCH', 'DELETE', 'POST run'] as const)("another tenant's admin: %s of the schedule is 404", async (op) => {
  const { body: { data: s } } = await create(admin);
  const reply = op === 'POST run'
    ? await invoke(otherAdmin, `jobs/schedules/${s.id}/run`, { method: 'POST' })
    : await invoke(otherAdmin, `jobs/schedules/${s.id}`, { method: op, ...(op === 'PATCH' ? { body: { priority: 5 } } : {}) });
  expect(reply.status).toBe(404);
  const [row] = await db.sql`select priority from public.job_schedules where id = ${s.id}`;
  expect(row.priority).toBe(0);
});

test("another tenant's admin cannot create in this tenant: 404 TENANT_NOT_FOUND", async () => {
  const reply = await create(otherAdmin);
  expect(reply.status).toBe(404);
  expect(reply.body.error.code).toBe('TENANT_NOT_FOUND');
});

test('PATCH of the cron recomputes next_run_at', async () => {
  const { body: { data: s } } = await create(admin);
  const reply = await invoke(admin, `jobs/schedules/${s.id}`, { method: 'PATCH', body: { cron: '30 6 * * 1', time_zone: 'UTC' } });
  expect(reply.status).toBe(200);
  const next = new Date(reply.body.data.next_run_at);
  expect([next.getUTCDay(), next.getUTCHours(), next.getUTCMinutes()]).toEqual([1, 6, 30]);
});

test('a super admin disables a schedule: next_run_at becomes null', async () => {
  const { body: { data: s } } = await create(admin);
  const reply = await invoke(superAdmin, `jobs/schedules/${s.id}`, { method: 'PATCH', body: { enabled: false } });
  expect(reply.status).toBe(200);
  expect(reply.body.data).toMatchObject({ enabled: false, next_run_at: null });
});

test('POST /:id/run enqueues one job now: 201 with the job', async () => {
  const { body: { data: s } } = await create(admin, { job_type: 'report.now', payload: { x: 1 } });
  const reply = await invoke(admin, `jobs/schedules/${s.id}/run`, { method: 'POST' });
  expect(reply.status).toBe(201);
  expect(reply.body.data).toMatchObject({ tenant_id: tenantA, type: 'report.now', payload: { x: 1 }, status: 'pending', actor_id: `schedule:${s.id}` });
});

test('DELETE removes the schedule: 200 with it, then 404', async () => {
  const { body: { data: s } } = await create(admin);
  const del = await invoke(admin, `jobs/schedules/${s.id}`, { method: 'DELETE' });
  const get = await invoke(admin, `jobs/schedules/${s.id}`, { method: 'GET' });
  expect([del.status, del.body.data.id, get.status]).toEqual([200, s.id, 404]);
});

test('without a token: 401 NOT_AUTHENTICATED', async () => {
  const reply = await raw(api, 'jobs/schedules', { method: 'GET' });
  expect(reply.status).toBe(401);
  expect(reply.body.error.code).toBe('NOT_AUTHENTICATED');
});
