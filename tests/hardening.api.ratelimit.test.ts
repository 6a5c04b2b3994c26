/**
 * The per-user rate limit is keyed on the user, not on how the token spells the user's id: case
 * variants of one uuid `sub` (Postgres reads them as the same uuid) share one budget, and a `sub` that
 * is not a uuid is refused. Own function server and database (a low limit must not throttle others).
 */
import { SignJWT } from 'jose';
import { beforeAll, expect, test } from 'vitest';
import { LOCAL_JWT_SECRET } from '../scripts/lib/keys.ts';
import { claimsFor, raw, useApi } from './helpers/api.ts';
import { addMember, makeTenant, makeUser, useTestDatabase } from './helpers/db.ts';

const LIMIT = 3;

const db = useTestDatabase();
const api = useApi(db, { SUPAQUEUE_RATE_LIMIT_PER_MINUTE: String(LIMIT) });
let userId: string;

const sign = (claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(LOCAL_JWT_SECRET));
const list = (token: string) => raw(api, 'jobs?limit=1', { headers: { Authorization: `Bearer ${token}` } });

beforeAll(async () => {
  const tenant = await makeTenant(db.sql);
  userId = await makeUser(db.sql);
  await addMember(db.sql, tenant, userId);
});
test('an upper-case spelling of a spent user id gets no fresh budget: 429 RATE_LIMITED', async () => {
  const lower = await sign(claimsFor(userId.toLowerCase()));
  const upper = await sign(claimsFor(userId.toUpperCase()));
  const statuses: number[] = [];
  for (let i = 0; i < LIMIT; i++) statuses.push((await list(lower)).status);
  expect(statuses).toEqual(Array(LIMIT).fill(200));
  const r = await list(upper);
  expect(r.status).toBe(429);
  expect(r.body.error.code).toBe('RATE_LIMITED');
});

test('a sub that is not a uuid: 401 NOT_AUTHENTICATED', async () => {
  const r = await list(await sign(claimsFor(`user-${userId}`)));
  expect(r.status).toBe(401);
  expect(r.body.error.code).toBe('NOT_AUTHENTICATED');
});
