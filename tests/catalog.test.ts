/**
 * Catalog invariants of our schemas, asserted on the migrated database. Each query lists the objects
 * that break a rule, so a failure names them. Objects that belong to extensions are not ours and are
 * left out (on hosted Supabase, extensions may install functions into `public`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ROOT } from '../scripts/lib/stack.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db?.drop(); });

/** Names (schema.name) of our functions, i.e. in public/supaqueue and not installed by an extension. */
async function ourFunctions(where: string): Promise<string[]> {
  const rows = await db.sql.unsafe(`
    select n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as name
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('public', 'supaqueue')
      and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
      and (${where})
    order by 1`);
  return rows.map((r) => r.name as string);
}

async function ourRelations(kinds: string, where: string): Promise<string[]> {
  const rows = await db.sql.unsafe(`
    select n.nspname || '.' || c.relname as name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname in ('public', 'supaqueue') and c.relkind = any ('{${kinds}}'::"char"[])
      and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
      and (${where})
    order by 1`);
  return rows.map((r) => r.name as string);
}

test('the checks see our objects (guards every "no offenders" test below against an empty catalog)', async () => {
  expect(await ourFunctions('true')).toEqual(expect.arrayContaining([
    'public.claim_jobs(worker_id text, types text[], batch_size integer, lease_seconds double precision)',
    'supaqueue.member_tenant_ids()',
  ]));
  expect(await ourRelations('r,p', 'true')).toEqual(expect.arrayContaining(['public.job_queue', 'supaqueue.super_admins']));
});

test('every table in public and supaqueue has row level security enabled', async () => {
  expect(await ourRelations('r,p', 'not c.relrowsecurity')).toEqual([]);
});

test('every view in public and supaqueue runs with the caller\'s rights (security_invoker), so RLS applies', async () => {
  expect(await ourRelations('v,m', `c.relkind = 'm' or not coalesce(c.reloptions @> '{security_invoker=true}', false)`)).toEqual([]);
});

test('every function in public and supaqueue pins search_path to the empty string', async () => {
  expect(await ourFunctions(`not coalesce(p.proconfig @> array['search_path=""'], false)`)).toEqual([]);
});

test('no function overrides the planner (enable_*): the hot path is planned on narrow tables (issue 11)', async () => {
  expect(await ourFunctions(`exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'enable\\_%')`)).toEqual([]);
});

test('no SECURITY DEFINER function lives in public (the exposed schema)', async () => {
  expect(await ourFunctions(`p.prosecdef and n.nspname = 'public'`)).toEqual([]);
});

test('no function in public or supaqueue is executable by PUBLIC', async () => {
  expect(await ourFunctions(`has_function_privilege('public', p.oid, 'EXECUTE')`)).toEqual([]);
});

test('anon can execute no function in public or supaqueue', async () => {
  expect(await ourFunctions(`has_function_privilege('anon', p.oid, 'EXECUTE')`)).toEqual([]);
});

test('SECURITY DEFINER functions are executable by no role other than authenticated and service_role', async () => {
  const rows = await db.sql`
    select n.nspname || '.' || p.proname as name, coalesce(r.rolname, 'PUBLIC') as grantee
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    cross join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
    left join pg_roles r on r.oid = a.grantee
    where n.nspname in ('public', 'supaqueue') and p.prosecdef and a.privilege_type = 'EXECUTE'
      and a.grantee <> p.proowner and coalesce(r.rolname, 'PUBLIC') not in ('authenticated', 'service_role')
    order by 1, 2`;
  expect(rows).toEqual([]);
});

test('the supaqueue schema is not usable by anon or PUBLIC', async () => {
  const [r] = await db.sql`
    select has_schema_privilege('anon', 'supaqueue', 'USAGE') as anon_usage,
           has_schema_privilege('anon', 'supaqueue', 'CREATE') as anon_create,
           has_schema_privilege('public', 'supaqueue', 'USAGE') as public_usage,
           has_schema_privilege('authenticated', 'supaqueue', 'CREATE') as authenticated_create`;
  expect(r).toEqual({ anon_usage: false, anon_create: false, public_usage: false, authenticated_create: false });
});

test('anon has no privilege on any table, view or sequence in public or supaqueue', async () => {
  expect(await ourRelations('r,p,v,m,S,f',
    `has_table_privilege('anon', c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')
     or (c.relkind = 'S' and has_sequence_privilege('anon', c.oid, 'USAGE,SELECT,UPDATE'))`)).toEqual([]);
});

test('authenticated may only SELECT public tables (writes go through functions) and nothing in supaqueue', async () => {
  expect(await ourRelations('r,p,v,m,f',
    `has_table_privilege('authenticated', c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')
     or (n.nspname = 'supaqueue' and has_table_privilege('authenticated', c.oid, 'SELECT'))`)).toEqual([]);
});

test('supaqueue is not among the schemas the API serves (supabase/config.toml [api])', () => {
  const toml = fs.readFileSync(path.join(ROOT, 'supabase/config.toml'), 'utf8');
  const api = /^\[api\]\s*$([\s\S]*?)^\[/m.exec(toml)?.[1] ?? '';
  const schemas = /^schemas\s*=\s*\[([^\]]*)\]/m.exec(api)?.[1];
  const extra = /^extra_search_path\s*=\s*\[([^\]]*)\]/m.exec(api)?.[1] ?? '';
  expect(schemas).toBeDefined();
  expect(`${schemas} ${extra}`).not.toMatch(/["']supaqueue["']/);
});

test('supaqueue.version() is the package version (a release that changes the SQL bumps both)', async () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const [row] = await db.sql`select supaqueue.version() as v`;
  expect(row.v).toBe(pkg.version);
});
