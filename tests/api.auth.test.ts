/**
 * Token verification in the `jobs` function: what a signed-in user's access token must look like, and
 * every way a token can be wrong. Each rejection is a 401 NOT_AUTHENTICATED (never a 5xx) and changes
 * nothing in the database. Asymmetric tokens are checked against a JWKS served on 127.0.0.1.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SignJWT } from 'jose';
import { apiKey, LOCAL_JWT_SECRET, signJwt, userToken } from '../scripts/lib/keys.ts';
import { claimsFor, client, invoke, jobsSnapshot, raw, startApi, startJwks, type Api, type Jwks } from './helpers/api.ts';
import { addMember, createTestDatabase, enqueueMany, makeTenant, makeUser, type TestDatabase } from './helpers/db.ts';

let db: TestDatabase;
let api: Api;
let jwks: Jwks;
let userId: string;
let jobId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  jwks = await startJwks();
  api = await startApi(db, { SUPAQUEUE_JWKS_URL: jwks.url });
  userId = await makeUser(db.sql);
  const tenant = await makeTenant(db.sql);
  await addMember(db.sql, tenant, userId);
  [jobId] = await enqueueMany(db.sql, tenant, 1);
});
afterAll(async () => {
  await api?.stop();
  await jwks?.stop();
  await db?.drop();
});

const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** Every kind of bad token; null means "send no Authorization header at all". */
const badTokens: [string, () => Promise<string | null>][] = [
  ['no token', async () => null],
  ['garbage', async () => 'not-a-jwt'],
  ['expired', () => userToken(userId, { expiresIn: -120 })],
  ['not valid yet (future nbf)', () => userToken(userId, { extra: { nbf: now() + 3600 } })],
  ['wrong signature', async () => { const t = await userToken(userId); return `${t.slice(0, -4)}${t.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`; }],
  ['alg none', async () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claimsFor(userId))}.`],
  ['alg none with a dummy signature', async () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claimsFor(userId))}.c2ln`],
  ['HS256 with a random secret', () => userToken(userId, { secret: randomUUID() + randomUUID() })],
  ['the anon key', () => apiKey('anon')],
  ['the service_role key', () => apiKey('service_role')],
  ['wrong audience', () => signJwt(claimsFor(userId, { aud: 'somebody-else' }))],
  ['wrong issuer', () => userToken(userId, { issuer: 'https://evil.example/auth/v1' })],
  ['role other than authenticated', () => signJwt(claimsFor(userId, { role: 'service_role' }))],
  ['no exp', () => signJwt(claimsFor(userId, { exp: undefined }))],
  ['sub not a UUID', () => signJwt(claimsFor('not-a-uuid'))],
  ['ES256 from an attacker key with the real kid', () => jwks.signAsAttacker(claimsFor(userId))],
  ['HS384 with the project secret', () =>
    new SignJWT(claimsFor(userId)).setProtectedHeader({ alg: 'HS384' }).sign(new TextEncoder().encode(LOCAL_JWT_SECRET))],
];

function send(token: string | null, path: string, init: RequestInit = {}) {
  const headers = new Headers(init.headers);
  if (token !== null) headers.set('Authorization', `Bearer ${token}`);
  return raw(api, path, { ...init, headers });
}

describe.each(badTokens)('%s', (_name, makeToken) => {
  test('GET /jobs/:id: 401 NOT_AUTHENTICATED', async () => {
    const r = await send(await makeToken(), `jobs/${jobId}`);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('NOT_AUTHENTICATED');
  });

  test('enqueue, retry and cancel: 401 and the database unchanged', async () => {
    const token = await makeToken();
    const before = await jobsSnapshot(db);
    const json = { 'Content-Type': 'application/json' };
    const statuses = [
      (await send(token, 'jobs', { method: 'POST', headers: json, body: JSON.stringify({ type: 'a.b' }) })).status,
      (await send(token, `jobs/${jobId}/cancel`, { method: 'POST' })).status,
      (await send(token, `jobs/${jobId}/retry`, { method: 'POST' })).status,
    ];
    expect(statuses).toEqual([401, 401, 401]);
    expect(await jobsSnapshot(db)).toBe(before);
  });
});

describe('accepted tokens', () => {
  test('an HS256 user token from supabase-js', async () => {
    const r = await invoke(client(api, await userToken(userId)), `jobs/${jobId}`, { method: 'GET' });
    expect(r.status).toBe(200);
  });

  test('an ES256 user token signed by a key in the project\'s JWKS', async () => {
    const r = await invoke(client(api, await jwks.sign(claimsFor(userId))), `jobs/${jobId}`, { method: 'GET' });
    expect(r.status).toBe(200);
    expect(r.body.data.id).toBe(jobId);
  });

  test('user_metadata claiming admin grants nothing: another tenant\'s job stays 404', async () => {
    const stranger = await makeUser(db.sql);
    const token = await userToken(stranger, { userMetadata: { role: 'super_admin', is_super_admin: true, tenant_ids: ['*'] } });
    const r = await invoke(client(api, token), `jobs/${jobId}`, { method: 'GET' });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('JOB_NOT_FOUND');
  });
});

describe('supabase-js without a session', () => {
  test('sends the anon key as the bearer, which is refused with 401', async () => {
    const r = await invoke(client(api), `jobs/${jobId}`, { method: 'GET' });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('NOT_AUTHENTICATED');
  });
});
