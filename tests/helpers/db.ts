/**
 * Database helpers for tests: a private database per test file (cloned from the migrated template),
 * requests run exactly as PostgREST runs them, and small factories.
 */
import { randomUUID } from 'node:crypto';
import postgres, { type Sql, type TransactionSql } from 'postgres';
import { afterAll, beforeAll, inject } from 'vitest';
import { withDatabase } from '../../scripts/lib/stack.ts';

export type { Sql };

export interface TestDatabase {
  url: string;
  name: string;
  /** Connection as the database owner (postgres): bypasses RLS; use for setup and assertions. */
  sql: Sql;
  drop(): Promise<void>;
}

/** Clones the migrated template into a fresh database for this test file. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const server = inject('pgServerUrl');
  const name = `t_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const admin = postgres(server, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name} template ${inject('templateDb')}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(server, name);
  const sql = postgres(url, { max: 10, onnotice: () => {} });
  return {
    url,
    name,
    sql,
    async drop() {
      await sql.end({ timeout: 5 });
      const a = postgres(server, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}

/**
 * This test file's database, as a handle usable at the top of the file: registers beforeAll (create a
 * clone of the migrated template) and afterAll (drop it). Read db.sql / db.url inside tests and hooks
 * only (hooks registered after this call run after the database exists).
 */
export function useTestDatabase(): TestDatabase {
  const get = useFixture('the test database', createTestDatabase, (db) => db.drop());
  return {
    get url() { return get().url; },
    get name() { return get().name; },
    get sql() { return get().sql; },
    drop: () => get().drop(),
  };
}

/**
 * A fixture for this test file: made in beforeAll, disposed of in afterAll (in reverse order of
 * registration, as vitest runs after-hooks). Returns its getter, which throws outside tests and hooks.
 */
export function useFixture<T>(what: string, make: () => Promise<T>, dispose: (value: T) => Promise<unknown>): () => T {
  let current: T | undefined;
  beforeAll(async () => { current = await make(); });
  afterAll(async () => { if (current !== undefined) await dispose(current); });
  return () => {
    if (current === undefined) throw new Error(`${what} exists only inside tests and hooks`);
    return current;
  };
}

/** What a user of makeWorld is: a member or admin of its tenant, a super admin (member of nothing), or nobody. */
export type WorldRole = 'member' | 'admin' | 'super_admin' | 'none';

/**
 * One tenant and named users with their roles, e.g. makeWorld(sql, { member: 'member', admin: 'admin' })
 * -> { tenant, member, admin } (ids). The usual cast of a test file, made in one call.
 */
export async function makeWorld<const R extends Record<string, WorldRole>>(
  sql: Sql, users: R, tenant: Parameters<typeof makeTenant>[1] = {},
): Promise<{ tenant: string } & { [K in keyof R]: string }> {
  const world: Record<string, string> = { tenant: await makeTenant(sql, tenant) };
  for (const [name, role] of Object.entries(users)) {
    const id = world[name] = await makeUser(sql);
    if (role === 'member' || role === 'admin') await addMember(sql, world.tenant, id, role);
    if (role === 'super_admin') await makeSuperAdmin(sql, id);
  }
  return world as { tenant: string } & { [K in keyof R]: string };
}

export type Claims = Record<string, unknown>;

/** GoTrue-shaped claims for a signed-in user. */
export function userClaims(userId: string, extra: Claims = {}): Claims {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: 'http://127.0.0.1:54321/auth/v1', sub: userId, aud: 'authenticated', role: 'authenticated',
    exp: now + 3600, iat: now, email: `${userId.slice(0, 8)}@example.test`, phone: '',
    app_metadata: { provider: 'email', providers: ['email'] }, user_metadata: {},
    aal: 'aal1', session_id: randomUUID(), is_anonymous: false, ...extra,
  };
}

/**
 * Runs fn in a transaction as PostgREST would for a request: `set local role <role>` and
 * request.jwt.claims set (transaction-local) from the token's claims. Rolls back when rollback is true.
 */
export async function asRole<T>(sql: Sql, role: 'anon' | 'authenticated' | 'service_role', claims: Claims | null,
  fn: (tx: TransactionSql) => Promise<T>, opts: { rollback?: boolean } = {}): Promise<T> {
  const ROLLBACK = Symbol('rollback');
  let result: T | undefined;
  try {
    await sql.begin(async (tx) => {
      await tx`select set_config('request.jwt.claims', ${JSON.stringify(claims ?? { role })}, true)`;
      await tx.unsafe(`set local role ${role}`);
      result = await fn(tx);
      if (opts.rollback) throw ROLLBACK;
    });
  } catch (e) {
    if (e !== ROLLBACK) throw e;
  }
  return result as T;
}

/** Signed-in user with the given id. */
export function asUser<T>(sql: Sql, userId: string, fn: (tx: TransactionSql) => Promise<T>, extraClaims: Claims = {}): Promise<T> {
  return asRole(sql, 'authenticated', userClaims(userId, extraClaims), fn);
}

/** The service role, as the worker runs. */
export function asService<T>(sql: Sql, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  return asRole(sql, 'service_role', { role: 'service_role' }, fn);
}

export async function makeUser(sql: Sql, opts: { appMetadata?: Claims; userMetadata?: Claims } = {}): Promise<string> {
  const id = randomUUID();
  await sql`insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data)
            values (${id}, 'authenticated', 'authenticated', ${`${id.slice(0, 8)}@example.test`},
                    ${sql.json((opts.appMetadata ?? {}) as never)}, ${sql.json((opts.userMetadata ?? {}) as never)})`;
  return id;
}

export async function makeTenant(sql: Sql, opts: { name?: string; maxConcurrentJobs?: number | null; maxQueuedJobs?: number | null } = {}): Promise<string> {
  const [t] = await sql`insert into public.tenants (name, max_concurrent_jobs, max_queued_jobs)
                        values (${opts.name ?? `tenant-${randomUUID().slice(0, 6)}`}, ${opts.maxConcurrentJobs ?? null}, ${opts.maxQueuedJobs ?? null})
                        returning id`;
  return t.id as string;
}

export async function addMember(sql: Sql, tenantId: string, userId: string, role: 'member' | 'admin' = 'member'): Promise<void> {
  await sql`insert into public.tenant_members (tenant_id, user_id, role) values (${tenantId}, ${userId}, ${role})`;
}

export async function makeSuperAdmin(sql: Sql, userId: string): Promise<void> {
  await sql`insert into supaqueue.super_admins (user_id) values (${userId})`;
}

/** Enqueues n jobs for a tenant as the service role; returns their ids in order. */
export async function enqueueMany(sql: Sql, tenantId: string, n: number, spec: Claims = {}): Promise<string[]> {
  const jobs = Array.from({ length: n }, (_, i) => ({ tenant_id: tenantId, type: 'test.job', payload: { i }, ...spec }));
  const ids: string[] = [];
  for (let i = 0; i < jobs.length; i += 1000) {
    const rows = await asService(sql, (tx) => tx`select job_id from public.enqueue_jobs(${tx.json(jobs.slice(i, i + 1000) as never)})`);
    ids.push(...rows.map((r) => r.job_id as string));
  }
  return ids;
}

/** The SQLSTATE of a rejected promise (tests assert codes, never message text). */
export async function sqlState(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}
