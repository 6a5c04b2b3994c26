-- supaqueue 0001: schema, tenancy and row-level security.
--
-- Tables live in `public` because frontends read them with supabase-js (and Realtime); every one has RLS.
-- Helpers that must bypass RLS live in the non-exposed schema `supaqueue`, which PostgREST never serves.
-- Grants are revoked by default and given back minimally: signed-in users may only SELECT, and only
-- through the policies below; every write goes through the engine's functions (next migration).

create schema if not exists supaqueue;
comment on schema supaqueue is 'supaqueue internals: helpers, counters and state. Never add it to [api] schemas.';
revoke all on schema supaqueue from public, anon;
grant usage on schema supaqueue to authenticated, service_role;

-- Job states and their transitions (the engine's functions are the only writers):
--   pending    -> processing (claim_jobs) | cancelled (cancel_job)
--   processing -> completed (complete_jobs) | pending (fail_jobs with attempts left, lease expiry, release)
--                 | failed (fail_jobs, exhausted or permanent) | cancelled (fail/expiry after cancel_job)
--   failed, cancelled -> pending (retry_job)
--   completed, failed, cancelled are terminal until retried or purged.
create type public.job_status as enum ('pending', 'processing', 'completed', 'failed', 'cancelled');

-- ---------------------------------------------------------------------------------------------------
-- Tenants and membership
-- ---------------------------------------------------------------------------------------------------
create table public.tenants (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  -- Per-tenant limits; null means unlimited. Managed by the service role, never by tenant users.
  max_concurrent_jobs integer,
  max_queued_jobs integer,
  created_at timestamptz not null default now(),
  constraint tenant_name_length check (char_length(name) between 1 and 200),
  constraint max_concurrent_jobs_positive check (max_concurrent_jobs is null or max_concurrent_jobs > 0),
  constraint max_queued_jobs_positive check (max_queued_jobs is null or max_queued_jobs > 0)
);
comment on table public.tenants is 'A customer of the SaaS; every job belongs to exactly one tenant.';

create table public.tenant_members (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null default 'member',
  created_at timestamptz not null default now(),
  primary key (tenant_id, user_id),
  constraint member_role_known check (role in ('member', 'admin'))
);
-- The primary key indexes tenant_id only as its leading column; policies look members up by user.
create index tenant_members_user_id_idx on public.tenant_members (user_id);
comment on table public.tenant_members is 'Who belongs to which tenant. Read at query time, so revoking a membership takes effect at once (JWT claims would go stale).';

-- Super admins are a table in the private schema, written only by the service role or SQL owners.
-- Never user_metadata (users edit it themselves) and not a JWT claim (stale until refresh).
create table supaqueue.super_admins (
  user_id uuid primary key references auth.users (id) on delete cascade,
  created_at timestamptz not null default now()
);

-- ---------------------------------------------------------------------------------------------------
-- The queue
-- ---------------------------------------------------------------------------------------------------
create table public.job_queue (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  type text not null,
  status public.job_status not null default 'pending',
  payload jsonb not null default '{}'::jsonb,
  result jsonb,
  -- Higher runs first (range -100..100, default 0).
  priority smallint not null default 0,
  attempts integer not null default 0,
  max_attempts integer not null default 3,
  -- When the job may run: now, a delay, or the next retry after backoff.
  scheduled_at timestamptz not null default now(),
  -- Fair-queueing tag (start-time fair queueing across tenants), set when the job becomes ready to run;
  -- null while it waits for scheduled_at. Claims take the smallest tags first. See claim_jobs.
  fair_key bigint,
  -- Exponential backoff between attempts: base * 2^(attempt-1), capped, with jitter.
  backoff_base_ms integer not null default 1000,
  backoff_max_ms integer not null default 3600000,
  -- The lease: who holds the job and until when. lease_id fences settles: a stale holder cannot settle.
  worker_id text,
  lease_id uuid,
  locked_until timestamptz,
  cancel_requested_at timestamptz,
  started_at timestamptz,
  completed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_error text,
  -- The last 10 attempts' errors, oldest first: [{attempt, at, error, worker_id}].
  errors jsonb not null default '[]'::jsonb,
  progress jsonb,
  idempotency_key text,
  -- The job envelope, for log correlation from request to worker.
  trace_id text,
  actor_id text,
  request_id text,

  constraint job_type_format check (type ~ '^[a-z][a-z0-9_.:-]{0,127}$'),
  constraint payload_max_256kib check (octet_length(payload::text) <= 262144),
  constraint result_max_1mib check (result is null or octet_length(result::text) <= 1048576),
  constraint priority_in_range check (priority between -100 and 100),
  constraint max_attempts_in_range check (max_attempts between 1 and 1000),
  constraint attempts_le_max_attempts check (attempts between 0 and max_attempts),
  constraint backoff_in_range check (backoff_base_ms between 0 and 86400000 and backoff_max_ms between backoff_base_ms and 604800000),
  constraint lease_iff_processing check ((status = 'processing') = (lease_id is not null and locked_until is not null and worker_id is not null)),
  constraint completed_at_iff_terminal check ((status in ('completed', 'failed', 'cancelled')) = (completed_at is not null)),
  constraint fair_key_only_when_pending check (fair_key is null or status in ('pending', 'processing')),
  constraint cancel_request_only_when_processing check (cancel_requested_at is null or status = 'processing'),
  constraint error_history_bounded check (jsonb_typeof(errors) = 'array' and jsonb_array_length(errors) <= 10),
  constraint idempotency_key_length check (idempotency_key is null or char_length(idempotency_key) between 1 and 255),
  constraint envelope_lengths check (coalesce(char_length(trace_id), 0) <= 128 and coalesce(char_length(actor_id), 0) <= 128 and coalesce(char_length(request_id), 0) <= 128)
);
-- A queue table churns: every row is inserted, updated at least twice and finally deleted. Vacuum and
-- analyze it after 2% of it changed (defaults: 20% / 10%), so dead entries do not pile up in the claim
-- index and row estimates follow a burst into an idle queue.
alter table public.job_queue set (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_insert_scale_factor = 0.02);
comment on table public.job_queue is 'Background jobs, one row per job, isolated per tenant by RLS. Written only through the supaqueue functions.';

-- The claim: ready jobs in (priority desc, fair tag) order. Partial, so it holds only the ready set.
create index job_queue_claim_idx on public.job_queue (priority desc, fair_key)
  where status = 'pending' and fair_key is not null;
-- Delayed and retrying jobs waiting for scheduled_at (promoted to ready by the claim).
create index job_queue_due_idx on public.job_queue (scheduled_at)
  where status = 'pending' and fair_key is null;
-- A tenant's newest-first listing (and the tenant_id foreign key).
create index job_queue_tenant_created_idx on public.job_queue (tenant_id, created_at desc, id desc);
-- A tenant's listing filtered by type.
create index job_queue_tenant_type_idx on public.job_queue (tenant_id, type, created_at desc);
-- A tenant's active jobs: its latest fair tag and its queued-job quota.
create index job_queue_tenant_active_idx on public.job_queue (tenant_id, fair_key)
  where status in ('pending', 'processing');
-- Expired leases, for maintenance.
create index job_queue_lease_idx on public.job_queue (locked_until) where status = 'processing';
-- Retention purge of finished jobs.
create index job_queue_finished_idx on public.job_queue (completed_at) where completed_at is not null;
-- Idempotency: one job per (tenant, key).
create unique index job_queue_idempotency_key_idx on public.job_queue (tenant_id, idempotency_key)
  where idempotency_key is not null;

-- Per-tenant concurrency counters, kept only for tenants that have max_concurrent_jobs set, so unlimited
-- tenants pay nothing. `running` is changed only in the same statement that moves a job into or out of
-- `processing`, under this row's lock; claims lock it with SKIP LOCKED, so they never wait on it.
create table supaqueue.tenant_limits (
  tenant_id uuid primary key references public.tenants (id) on delete cascade,
  max_running integer not null,
  running integer not null default 0,
  constraint running_not_negative check (running >= 0)
);

-- ---------------------------------------------------------------------------------------------------
-- RLS helpers. security definer because they read tenant_members / super_admins, which the caller may
-- not be able to read in full; they live in the unexposed schema and only answer about the caller.
-- ---------------------------------------------------------------------------------------------------

/** The tenants the signed-in user belongs to (empty for anon and for users with no membership). */
create function supaqueue.member_tenant_ids() returns setof uuid
language sql stable security definer set search_path = ''
as $$
  select m.tenant_id from public.tenant_members m where m.user_id = (select auth.uid())
$$;
revoke all on function supaqueue.member_tenant_ids() from public, anon;
grant execute on function supaqueue.member_tenant_ids() to authenticated, service_role;

/** True when the signed-in user is a super admin (reads every tenant's jobs). */
create function supaqueue.is_super_admin() returns boolean
language sql stable security definer set search_path = ''
as $$
  select exists (select 1 from supaqueue.super_admins s where s.user_id = (select auth.uid()))
$$;
revoke all on function supaqueue.is_super_admin() from public, anon;
grant execute on function supaqueue.is_super_admin() to authenticated, service_role;

/** True when the signed-in user is a member (or, with min_role 'admin', an admin) of the tenant. */
create function supaqueue.has_tenant_role(tenant_id uuid, min_role text default 'member') returns boolean
language sql stable security definer set search_path = ''
as $$
  select exists (
    select 1 from public.tenant_members m
    where m.tenant_id = has_tenant_role.tenant_id
      and m.user_id = (select auth.uid())
      and (has_tenant_role.min_role = 'member' or m.role = 'admin')
  )
$$;
revoke all on function supaqueue.has_tenant_role(uuid, text) from public, anon;
grant execute on function supaqueue.has_tenant_role(uuid, text) to authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------
-- Grants: revoke Supabase's default grants, then give back the minimum.
-- ---------------------------------------------------------------------------------------------------
revoke all on public.tenants, public.tenant_members, public.job_queue from anon, authenticated;
grant select on public.tenants, public.tenant_members, public.job_queue to authenticated;
grant select, insert, update, delete on public.tenants, public.tenant_members, public.job_queue to service_role;
revoke all on all tables in schema supaqueue from public, anon, authenticated;
grant select, insert, update, delete on all tables in schema supaqueue to service_role;

alter table public.tenants enable row level security;
alter table public.tenant_members enable row level security;
alter table public.job_queue enable row level security;
alter table supaqueue.super_admins enable row level security;
alter table supaqueue.tenant_limits enable row level security;

-- One SELECT policy per table for signed-in users; no write policies: writes need the service role or
-- the engine's functions. The membership set is computed once per statement (initPlan), per Supabase's
-- RLS performance guide. service_role bypasses RLS (bypassrls), as on Supabase.
create policy tenants_select_member_or_super_admin on public.tenants
  for select to authenticated
  using (id = any (array(select supaqueue.member_tenant_ids())) or (select supaqueue.is_super_admin()));

create policy tenant_members_select_same_tenant_or_super_admin on public.tenant_members
  for select to authenticated
  using (tenant_id = any (array(select supaqueue.member_tenant_ids())) or (select supaqueue.is_super_admin()));

create policy job_queue_select_member_or_super_admin on public.job_queue
  for select to authenticated
  using (tenant_id = any (array(select supaqueue.member_tenant_ids())) or (select supaqueue.is_super_admin()));

-- Realtime: frontends can subscribe to their tenant's job rows (RLS applies to Realtime too).
do $$
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    alter publication supabase_realtime add table public.job_queue;
  end if;
end
$$;
