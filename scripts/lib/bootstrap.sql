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

-- ---------------------------------------------------------------------------------------------------
-- Supabase Realtime: THE DATABASE HALF ONLY. No Realtime server runs here (it is an Elixir release,
-- shipped as a Docker image); this recreates what its tenant migrations install in a project's
-- database (supabase/realtime, lib/realtime/tenants/repo/migrations), so migrations that broadcast from
-- the database and authorize private channels with RLS on realtime.messages run here as on Supabase:
--   * realtime.messages with its current columns, partitioned by inserted_at, RLS enabled, owned by
--     supabase_realtime_admin, and the grants Realtime gives (SELECT, INSERT, UPDATE to postgres and
--     the API roles: who may read or send is decided by RLS policies alone);
--   * realtime.topic(): the channel topic the server sets (realtime.topic) while it checks policies;
--   * realtime.send(payload, event, topic, private default true) with the server's current body: sets
--     realtime.topic for the transaction, inserts one broadcast row, and turns any error into a
--     WARNING, so a failed send never fails the caller's transaction;
--   * the publication supabase_realtime (Postgres Changes), empty, as on a new project.
-- Differences, on purpose: one DEFAULT partition instead of the daily partitions the server's janitor
-- creates (and drops after 3 days), since no server runs here to create them; nothing reads the
-- messages (on Supabase the server streams them to subscribers by logical replication).
-- ---------------------------------------------------------------------------------------------------
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'supabase_realtime_admin') then
    create role supabase_realtime_admin nologin noinherit noreplication;
  end if;
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;
alter publication supabase_realtime owner to postgres;

create schema if not exists realtime authorization supabase_admin;
grant usage on schema realtime to postgres, anon, authenticated, service_role;

create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp not null default now(),
  inserted_at timestamp not null default now(),
  id uuid not null default gen_random_uuid(),
  binary_payload bytea,
  constraint messages_payload_exclusive check (payload is null or binary_payload is null),
  primary key (id, inserted_at)
) partition by range (inserted_at);
create table if not exists realtime.messages_default partition of realtime.messages default;
create index if not exists messages_inserted_at_topic_index on realtime.messages (inserted_at desc, topic)
  where extension = 'broadcast' and private is true;
alter table realtime.messages owner to supabase_realtime_admin;
alter table realtime.messages_default owner to supabase_realtime_admin;
alter table realtime.messages enable row level security;
grant select, insert, update on realtime.messages to postgres, anon, authenticated, service_role;

create or replace function realtime.topic() returns text
language sql stable
as $$
  select nullif(current_setting('realtime.topic', true), '')::text;
$$;

create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true) returns void
language plpgsql
as $$
declare
  generated_id uuid;
  final_payload jsonb;
begin
  begin
    generated_id := gen_random_uuid();
    -- The payload gets an id unless it has one.
    if payload ? 'id' then
      final_payload := payload;
    else
      final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
    end if;
    execute format('SET LOCAL realtime.topic TO %L', topic);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (generated_id, final_payload, event, topic, private, 'broadcast');
  exception
    when others then
      raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;

alter function realtime.topic() owner to supabase_realtime_admin;
alter function realtime.send(jsonb, text, text, boolean) owner to supabase_realtime_admin;
grant execute on function realtime.topic(), realtime.send(jsonb, text, text, boolean) to postgres, anon, authenticated, service_role;
