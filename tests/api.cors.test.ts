/**
 * CORS for browsers, and the function's behaviour around its configuration and database: preflights
 * are answered without a token and without the database (proven with a server whose database is
 * unreachable), an unreachable database or JWKS is a 503 and not a hang or a leak, an unexpected database
 * error is a 500 INTERNAL that leaks nothing but is logged, and a bad configuration stops the
 * function at boot naming the variable.
 */
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { userToken } from '../scripts/lib/keys.ts';
import { freePort } from '../scripts/lib/pg.ts';
import { ALLOWED_ORIGIN, claimsFor, raw, startApi, type Api } from './helpers/api.ts';
import { addMember, createTestDatabase, makeTenant, makeUser, type TestDatabase } from './helpers/db.ts';

let db: TestDatabase;
let brokenDb: TestDatabase;
let api: Api;
let noDb: Api;
let broken: Api;
let token: string;
let userId: string;
const brokenLogs: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  const unreachable = { url: `postgresql://postgres:postgres@127.0.0.1:${await freePort()}/nothing` };
  // The second server also allows any origin: `*` must be configured explicitly to be honoured.
  // A database missing a function the API calls: every signed-in request hits an unexpected error.
  brokenDb = await createTestDatabase();
  await brokenDb.sql`alter function supaqueue.rate_limit_hit(text, integer, integer) rename to rate_limit_hit_gone`;
  [api, noDb, broken] = await Promise.all([
    startApi(db),
    startApi(unreachable, { SUPAQUEUE_CORS_ORIGINS: '*' }, { quiet: true }),
    startApi(brokenDb, { SUPAQUEUE_RATE_LIMIT_PER_MINUTE: '60' }, { quiet: true, onOutput: (_fn, line) => brokenLogs.push(line) }),
  ]);
  userId = await makeUser(db.sql);
  const tenant = await makeTenant(db.sql);
  await addMember(db.sql, tenant, userId);
  token = await userToken(userId);
});
afterAll(async () => {
  await Promise.all([api?.stop(), noDb?.stop(), broken?.stop()]);
  await Promise.all([db?.drop(), brokenDb?.drop()]);
});

const preflight = (target: Api, origin: string) => raw(target, 'jobs', {
  method: 'OPTIONS',
  headers: {
    Origin: origin,
    'Access-Control-Request-Method': 'POST',
    'Access-Control-Request-Headers': 'authorization, x-client-info, apikey, content-type, x-trace-id, x-request-id',
  },
});

describe('preflight', () => {
  test('from an allowed origin: the CORS headers supabase-js needs', async () => {
    const r = await preflight(api, ALLOWED_ORIGIN);
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    expect(r.headers.get('access-control-allow-methods')).toContain('POST');
    const allowed = r.headers.get('access-control-allow-headers')!.split(',').map((h) => h.trim());
    expect(allowed).toEqual(expect.arrayContaining(['authorization', 'x-client-info', 'apikey', 'content-type', 'x-trace-id', 'x-request-id']));
  });

  test('from another origin: no Access-Control-Allow-Origin', async () => {
    const r = await preflight(api, 'https://evil.example');
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('needs neither a token nor the database', async () => {
    const r = await preflight(noDb, ALLOWED_ORIGIN);
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-methods')).toContain('POST');
  });

  test('with `*` configured, any origin is allowed', async () => {
    const r = await preflight(noDb, 'https://anything.example');
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('actual requests', () => {
  test('from an allowed origin: Allow-Origin and the exposed trace and Retry-After headers', async () => {
    const r = await raw(api, 'jobs', { headers: { Origin: ALLOWED_ORIGIN, Authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    expect(r.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    expect(r.headers.get('access-control-expose-headers')).toContain('x-trace-id');
  });

  test('from another origin: no Access-Control-Allow-Origin, even on errors', async () => {
    const r = await raw(api, 'jobs', { headers: { Origin: 'https://evil.example' } });
    expect(r.status).toBe(401);
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('dependencies unreachable', () => {
  test('an ES256 token while the JWKS endpoint is down: 503 UNAVAILABLE, not a 401', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const es256 = await new SignJWT(claimsFor(userId)).setProtectedHeader({ alg: 'ES256', kid: 'some-key' }).sign(privateKey);
    const r = await raw(api, 'jobs', { headers: { Authorization: `Bearer ${es256}` } });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('UNAVAILABLE');
  });

  test('a signed-in request gets 503 UNAVAILABLE with Retry-After, without internals', async () => {
    const r = await raw(noDb, 'jobs', { headers: { Authorization: `Bearer ${token}` } });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('UNAVAILABLE');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(JSON.stringify(r.body)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|postgres/);
  });
});

describe('an unexpected database error', () => {
  test('is a 500 INTERNAL with the trace id and no internals', async () => {
    const r = await raw(broken, 'jobs', { headers: { Authorization: `Bearer ${token}`, 'x-trace-id': 'broken-1' } });
    expect(r.status).toBe(500);
    expect(r.body).toEqual({ error: { code: 'INTERNAL', message: expect.any(String) }, meta: { trace_id: 'broken-1' } });
    expect(JSON.stringify(r.body)).not.toMatch(/rate_limit|supaqueue|function|42883/);
  });

  test('is logged with the trace id and the database error code', async () => {
    await raw(broken, 'jobs', { headers: { Authorization: `Bearer ${token}`, 'x-trace-id': 'broken-2' } });
    await expect.poll(() => brokenLogs.find((l) => l.includes('"trace_id":"broken-2"')) ?? null).not.toBeNull();
    const entry = JSON.parse(brokenLogs.find((l) => l.includes('"trace_id":"broken-2"'))!);
    expect(entry).toMatchObject({ level: 'error', code: 'INTERNAL', error_code: '42883' });
  });
});

describe('configuration', () => {
  test('an invalid variable stops the function at boot, naming it', async () => {
    const bad = startApi(db, { SUPAQUEUE_RATE_LIMIT_PER_MINUTE: 'lots' }, { quiet: true });
    await expect(bad).rejects.toThrow(/SUPAQUEUE_RATE_LIMIT_PER_MINUTE/);
  });

  test('a missing database URL stops the function at boot', async () => {
    const bad = startApi(db, { SUPABASE_DB_URL: '' }, { quiet: true });
    await expect(bad).rejects.toThrow(/SUPABASE_DB_URL/);
  });
});
