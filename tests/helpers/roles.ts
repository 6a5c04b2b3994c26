/** The caller matrix of the RLS tests (rls.functions, rls.private): who calls, and what a call must give. */
import { randomUUID } from 'node:crypto';
import type { Sql } from 'postgres';
import { afterAll } from 'vitest';

export type Role = 'anon' | 'member of A' | 'member of B' | 'no membership' | 'super admin' | 'service_role';
export const ROLES: Role[] = ['anon', 'member of A', 'member of B', 'no membership', 'super admin', 'service_role'];
/** ok: the call succeeds and did what it says; otherwise the SQLSTATE it must fail with. */
export type Expect = 'ok' | '42501' | 'QJ002' | 'QJ003' | 'QJ010';
export const OK = 'ok';
export const DENY = '42501';

/**
 * Login roles with no privileges of their own (they can work only by switching to service_role), made
 * in `sql`'s database and dropped after the file's tests. Returns a maker of connection URLs.
 */
export function useLoginRoles(db: { sql: Sql; url: string }, prefix: string): (memberOfServiceRole: boolean) => Promise<string> {
  const made: string[] = [];
  afterAll(async () => {
    for (const r of made) await db.sql.unsafe(`drop role if exists ${r}`).catch(() => {});
  });
  return async (memberOfServiceRole) => {
    const name = `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
    made.push(name);
    await db.sql.unsafe(`create role ${name} login noinherit password 'pw' ${memberOfServiceRole ? 'in role service_role' : ''}`);
    const u = new URL(db.url);
    u.username = name;
    u.password = 'pw';
    return u.toString();
  };
}
