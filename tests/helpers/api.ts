/**
 * Helpers for the API tests: the real `jobs` function served by Deno against this file's database,
 * supabase-js clients exactly as a frontend builds them, a JWKS endpoint for asymmetric tokens, and
 * small readers for responses.
 */
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { apiKey, LOCAL_API_URL, LOCAL_JWT_SECRET, userToken } from '../../scripts/lib/keys.ts';
import { freePort } from '../../scripts/lib/pg.ts';
import { serveFunctions, type FunctionsServer } from '../../scripts/lib/functions.ts';
import { addMember, asService, makeSuperAdmin, makeTenant, makeUser, useFixture, useTestDatabase, type TestDatabase } from './db.ts';

export const ALLOWED_ORIGIN = 'https://app.example.test';

export interface Api {
  server: FunctionsServer;
  anonKey: string;
  serviceKey: string;
  stop(): Promise<void>;
}

/**
 * Serves the `jobs` function for this test file. The issuer stays the one local tokens carry
 * (http://127.0.0.1:54321/auth/v1) whatever port the server gets. The rate limit is lifted unless
 * the test sets it: tests must not throttle each other.
 */
export async function startApi(db: Pick<TestDatabase, 'url'>, env: Record<string, string> = {},
  opts: { quiet?: boolean; onOutput?: (name: string, line: string) => void } = {}): Promise<Api> {
  const anonKey = await apiKey('anon');
  const serviceKey = await apiKey('service_role');
  const server = await serveFunctions({
    port: await freePort(),
    only: ['jobs'],
    quiet: opts.quiet,
    onOutput: opts.onOutput,
    env: {
      SUPABASE_URL: LOCAL_API_URL,
      SUPABASE_DB_URL: db.url,
      SUPABASE_JWT_SECRET: LOCAL_JWT_SECRET,
      SUPABASE_ANON_KEY: anonKey,
      SUPABASE_SERVICE_ROLE_KEY: serviceKey,
      SUPAQUEUE_RATE_LIMIT_PER_MINUTE: '1000000',
      SUPAQUEUE_CORS_ORIGINS: ALLOWED_ORIGIN,
      // Nothing listens here unless a test serves a JWKS: asymmetric tokens are then never accepted (503).
      SUPAQUEUE_JWKS_URL: 'http://127.0.0.1:9/jwks.json',
      ...env,
    },
  });
  return { server, anonKey, serviceKey, stop: () => server.stop() };
}

/**
 * The `jobs` function for this test file over db, as a handle usable at the top of the file: started in
 * beforeAll, stopped in afterAll (before the database is dropped: vitest runs after-hooks in reverse).
 * Call it after useTestDatabase().
 */
export function useApi(db: Pick<TestDatabase, 'url'>, env: Record<string, string> = {}): Api {
  const get = useFixture('the API', () => startApi(db, env), (api) => api.stop());
  return {
    get server() { return get().server; },
    get anonKey() { return get().anonKey; },
    get serviceKey() { return get().serviceKey; },
    stop: () => get().stop(),
  };
}

/**
 * Node 20 has no global WebSocket, which supabase-js's Realtime client insists on at construction;
 * these tests never subscribe, so a transport that refuses to connect is enough.
 */
class NoWebSocket {
  constructor() {
    throw new Error('Realtime is not used by the API tests');
  }
}

/** A browser-like supabase-js client: the anon key, and the user's access token when given. */
export function client(api: Api, token?: string): SupabaseClient {
  return createClient(api.server.url, api.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: NoWebSocket as never },
    ...(token !== undefined ? { accessToken: async () => token } : {}),
  });
}

export interface Reply<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** supabase.functions.invoke, returning status, headers and parsed body for success and error alike. */
export async function invoke(sb: SupabaseClient, name: string, opts: { method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'; body?: unknown; headers?: Record<string, string> } = {}): Promise<Reply> {
  const { data, error, response } = await sb.functions.invoke(name, opts as never);
  const res = (error as { context?: unknown } | null)?.context instanceof Response ? (error as { context: Response }).context : response;
  if (!res) throw error;
  const body = error ? await res.text().then((t) => (t ? JSON.parse(t) : null)) : data;
  return { status: res.status, headers: res.headers, body };
}

/** Plain fetch against a function path (for what supabase-js never sends: no Authorization, raw bodies). */
export async function raw(api: Api, path: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(`${api.server.functionsUrl}/${path}`, init);
  const text = await res.text();
  let body: unknown = text;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON: keep the text */ }
  return { status: res.status, headers: res.headers, body };
}

/** Counts and a digest of every job row: "nothing changed" means equal snapshots. */
export async function jobsSnapshot(db: TestDatabase): Promise<string> {
  const [r] = await db.sql`select count(*)::int as n,
                                  coalesce(md5(string_agg(j.id::text || j.status || j.attempts || j.max_attempts || j.updated_at::text, ',' order by j.id)), '') as digest
                           from public.job_queue j`;
  return `${r.n}:${r.digest}`;
}

export interface Jwks {
  url: string;
  kid: string;
  /** Signs claims with the published key (ES256). */
  sign(claims: Record<string, unknown>): Promise<string>;
  /** Signs with a key the attacker made, claiming the published kid. */
  signAsAttacker(claims: Record<string, unknown>): Promise<string>;
  stop(): Promise<void>;
}

/** A JWKS endpoint on 127.0.0.1, like ${SUPABASE_URL}/auth/v1/.well-known/jwks.json with signing keys. */
export async function startJwks(): Promise<Jwks> {
  const kid = randomUUID();
  const real = await generateKeyPair('ES256', { extractable: true });
  const attacker = await generateKeyPair('ES256');
  const publicJwk: JWK = { ...(await exportJWK(real.publicKey)), kid, alg: 'ES256', use: 'sig' };
  const body = JSON.stringify({ keys: [publicJwk] });
  const srv = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(body);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
  const signWith = (key: CryptoKey) => (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid }).sign(key);
  return {
    url: `http://127.0.0.1:${port}/auth/v1/.well-known/jwks.json`,
    kid,
    sign: signWith(real.privateKey),
    signAsAttacker: signWith(attacker.privateKey),
    stop: () => new Promise<void>((resolve) => { srv.closeAllConnections(); srv.close(() => resolve()); }),
  };
}

/** GoTrue-shaped claims for a user (for tokens signed by hand). */
export function claimsFor(userId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: `${LOCAL_API_URL}/auth/v1`, sub: userId, aud: 'authenticated', role: 'authenticated',
    iat: now, exp: now + 3600, session_id: randomUUID(), is_anonymous: false, ...extra,
  };
}

/**
 * Runs one attempt of a job through the worker RPCs as the service role (claim, then complete or fail
 * for good), as a worker would. Claims by the job's type, so give each such job a type of its own.
 */
export async function settleJob(db: TestDatabase, id: string, outcome: { result: unknown } | { error: string }): Promise<void> {
  await asService(db.sql, async (tx) => {
    const [{ type }] = await tx`select type from public.job_queue where id = ${id}`;
    const claimed = await tx`select id, lease_id from public.claim_jobs('api-test-worker', ${[type]}::text[], 1, 30)`;
    if (claimed.length !== 1 || claimed[0].id !== id) throw new Error(`could not claim job ${id}`);
    if ('result' in outcome) {
      await tx`select * from public.complete_jobs(${[id]}::uuid[], ${[claimed[0].lease_id]}::uuid[], array[${tx.json(outcome.result as never)}]::jsonb[])`;
    } else {
      await tx`select * from public.fail_jobs(${[id]}::uuid[], ${[claimed[0].lease_id]}::uuid[], ${[outcome.error]}::text[], array[false])`;
    }
  });
}

/** The cast of the endpoint tests, each with a browser-like client signed in as them. */
export interface World {
  tenantA: string;
  tenantB: string;
  aliceId: string;
  /** Member of A. */
  alice: SupabaseClient;
  /** Member of B. */
  bob: SupabaseClient;
  /** Member of A and B. */
  both: SupabaseClient;
  /** Member of nothing. */
  loner: SupabaseClient;
  /** Super admin, member of nothing. */
  admin: SupabaseClient;
  /** Member of a tenant allowing one queued job. */
  quotaUser: SupabaseClient;
}

export async function makeWorld(db: TestDatabase, api: Api): Promise<World> {
  const [tenantA, tenantB] = [await makeTenant(db.sql), await makeTenant(db.sql)];
  const quotaTenant = await makeTenant(db.sql, { maxQueuedJobs: 1 });
  const [aliceId, bobId, bothId, lonerId, adminId, quotaId] = await Promise.all([1, 2, 3, 4, 5, 6].map(() => makeUser(db.sql)));
  await addMember(db.sql, tenantA, aliceId);
  await addMember(db.sql, tenantB, bobId);
  await addMember(db.sql, tenantA, bothId);
  await addMember(db.sql, tenantB, bothId);
  await addMember(db.sql, quotaTenant, quotaId);
  await makeSuperAdmin(db.sql, adminId);
  const as = async (id: string) => client(api, await userToken(id));
  return {
    tenantA, tenantB, aliceId,
    alice: await as(aliceId), bob: await as(bobId), both: await as(bothId),
    loner: await as(lonerId), admin: await as(adminId), quotaUser: await as(quotaId),
  };
}

/** The endpoint tests' usual setup in one call: this file's database, the API over it and the World. */
export function useApiWorld(): { db: TestDatabase; api: Api; w: World } {
  const db = useTestDatabase();
  const api = useApi(db);
  const world = useFixture('the world', () => makeWorld(db, api), async () => {});
  const w = new Proxy({} as World, { get: (_target, key) => world()[key as keyof World] });
  return { db, api, w };
}

/** POST /jobs with a type of its own (unless given); throws unless 201. Returns the job. */
export async function enqueue(sb: SupabaseClient, body: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const r = await invoke(sb, 'jobs', { method: 'POST', body: { type: uniqueType(), payload: { n: 1 }, ...body } });
  if (r.status !== 201) throw new Error(`enqueue failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.data;
}

export const uniqueType = () => `t.${randomUUID().slice(0, 8)}`;
