-- Supabase platform bootstrap for a *vanilla* Postgres (the embedded one used by `npm start` / `npm test`).
--
-- A real Supabase database (hosted, or `supabase start`) already has all of this; scripts/lib/stack.ts
-- only runs this file against the embedded Postgres it started itself, never against DATABASE_URL.
-- It recreates only what our migrations rely on, each piece mirroring supabase/postgres:
--   * the API roles and their attributes (migrations/db/init-scripts/00000000000000-initial-schema.sql);
--   * the `auth` schema with `auth.users` (a subset of GoTrue's columns) and the claim readers
--     auth.uid()/auth.role()/auth.jwt() with the same bodies as GoTrue's migrations;
--   * the `extensions` schema and Supabase's default privileges on `public`.
-- Everything here is owned by supabase_admin: `supabase db reset` keeps schemas owned by it, so a reset
-- re-applies our migrations on top of this without having to re-run it. Idempotent.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'supabase_admin') then
    create role supabase_admin login superuser createdb createrole replication bypassrls;
  end if;
  -- PostgREST switches into these per request; none can log in.
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  -- service_role bypasses RLS, exactly as on Supabase.
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  -- The role PostgREST logs in as; it may only `set role` to the three API roles.
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin nologin noinherit createrole;
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;

create schema if not exists extensions authorization supabase_admin;
grant usage on schema extensions to postgres, anon, authenticated, service_role;

create schema if not exists auth authorization supabase_admin;
grant usage on schema auth to postgres, anon, authenticated, service_role;

-- A subset of GoTrue's auth.users: what foreign keys, seeds and tests use.
create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  raw_app_meta_data jsonb default '{}'::jsonb,
  raw_user_meta_data jsonb default '{}'::jsonb,
  is_super_admin boolean,
  is_anonymous boolean not null default false,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
alter table auth.users owner to supabase_admin;
grant select, insert, update, delete on auth.users to postgres;

-- GoTrue's claim readers: legacy per-claim GUC first, then the JSON claims PostgREST sets.
create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

alter function auth.uid() owner to supabase_admin;
alter function auth.role() owner to supabase_admin;
alter function auth.jwt() owner to supabase_admin;
grant execute on function auth.uid(), auth.role(), auth.jwt() to postgres, anon, authenticated, service_role;

-- Supabase's default privileges on `public`: every new table, function and sequence created by
-- postgres is granted to the API roles. Our migrations revoke these explicitly, so this matters:
-- without it, a "revoke by default" migration would pass here and leak on real Supabase.
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to anon, authenticated, service_role;
