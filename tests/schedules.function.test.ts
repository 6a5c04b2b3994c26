/**
 * The jobs-scheduler edge function, served by real Deno (scripts/lib/functions.ts) over a real database:
 * who may call it, what one pass answers, and exactly-once firing under overlapping invocations.
 */
import { createClient } from '@supabase/supabase-js';
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import { serveFunctions, type FunctionsServer } from '../scripts/lib/functions.ts';
import { apiKey, LOCAL_API_URL, LOCAL_JWT_SECRET, signJwt, userToken } from '../scripts/lib/keys.ts';
import { freePort } from '../scripts/lib/pg.ts';
import { claimsFor, invoke, startJwks, type Jwks } from './helpers/api.ts';
import { addMember, createTestDatabase, makeTenant, makeUser, type TestDatabase } from './helpers/db.ts';

// An opaque key (like the new sb_secret_ keys): accepted only by equality with SUPABASE_SERVICE_ROLE_KEY.
const OPAQUE_SERVICE_KEY = 'sb_secret_schedules_test_0123456789abcdef';

let db: TestDatabase;
let jwks: Jwks;
let server: FunctionsServer;
let url: string;
let tenant: string;

beforeAll(async () => {
  db = await createTestDatabase();
  tenant = await makeTenant(db.sql);
  jwks = await startJwks();
  server = await serveFunctions({
    port: await freePort(),
    only: ['jobs-scheduler'],
    quiet: true,
    env: {
      SUPABASE_URL: LOCAL_API_URL,
      SUPABASE_DB_URL: db.url,
      SUPABASE_JWT_SECRET: LOCAL_JWT_SECRET,
      SUPABASE_SERVICE_ROLE_KEY: OPAQUE_SERVICE_KEY,
      SUPAQUEUE_JWKS_URL: jwks.url,
    },
  });
  url = `${server.functionsUrl}/jobs-scheduler`;
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await jwks?.stop();
  await db?.drop();
});
beforeEach(async () => {
  await db.sql`delete from public.job_schedules`;
  await db.sql`delete from public.job_queue`;
});

function post(token?: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: '{}',
  });
}

async function errorCode(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

async function dueSchedules(n: number, nextRunAt = "date_trunc('minute', now())"): Promise<string[]> {
  const rows = await db.sql`
    insert into public.job_schedules (tenant_id, name, cron, job_type, next_run_at)
    select ${tenant}, 'every-minute-' || i, '* * * * *', 'report.tick', ${db.sql.unsafe(nextRunAt)}
    from generate_series(1, ${n}) i
    returning id`;
  return rows.map((r) => r.id as string);
}

test('without a bearer token: 401 NOT_AUTHENTICATED', async () => {
  const res = await post();
  expect(res.status).toBe(401);
  expect(await errorCode(res)).toBe('NOT_AUTHENTICATED');
});

test('a service_role JWT signed with another secret: 401', async () => {
  const forged = await signJwt({ role: 'service_role', exp: Math.floor(Date.now() / 1000) + 600 }, 'another-secret-of-at-least-32-characters!!');
  expect((await post(forged)).status).toBe(401);
});

test('the anon key: 403 FORBIDDEN', async () => {
  const res = await post(await apiKey('anon'));
  expect(res.status).toBe(403);
  expect(await errorCode(res)).toBe('FORBIDDEN');
});

test("a signed-in user's access token, even a tenant admin's: 403 FORBIDDEN", async () => {
  const user = await makeUser(db.sql);
  await addMember(db.sql, tenant, user, 'admin');
  const res = await post(await userToken(user));
  expect(res.status).toBe(403);
  expect(await errorCode(res)).toBe('FORBIDDEN');
});

test("a user's token signed with the project's asymmetric key (ES256): 403 FORBIDDEN", async () => {
  const res = await post(await jwks.sign(claimsFor(await makeUser(db.sql))));
  expect(res.status).toBe(403);
});

test('a refused call fires nothing', async () => {
  await dueSchedules(1);
  await post(await apiKey('anon'));
  const [{ n }] = await db.sql`select count(*)::int as n from public.job_queue`;
  expect(n).toBe(0);
});

test('the service_role JWT (signed with the project secret): 200 with the pass summary', async () => {
  await dueSchedules(2);
  const res = await post(await apiKey('service_role'));
  expect(res.status).toBe(200);
  const { data } = await res.json() as { data: Record<string, unknown> };
  expect(data).toMatchObject({
    reclaimed: 0, purged: 0, retention: '7 days', errors: [],
    schedules: { due: 2, fired: 2, moved: 0, failed: 0, disabled: 0, batches: 1, more: false },
  });
  expect(typeof data.duration_ms).toBe('number');
});

test('SUPABASE_SERVICE_ROLE_KEY itself, through supabase-js functions.invoke: 200', async () => {
  const supabase = createClient(server.url, OPAQUE_SERVICE_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
    // Node 20 has no WebSocket, which the Realtime client wants at construction; it is never used here.
    realtime: { transport: class { constructor() { throw new Error('no realtime'); } } as never },
  });
  const reply = await invoke(supabase, 'jobs-scheduler', { body: {} });
  expect(reply.status).toBe(200);
  expect(reply.body.data.schedules).toMatchObject({ due: 0, fired: 0 });
});

test('two overlapping invocations over the same due schedules enqueue each slot exactly once', async () => {
  const ids = await dueSchedules(80);
  const key = await apiKey('service_role');
  const responses = await Promise.all([post(key), post(key)]);
  const bodies = await Promise.all(responses.map((r) => r.json() as Promise<{ data: { schedules: { fired: number } } }>));

  expect(responses.map((r) => r.status)).toEqual([200, 200]);
  const rows = await db.sql`
    select substr(actor_id, 10)::uuid as id, count(*)::int as n from public.job_queue group by 1`;
  expect(rows.map((r) => r.id).sort()).toEqual([...ids].sort());
  expect(rows.every((r) => r.n === 1)).toBe(true);
  expect(bodies[0].data.schedules.fired + bodies[1].data.schedules.fired).toBe(80);
});

test('after hours of downtime, one invocation enqueues one job (the latest slot) and moves next_run_at past now', async () => {
  const [id] = await db.sql`
    insert into public.job_schedules (tenant_id, name, cron, job_type, next_run_at)
    values (${tenant}, 'every-10-min', '*/10 * * * *', 'report.tick', date_trunc('hour', now()) - interval '5 hours')
    returning id`.then((r) => r.map((x) => x.id as string));
  const res = await post(await apiKey('service_role'));
  expect(res.status).toBe(200);

  const jobs = await db.sql`select created_at from public.job_queue where actor_id = ${`schedule:${id}`}`;
  expect(jobs).toHaveLength(1);
  // The pass ran at the job's created_at: the slot fired is the latest one before it, the next one after it.
  const ranAt = jobs[0].created_at.getTime();
  const [s] = await db.sql`select last_run_at, next_run_at from public.job_schedules where id = ${id}`;
  expect(s.last_run_at.getTime()).toBeLessThanOrEqual(ranAt);
  expect(s.next_run_at.getTime() - s.last_run_at.getTime()).toBe(600_000);
  expect(s.next_run_at.getTime()).toBeGreaterThan(ranAt);
});

test('GET is refused with 405', async () => {
  const res = await fetch(url, { headers: { Authorization: `Bearer ${await apiKey('service_role')}` } });
  expect(res.status).toBe(405);
});
