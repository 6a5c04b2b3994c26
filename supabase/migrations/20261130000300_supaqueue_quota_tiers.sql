-- supaqueue: quota tiers, per-user active-job limits and the submitting user (issue 12).
--
--   * Tiers are data: public.quota_tiers (name, max_active_jobs_per_user, max_payload_bytes,
--     max_attempts; null = no limit of that kind), seeded with free, pro and enterprise and changed with
--     set_quota_tier, no migration needed. A tenant has a tier (tenants.tier, its plan); a member can have
--     a personal override (supaqueue.member_tiers, private: co-members do not see each other's plan).
--     The effective tier is the override, else the tenant's; no tier = no per-user limits.
--   * tenants.tier is null by default, for existing AND new tenants: an upgrade must not start refusing
--     jobs nobody asked to limit, and code that creates tenants without knowing tiers keeps its 0.1
--     behaviour. Operators opt in per tenant (set_tenant_tier) or for every new tenant with
--     `alter table public.tenants alter column tier set default 'free'` (the column default is the one
--     home of "the tier of a new tenant").
--   * Only the service role and super admins change tiers and assignments (QJ010 for everyone else, QJ002
--     for other tenants); members read the tiers and their own effective limits and usage (my_limits).
--   * Every job records its submitter: job_queue.submitted_by, auth.uid() on user calls (another value:
--     QJ010), optional on the service path (enqueue on behalf of a user). No foreign key: enqueue stays
--     one insert. Indexed for "my jobs" (no index here includes or filters on status: claims stay HOT).
--   * Per-user active-job limit (pending + processing), exact under concurrency: a counter row per
--     limited user (supaqueue.user_active_jobs), created on the user's first limited enqueue, locked by
--     every enqueue/retry that adds to it and kept exact by statement-level triggers on job_queue. Users
--     without a limit have no counter row and cost nothing but the tier lookup.
--     reserve_user_slot(s) are called by the engine's insert and retry (20261130000600_supaqueue_hot_path).
--   The engine's code table, continued:
--   QJ012 CONCURRENT_JOB_LIMIT  the submitting user has as many active jobs as their tier allows

-- ---------------------------------------------------------------------------------------------------
-- Tiers
-- ---------------------------------------------------------------------------------------------------

create table public.quota_tiers (
  name text primary key,
  -- Most pending + processing jobs one user may have in one tenant; null = unlimited.
  max_active_jobs_per_user integer,
  -- Largest payload of one job a user may enqueue; null = the engine's ceiling (256 KiB).
  max_payload_bytes integer,
  -- Most attempts a user's job may ask for; higher is lowered to it. null = the engine's ceiling.
  max_attempts integer,
  description text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint quota_tier_name_format check (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
  constraint quota_tier_max_active_positive check (max_active_jobs_per_user is null or max_active_jobs_per_user > 0),
  constraint quota_tier_max_payload_in_range check (max_payload_bytes is null or max_payload_bytes between 2 and 262144),
  constraint quota_tier_max_attempts_in_range check (max_attempts is null or max_attempts between 1 and supaqueue.max_attempts_limit()),
  constraint quota_tier_description_length check (description is null or char_length(description) <= 500)
);
comment on table public.quota_tiers is 'Plans and their per-user limits. Read by signed-in users; written with set_quota_tier (service role, super admins).';

insert into public.quota_tiers (name, max_active_jobs_per_user, max_payload_bytes, max_attempts, description) values
  ('free', 1, 65536, 3, 'One active job per user'),
  ('pro', 10, null, 10, 'Ten active jobs per user'),
  ('enterprise', null, null, null, 'No per-user limits');

alter table public.tenants add column tier text references public.quota_tiers (name) on update cascade;
create index tenants_tier_idx on public.tenants (tier);

create table supaqueue.member_tiers (
  tenant_id uuid not null,
  user_id uuid not null,
  tier text not null references public.quota_tiers (name) on update cascade,
  created_at timestamptz not null default now(),
  primary key (tenant_id, user_id),
  -- Removing the member removes the override.
  foreign key (tenant_id, user_id) references public.tenant_members (tenant_id, user_id) on delete cascade
);
create index member_tiers_tier_idx on supaqueue.member_tiers (tier);

-- The exact count of a limited user's pending + processing jobs (see reserve_user_slot).
create table supaqueue.user_active_jobs (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  user_id uuid not null,
  active integer not null default 0,
  primary key (tenant_id, user_id),
  constraint user_active_jobs_not_negative check (active >= 0)
);

alter table public.quota_tiers enable row level security;
alter table supaqueue.member_tiers enable row level security;
alter table supaqueue.user_active_jobs enable row level security;
revoke all on public.quota_tiers from anon, authenticated;
grant select on public.quota_tiers to authenticated;
grant select, insert, update, delete on public.quota_tiers to service_role;
revoke all on supaqueue.member_tiers, supaqueue.user_active_jobs from public, anon, authenticated;
grant select, insert, update, delete on supaqueue.member_tiers, supaqueue.user_active_jobs to service_role;

-- The price list is not secret: any signed-in user who belongs to a tenant (or is a super admin) reads it.
create policy quota_tiers_select_members on public.quota_tiers
  for select to authenticated
  using ((select exists (select 1 from supaqueue.visible_tenant_ids())));

-- ---------------------------------------------------------------------------------------------------
-- The submitter
-- ---------------------------------------------------------------------------------------------------

alter table public.job_queue add column submitted_by uuid;
-- "My jobs", newest first. Partial: service jobs without a submitter cost it nothing.
create index job_queue_submitted_by_idx on public.job_queue (tenant_id, submitted_by, created_at desc, id desc)
  where submitted_by is not null;
grant select (submitted_by) on public.job_queue to authenticated;

alter type supaqueue.job_spec add attribute submitted_by uuid;

/**
 * The engine's spec parser (hardening migration) with one more field, submitted_by (a user id; the user
 * rules force it to the caller on user calls). Raises QJ001 (first problem, in input order) or QJ007.
 */
create or replace function supaqueue.parse_job_specs(jobs jsonb) returns supaqueue.job_spec[]
language plpgsql stable set search_path = ''
as $$
declare
  v_specs supaqueue.job_spec[];
  v_bad text;
begin
  if jobs is null or jsonb_typeof(jobs) <> 'array' then
    perform supaqueue.invalid('jobs must be a JSON array of job objects');
  end if;
  if jsonb_array_length(jobs) > 10000 then
    perform supaqueue.invalid('at most 10000 jobs per call');
  end if;
  select min(coalesce(
           case when jsonb_typeof(e.j) <> 'object' then 'each job must be a JSON object' end,
           (select 'unknown field: ' || min(k) from jsonb_object_keys(e.j) k
             where k not in ('tenant_id', 'type', 'payload', 'priority', 'run_at', 'delay_ms', 'max_attempts', 'idempotency_key',
                             'trace_id', 'actor_id', 'request_id', 'backoff_base_ms', 'backoff_max_ms', 'submitted_by')
            having count(*) > 0)))
    into v_bad
  from jsonb_array_elements(jobs) e(j);
  if v_bad is not null then perform supaqueue.invalid(v_bad); end if;

  begin
    select array_agg(row(
             s.n, gen_random_uuid(), x.tenant_id, x.type, coalesce(x.payload, '{}'::jsonb), coalesce(x.priority, 0),
             coalesce(x.run_at, now() + make_interval(secs => greatest(coalesce(x.delay_ms, 0), 0) / 1000.0)),
             s.j ? 'run_at', x.delay_ms, coalesce(x.max_attempts, 3), x.idempotency_key, x.trace_id, x.actor_id,
             x.request_id, coalesce(x.backoff_base_ms, 1000), coalesce(x.backoff_max_ms, 3600000),
             octet_length(coalesce(x.payload, '{}'::jsonb)::text), x.submitted_by
           )::supaqueue.job_spec order by s.n)
      into v_specs
    from jsonb_array_elements(jobs) with ordinality s(j, n)
    cross join lateral jsonb_to_record(s.j) as x(tenant_id uuid, type text, payload jsonb, priority integer,
      run_at timestamptz, delay_ms bigint, max_attempts integer, idempotency_key text, trace_id text,
      actor_id text, request_id text, backoff_base_ms integer, backoff_max_ms integer, submitted_by uuid);
  exception when data_exception then
    -- 22P02 bad uuid/number, 22007/22008 bad timestamp, 22003 out of range, 22023 ...: one code for all.
    perform supaqueue.invalid('malformed job field: ' || sqlerrm);
  end;

  select m.msg into v_bad
  from (select s.n, case
      when s.tenant_id is null then 'tenant_id is required'
      when s.type is null or s.type !~ supaqueue.job_type_pattern() then 'type must match ' || supaqueue.job_type_pattern()
      when s.priority not between -100 and 100 then 'priority must be between -100 and 100'
      when s.max_attempts not between 1 and supaqueue.max_attempts_limit() then 'max_attempts must be between 1 and ' || supaqueue.max_attempts_limit()
      when s.delay_ms < 0 then 'delay_ms must not be negative'
      when s.run_at_given and s.delay_ms is not null then 'give run_at or delay_ms, not both'
      when s.run_at_given and s.scheduled_at < now() - interval '1 day' then 'run_at is more than a day in the past'
      when s.scheduled_at > now() + interval '1 year' then 'run_at must be within a year'
      when s.idempotency_key is not null and char_length(s.idempotency_key) not between 1 and 255 then 'idempotency_key must be 1-255 characters'
      when greatest(char_length(s.trace_id), char_length(s.actor_id), char_length(s.request_id)) > 128 then 'trace_id, actor_id and request_id are at most 128 characters'
      when s.backoff_base_ms not between 0 and 86400000 or s.backoff_max_ms not between s.backoff_base_ms and 604800000 then 'backoff_base_ms must be 0..86400000 and backoff_max_ms between it and 604800000'
      when jsonb_typeof(s.payload) not in ('object', 'array') then 'payload must be a JSON object or array'
    end as msg
    from unnest(v_specs) s) m
  where m.msg is not null
  order by m.n
  limit 1;
  if v_bad is not null then perform supaqueue.invalid(v_bad); end if;
  if exists (select 1 from unnest(v_specs) s where s.payload_bytes > 262144) then
    raise exception 'payload is larger than 256 KiB' using errcode = 'QJ007';
  end if;
  return coalesce(v_specs, '{}');
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Effective limits
-- ---------------------------------------------------------------------------------------------------

/** The user's effective tier in the tenant: their override, else the tenant's; all nulls when none. */
create function supaqueue.effective_tier(tenant_id uuid, user_id uuid) returns public.quota_tiers
language sql stable set search_path = ''
as $$
  select q.* from public.tenants t
  left join supaqueue.member_tiers m on m.tenant_id = t.id and m.user_id = effective_tier.user_id
  join public.quota_tiers q on q.name = coalesce(m.tier, t.tier)
  where t.id = effective_tier.tenant_id
$$;

/**
 * The rules of a user's enqueue, applied to parsed specs (hardening migration), plus the submitter and
 * the caller's tier: actor_id and submitted_by are the caller (another value: QJ010), backoff_base_ms at
 * least min_user_backoff_ms() (QJ001), all payloads together at most max_user_call_payload_bytes() and
 * each at most the tier's max_payload_bytes (QJ007), priority lowered to the tenant's max_user_priority,
 * max_attempts to the tier's. trace_id and request_id are kept: correlation ids, never identity.
 */
create or replace function supaqueue.apply_user_rules(specs supaqueue.job_spec[], user_id uuid) returns supaqueue.job_spec[]
language plpgsql stable set search_path = ''
as $$
declare
  v_specs supaqueue.job_spec[];
  v_too_big integer;
begin
  if exists (select 1 from unnest(specs) s
             where (s.actor_id is distinct from apply_user_rules.user_id::text and s.actor_id is not null)
                or (s.submitted_by is distinct from apply_user_rules.user_id and s.submitted_by is not null)) then
    raise exception 'actor_id and submitted_by are set by the engine to the signed-in user' using errcode = 'QJ010';
  end if;
  if exists (select 1 from unnest(specs) s where s.backoff_base_ms < supaqueue.min_user_backoff_ms()) then
    perform supaqueue.invalid(format('backoff_base_ms must be at least %s', supaqueue.min_user_backoff_ms()));
  end if;
  if (select sum(s.payload_bytes) from unnest(specs) s) > supaqueue.max_user_call_payload_bytes() then
    raise exception 'the payloads of one call are larger than % bytes together', supaqueue.max_user_call_payload_bytes()
      using errcode = 'QJ007';
  end if;
  with tiers as materialized (
    select d.tenant_id, e.max_payload_bytes, e.max_attempts
    from (select distinct s.tenant_id from unnest(specs) s) d
    cross join lateral supaqueue.effective_tier(d.tenant_id, apply_user_rules.user_id) e
  )
  select array_agg(jsonb_populate_record(s, jsonb_build_object(
           'priority', least(s.priority, t.max_user_priority), 'actor_id', apply_user_rules.user_id,
           'submitted_by', apply_user_rules.user_id, 'max_attempts', least(s.max_attempts, r.max_attempts))) order by s.n),
         min(r.max_payload_bytes) filter (where s.payload_bytes > r.max_payload_bytes)
    into v_specs, v_too_big
  from unnest(specs) s
  join public.tenants t on t.id = s.tenant_id
  left join tiers r on r.tenant_id = s.tenant_id;
  if v_too_big is not null then
    raise exception 'payload is larger than % bytes (your tier''s limit)', v_too_big using errcode = 'QJ007';
  end if;
  return coalesce(v_specs, '{}');
end
$$;

/**
 * The user's limits in the tenant and their current usage, as JSON: tier, tier_source ('member',
 * 'tenant' or null), max_active_jobs_per_user, max_payload_bytes, max_attempts (null = no limit) and
 * active_jobs (pending + processing jobs they submitted). No access check: callers check first.
 */
create function supaqueue.user_limits(tenant_id uuid, user_id uuid) returns jsonb
language plpgsql stable set search_path = ''
as $$
declare
  v_tier public.quota_tiers;
  v_source text;
  v_active bigint;
begin
  select * into v_tier from supaqueue.effective_tier(user_limits.tenant_id, user_limits.user_id);
  select case when exists (select 1 from supaqueue.member_tiers m where m.tenant_id = user_limits.tenant_id and m.user_id = user_limits.user_id) then 'member'
              when v_tier.name is not null then 'tenant' end into v_source;
  -- The counter when the user has one (exact); else a count over the submitter index.
  select c.active into v_active from supaqueue.user_active_jobs c where c.tenant_id = user_limits.tenant_id and c.user_id = user_limits.user_id;
  if v_active is null then
    select count(*) into v_active from public.job_queue j
     where j.tenant_id = user_limits.tenant_id and j.submitted_by = user_limits.user_id and j.status in ('pending', 'processing');
  end if;
  return jsonb_build_object('tenant_id', user_limits.tenant_id, 'user_id', user_limits.user_id, 'tier', v_tier.name,
    'tier_source', v_source, 'max_active_jobs_per_user', v_tier.max_active_jobs_per_user,
    'max_payload_bytes', v_tier.max_payload_bytes, 'max_attempts', v_tier.max_attempts, 'active_jobs', v_active);
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- The per-user counter: reserved by enqueue and retry, kept exact by triggers
-- ---------------------------------------------------------------------------------------------------

/**
 * Makes room for `adding` more active jobs of user_id in the tenant, or raises QJ012
 * (CONCURRENT_JOB_LIMIT; detail: {"limit", "active", "adding", "tier"} as JSON). Returns at once when the
 * user has no limit (or user_id is null, or adding <= 0). Holds the user's counter row locked until the
 * transaction ends, so racing enqueues for the last slot are serialised and exactly the limit wins.
 *
 * Tier changes: the KEY SHARE lock on the tenant row (the one the job insert's foreign-key check takes
 * anyway) makes set_tenant_tier / set_member_tier / set_quota_tier, which take FOR UPDATE on it, wait
 * for enqueues that read the old tier; an enqueue after them reads the new tier in its next statement.
 */
create function supaqueue.reserve_user_slot(tenant_id uuid, user_id uuid, adding integer) returns void
language plpgsql volatile set search_path = ''
as $$
declare
  v_tier public.quota_tiers;
  v_created integer;
  v_active integer;
begin
  if reserve_user_slot.user_id is null or coalesce(adding, 0) <= 0 then
    return;
  end if;
  perform 1 from public.tenants t where t.id = reserve_user_slot.tenant_id for key share;
  select * into v_tier from supaqueue.effective_tier(reserve_user_slot.tenant_id, reserve_user_slot.user_id);
  if v_tier.max_active_jobs_per_user is null then
    return;
  end if;
  insert into supaqueue.user_active_jobs (tenant_id, user_id, active)
  values (reserve_user_slot.tenant_id, reserve_user_slot.user_id, 0)
  on conflict on constraint user_active_jobs_pkey do nothing;
  get diagnostics v_created = row_count;
  if v_created = 1 then
    -- First limited enqueue of this user: count the active jobs exactly. The new row is invisible to
    -- other transactions until we commit, so their triggers cannot count a change twice; FOR UPDATE
    -- makes us wait for any settle/cancel in flight on those rows and re-check their status after it
    -- commits (a job that just finished is not counted; one whose settle waits on us is counted now and
    -- decremented by its trigger after we commit, when the row is visible). Jobs become active only
    -- through enqueue and retry, and both reserve first: they queue on this row (on conflict waits for
    -- our insert), so none can slip between this count and our commit.
    update supaqueue.user_active_jobs c
       set active = (select count(*) from (select 1 from public.job_queue j
                      where j.tenant_id = reserve_user_slot.tenant_id and j.submitted_by = reserve_user_slot.user_id
                        and j.status in ('pending', 'processing') for update of j) a)
     where c.tenant_id = reserve_user_slot.tenant_id and c.user_id = reserve_user_slot.user_id;
  end if;
  select c.active into v_active from supaqueue.user_active_jobs c
   where c.tenant_id = reserve_user_slot.tenant_id and c.user_id = reserve_user_slot.user_id
  for update;
  if v_active + adding > v_tier.max_active_jobs_per_user then
    raise exception 'the limit of % active jobs per user (tier %) is reached', v_tier.max_active_jobs_per_user, v_tier.name
      using errcode = 'QJ012',
            detail = jsonb_build_object('limit', v_tier.max_active_jobs_per_user, 'active', v_active, 'adding', adding, 'tier', v_tier.name)::text,
            hint = 'wait until one of your jobs finishes, or cancel one';
  end if;
end
$$;

/**
 * reserve_user_slot for every (tenant, submitted_by) of a call, in that order (so two bulk enqueues lock
 * counters in one order and cannot deadlock). adding = the specs that will really insert: a repeat of an
 * existing idempotency key adds nothing. One user over the limit refuses the whole call (QJ012).
 */
create function supaqueue.reserve_user_slots(specs supaqueue.job_spec[]) returns void
language plpgsql volatile set search_path = ''
as $$
declare
  v_user record;
begin
  for v_user in
    select s.tenant_id, s.submitted_by,
           count(distinct s.idempotency_key) + count(*) filter (where s.idempotency_key is null) as adding
    from unnest(specs) s
    where s.submitted_by is not null
      and not exists (select 1 from public.job_queue j where j.tenant_id = s.tenant_id and j.idempotency_key = s.idempotency_key)
    group by s.tenant_id, s.submitted_by
    order by s.tenant_id, s.submitted_by
  loop
    perform supaqueue.reserve_user_slot(v_user.tenant_id, v_user.submitted_by, v_user.adding::integer);
  end loop;
end
$$;

/**
 * Statement-level trigger on job_queue: the net change of active (pending + processing) jobs per
 * (tenant, submitter), applied to the counters that exist. Nothing to do, and one probe of an empty
 * table, while no user has a limit. Several counters are locked in key order first, so concurrent
 * settles cannot deadlock on them.
 */
create function supaqueue.tg_job_queue__count_user_active() returns trigger
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: whoever changes job_queue (workers as service_role, the engine's definer helpers,
-- the owner) must keep the private counters right, which no API role may write.
declare
  v_tenants uuid[];
  v_users uuid[];
  v_deltas bigint[];
begin
  if not exists (select 1 from supaqueue.user_active_jobs) then
    return null;
  end if;
  if tg_op = 'INSERT' then
    select array_agg(n.tenant_id), array_agg(n.user_id), array_agg(n.d) into v_tenants, v_users, v_deltas
    from (select n.tenant_id, n.submitted_by as user_id, count(*) as d from new_rows n
          where n.submitted_by is not null and n.status in ('pending', 'processing') group by 1, 2) n;
  elsif tg_op = 'DELETE' then
    select array_agg(o.tenant_id), array_agg(o.user_id), array_agg(o.d) into v_tenants, v_users, v_deltas
    from (select o.tenant_id, o.submitted_by as user_id, -count(*) as d from old_rows o
          where o.submitted_by is not null and o.status in ('pending', 'processing') group by 1, 2) o;
  else
    select array_agg(c.tenant_id), array_agg(c.user_id), array_agg(c.d) into v_tenants, v_users, v_deltas
    from (select x.tenant_id, x.user_id, sum(x.d) as d from (
            select n.tenant_id, n.submitted_by as user_id, 1 as d from new_rows n
             where n.submitted_by is not null and n.status in ('pending', 'processing')
            union all
            select o.tenant_id, o.submitted_by, -1 from old_rows o
             where o.submitted_by is not null and o.status in ('pending', 'processing')) x
          group by 1, 2 having sum(x.d) <> 0) c;
  end if;
  if v_tenants is null then
    return null;
  end if;
  if cardinality(v_tenants) > 1 then
    perform 1 from supaqueue.user_active_jobs c
     where (c.tenant_id, c.user_id) in (select * from unnest(v_tenants, v_users))
     order by c.tenant_id, c.user_id for update of c;
  end if;
  update supaqueue.user_active_jobs c set active = greatest(c.active + d.d, 0)
    from unnest(v_tenants, v_users, v_deltas) d(tenant_id, user_id, d)
   where c.tenant_id = d.tenant_id and c.user_id = d.user_id;
  return null;
end
$$;

/** TRUNCATE of job_queue: no job is active any more. */
create function supaqueue.tg_job_queue__reset_user_active() returns trigger
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: as above.
begin
  update supaqueue.user_active_jobs c set active = 0 where c.active <> 0;
  return null;
end
$$;

create trigger job_queue_user_active_insert after insert on public.job_queue
  referencing new table as new_rows for each statement execute function supaqueue.tg_job_queue__count_user_active();
create trigger job_queue_user_active_update after update on public.job_queue
  referencing old table as old_rows new table as new_rows for each statement execute function supaqueue.tg_job_queue__count_user_active();
create trigger job_queue_user_active_delete after delete on public.job_queue
  referencing old table as old_rows for each statement execute function supaqueue.tg_job_queue__count_user_active();
create trigger job_queue_user_active_truncate after truncate on public.job_queue
  for each statement execute function supaqueue.tg_job_queue__reset_user_active();

-- ---------------------------------------------------------------------------------------------------
-- Managing tiers: service role and super admins only (caller null = service)
-- ---------------------------------------------------------------------------------------------------

/**
 * Locks (FOR UPDATE, in id order) the tenants whose users' limits a tier change can affect: the tenant
 * itself, or every tenant using the tier directly or through a member override. Waits for their
 * enqueues in flight (see reserve_user_slot), so a newly limited user's counter starts exact.
 */
create function supaqueue.lock_tenants_for_tier_change(tenant_id uuid, tier text) returns void
language plpgsql volatile set search_path = ''
as $$
begin
  perform 1 from public.tenants t
   where t.id = lock_tenants_for_tier_change.tenant_id
      or t.tier = lock_tenants_for_tier_change.tier
      or t.id in (select m.tenant_id from supaqueue.member_tiers m where m.tier = lock_tenants_for_tier_change.tier)
   order by t.id for update;
end
$$;

/**
 * Creates the tier, or changes the given limits of an existing one (keys: max_active_jobs_per_user,
 * max_payload_bytes, max_attempts, description; null removes a limit; keys left out keep their value).
 * Takes effect at once for every user on the tier. QJ001 for unknown keys and values the checks refuse.
 */
create function supaqueue.write_quota_tier(name text, limits jsonb) returns public.quota_tiers
language plpgsql volatile set search_path = ''
as $$
declare
  v_bad text;
  v_row public.quota_tiers;
begin
  if limits is null or jsonb_typeof(limits) <> 'object' then
    perform supaqueue.invalid('limits must be a JSON object, e.g. {"max_active_jobs_per_user": 5}');
  end if;
  select min(k) into v_bad from jsonb_object_keys(limits) k
   where k not in ('max_active_jobs_per_user', 'max_payload_bytes', 'max_attempts', 'description');
  if v_bad is not null then
    perform supaqueue.invalid('unknown tier field: ' || v_bad);
  end if;
  if limits ? 'max_active_jobs_per_user' then
    perform supaqueue.lock_tenants_for_tier_change(null, write_quota_tier.name);
  end if;
  begin
    insert into public.quota_tiers as q (name) values (write_quota_tier.name) on conflict on constraint quota_tiers_pkey do nothing;
    update public.quota_tiers q
       set max_active_jobs_per_user = case when limits ? 'max_active_jobs_per_user' then r.max_active_jobs_per_user else q.max_active_jobs_per_user end,
           max_payload_bytes = case when limits ? 'max_payload_bytes' then r.max_payload_bytes else q.max_payload_bytes end,
           max_attempts = case when limits ? 'max_attempts' then r.max_attempts else q.max_attempts end,
           description = case when limits ? 'description' then r.description else q.description end,
           updated_at = now()
      from jsonb_populate_record(null::public.quota_tiers, limits) r
     where q.name = write_quota_tier.name
    returning q.* into v_row;
  exception when check_violation or not_null_violation or data_exception then
    perform supaqueue.invalid('invalid tier: ' || sqlerrm);
  end;
  return v_row;
end
$$;

/** Puts the tenant on a tier (null: none, no per-user limits). QJ001 for an unknown tier. */
create function supaqueue.write_tenant_tier(tenant_id uuid, tier text) returns public.tenants
language plpgsql volatile set search_path = ''
as $$
declare
  v_row public.tenants;
begin
  perform supaqueue.lock_tenants_for_tier_change(write_tenant_tier.tenant_id, null);
  begin
    update public.tenants t set tier = write_tenant_tier.tier where t.id = write_tenant_tier.tenant_id returning t.* into v_row;
  exception when foreign_key_violation then
    perform supaqueue.invalid('unknown tier: ' || write_tenant_tier.tier);
  end;
  return v_row;
end
$$;

/**
 * Gives a member a personal tier in the tenant (null: back to the tenant's). QJ001 for an unknown tier
 * or a user who is not a member. Returns the member's limits (user_limits).
 */
create function supaqueue.write_member_tier(tenant_id uuid, user_id uuid, tier text) returns jsonb
language plpgsql volatile set search_path = ''
as $$
begin
  if write_member_tier.user_id is null then
    perform supaqueue.invalid('user_id is required');
  end if;
  perform supaqueue.lock_tenants_for_tier_change(write_member_tier.tenant_id, null);
  if write_member_tier.tier is null then
    delete from supaqueue.member_tiers m where m.tenant_id = write_member_tier.tenant_id and m.user_id = write_member_tier.user_id;
  else
    begin
      insert into supaqueue.member_tiers as m (tenant_id, user_id, tier)
      values (write_member_tier.tenant_id, write_member_tier.user_id, write_member_tier.tier)
      on conflict on constraint member_tiers_pkey do update set tier = excluded.tier, created_at = now();
    exception when foreign_key_violation then
      perform supaqueue.invalid('unknown tier, or the user is not a member of the tenant');
    end;
  end if;
  return supaqueue.user_limits(write_member_tier.tenant_id, write_member_tier.user_id);
end
$$;

/** Runs one tier action for caller (null = service). Operators only: QJ010, QJ002 for other tenants. */
create function supaqueue.tier_admin_run(action text, args jsonb, caller uuid) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_tenant uuid := (args ->> 'tenant_id')::uuid;
begin
  case action
    when 'set_quota_tier' then
      perform supaqueue.check_operator(caller);
      return to_jsonb(supaqueue.write_quota_tier(args ->> 'name', args -> 'limits'));
    when 'set_tenant_tier' then
      perform supaqueue.check_tenant_admin(v_tenant, caller, 'operator');
      return to_jsonb(supaqueue.write_tenant_tier(v_tenant, args ->> 'tier'));
    when 'set_member_tier' then
      perform supaqueue.check_tenant_admin(v_tenant, caller, 'operator');
      return supaqueue.write_member_tier(v_tenant, (args ->> 'user_id')::uuid, args ->> 'tier');
    when 'my_limits' then
      perform supaqueue.check_tenant_admin(v_tenant, caller, 'member');
      return supaqueue.user_limits(v_tenant, caller);
    else perform supaqueue.invalid('unknown action');
  end case;
  return null;
end
$$;

/** Member path: the caller is auth.uid(), never an argument. */
create function supaqueue.tier_admin_as_member(action text, args jsonb) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: signed-in users cannot write quota_tiers, tenants or member_tiers, nor read the
-- private counters; tier_admin_run checks the caller's standing (super admin) before it writes, and
-- my_limits answers only about the caller.
declare
  v_user uuid := (select auth.uid());
begin
  if v_user is null then
    raise exception 'sign in required' using errcode = 'QJ008';
  end if;
  return supaqueue.tier_admin_run(action, args, v_user);
end
$$;

/** Routes to the member path (signed-in users) or the service path; anon gets QJ008. */
create function supaqueue.tier_admin(action text, args jsonb) returns jsonb
language plpgsql volatile set search_path = ''
as $$
begin
  if current_user = 'anon' then
    raise exception 'sign in required' using errcode = 'QJ008';
  elsif supaqueue.caller_kind() = 'user' then
    return supaqueue.tier_admin_as_member(action, args);
  elsif action = 'my_limits' then
    raise exception 'my_limits needs a signed-in user' using errcode = 'QJ008';
  end if;
  return supaqueue.tier_admin_run(action, args, null);
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Public API (security invoker)
-- ---------------------------------------------------------------------------------------------------

/**
 * Creates a tier or changes its limits: {"max_active_jobs_per_user": 5, "max_payload_bytes": 65536,
 * "max_attempts": 5, "description": "..."} (null removes a limit; keys left out keep their value).
 * Takes effect at once. Service role, super admins. Errors: QJ001, QJ008, QJ010.
 */
create function public.set_quota_tier(name text, limits jsonb default '{}'::jsonb) returns public.quota_tiers
language sql volatile set search_path = ''
as $$
  select * from jsonb_populate_record(null::public.quota_tiers, supaqueue.tier_admin('set_quota_tier',
    jsonb_build_object('name', set_quota_tier.name, 'limits', set_quota_tier.limits)))
$$;

/** Puts a tenant on a tier (null: none). Service role, super admins. Errors: QJ001, QJ002, QJ008, QJ010. */
create function public.set_tenant_tier(tenant_id uuid, tier text) returns public.tenants
language sql volatile set search_path = ''
as $$
  select * from jsonb_populate_record(null::public.tenants, supaqueue.tier_admin('set_tenant_tier',
    jsonb_build_object('tenant_id', set_tenant_tier.tenant_id, 'tier', set_tenant_tier.tier)))
$$;

/**
 * Gives a member a personal tier in a tenant (null: the tenant's again); returns their limits as
 * my_limits does. Service role, super admins. Errors: QJ001, QJ002, QJ008, QJ010.
 */
create function public.set_member_tier(tenant_id uuid, user_id uuid, tier text) returns jsonb
language sql volatile set search_path = ''
as $$
  select supaqueue.tier_admin('set_member_tier',
    jsonb_build_object('tenant_id', set_member_tier.tenant_id, 'user_id', set_member_tier.user_id, 'tier', set_member_tier.tier))
$$;

/**
 * The signed-in user's limits in the tenant and current usage: {tenant_id, user_id, tier, tier_source,
 * max_active_jobs_per_user, max_payload_bytes, max_attempts, active_jobs} (null limit = none).
 * Members of the tenant and super admins. Errors: QJ001, QJ002, QJ008.
 */
create function public.my_limits(tenant_id uuid) returns jsonb
language sql volatile set search_path = ''
as $$
  select supaqueue.tier_admin('my_limits', jsonb_build_object('tenant_id', my_limits.tenant_id))
$$;

-- ---------------------------------------------------------------------------------------------------
-- Grants
-- ---------------------------------------------------------------------------------------------------

revoke all on function supaqueue.effective_tier(uuid, uuid), supaqueue.user_limits(uuid, uuid),
  supaqueue.reserve_user_slot(uuid, uuid, integer), supaqueue.reserve_user_slots(supaqueue.job_spec[]),
  supaqueue.tg_job_queue__count_user_active(), supaqueue.tg_job_queue__reset_user_active(),
  supaqueue.lock_tenants_for_tier_change(uuid, text), supaqueue.write_quota_tier(text, jsonb),
  supaqueue.write_tenant_tier(uuid, text), supaqueue.write_member_tier(uuid, uuid, text),
  supaqueue.tier_admin_run(text, jsonb, uuid), supaqueue.tier_admin_as_member(text, jsonb), supaqueue.tier_admin(text, jsonb)
  from public, anon, authenticated;
grant execute on function supaqueue.effective_tier(uuid, uuid), supaqueue.user_limits(uuid, uuid),
  supaqueue.reserve_user_slot(uuid, uuid, integer), supaqueue.reserve_user_slots(supaqueue.job_spec[]),
  supaqueue.lock_tenants_for_tier_change(uuid, text), supaqueue.write_quota_tier(text, jsonb),
  supaqueue.write_tenant_tier(uuid, text), supaqueue.write_member_tier(uuid, uuid, text),
  supaqueue.tier_admin_run(text, jsonb, uuid), supaqueue.tier_admin(text, jsonb)
  to service_role;
revoke all on function supaqueue.tier_admin_as_member(text, jsonb) from service_role;
grant execute on function supaqueue.tier_admin(text, jsonb), supaqueue.tier_admin_as_member(text, jsonb) to authenticated;
revoke all on function public.set_quota_tier(text, jsonb), public.set_tenant_tier(uuid, text),
  public.set_member_tier(uuid, uuid, text), public.my_limits(uuid) from public, anon;
grant execute on function public.set_quota_tier(text, jsonb), public.set_tenant_tier(uuid, text),
  public.set_member_tier(uuid, uuid, text), public.my_limits(uuid) to authenticated, service_role;
