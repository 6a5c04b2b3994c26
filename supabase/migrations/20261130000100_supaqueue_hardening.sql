-- supaqueue 0007: hardening (issue 16). Limits and rules that keep one tenant's users from hurting
-- other tenants, forging attribution or reading the queue's internals.
--
--   * Queued quota on every path that makes a job pending (retry too), with the enqueue's per-tenant
--     lock; work a tenant's users cause (their enqueues and retries, schedule fires, run-now) counts
--     against tenants.max_queued_jobs, or the default ceiling supaqueue.default_max_queued_jobs()
--     when the tenant has none. Direct service-role enqueues and retries obey max_queued_jobs only.
--   * Priority: what a tenant's users choose (enqueue, schedules) is capped at
--     tenants.max_user_priority (default 0; null = no cap), set by the service role or super admins.
--     Only service-role enqueues pick any priority, so a tenant cannot jump ahead of the others.
--   * Schedules: at most tenants.max_schedules per tenant (default 100, QJ006); each scheduler batch
--     takes due schedules round-robin across tenants.
--   * Listing: one policy shape `tenant_id = any (array(select supaqueue.visible_tenant_ids()))`, so
--     reads walk only the tenant index ranges the caller may see (super admins: every tenant).
--   * JSON nesting: payloads, results, progress and schedule payloads at most
--     supaqueue.max_json_depth() levels deep (QJ001); a too-deep result fails the attempt instead.
--   * Attribution: user enqueues carry actor_id = auth.uid() (another value: QJ010) and a backoff of
--     at least supaqueue.min_user_backoff_ms(); trace_id and request_id stay caller-supplied
--     correlation ids, never identity.
--   * Members read job_queue without fair_key, lease_id and locked_until (column privileges).
--   * Bounded user calls: payload bytes per user enqueue call; rate-limit rows are purged.
--   * A missing schedule has its own code (the engine's table, continued):
--   QJ011 SCHEDULE_NOT_FOUND    no such schedule, or not visible to the caller (same answer: no leak)

-- ---------------------------------------------------------------------------------------------------
-- Limits: each written once, here
-- ---------------------------------------------------------------------------------------------------

alter table public.tenants
  -- Highest priority the tenant's users may give their jobs (enqueue, schedules); higher is lowered to
  -- it. null = no cap. Service-role enqueues are not capped.
  add column max_user_priority smallint default 0,
  -- Most schedules the tenant may have; null = unlimited.
  add column max_schedules integer default 100,
  add constraint max_user_priority_in_range check (max_user_priority between -100 and 100),
  add constraint max_schedules_positive check (max_schedules is null or max_schedules > 0);

/** Deepest nesting of stored JSON: a scalar is 0, {} and [] are 1, {"a":[1]} is 2. Mirrored in TS. */
create function supaqueue.max_json_depth() returns integer
language sql immutable parallel safe set search_path = ''
as $$ select 32 $$;

/**
 * The job type format (job_queue.type, job_schedules.job_type, every enqueue and schedule check). The
 * one home of the rule in SQL; supabase/functions/_supaqueue/contract.ts mirrors it (a test compares them).
 */
create function supaqueue.job_type_pattern() returns text
language sql immutable parallel safe set search_path = ''
as $$ select '^[a-z][a-z0-9_.:-]{0,127}$' $$;

/** Most attempts a job may have: max_attempts is 1..this on jobs, specs, schedules and retries. Mirrored in TS. */
create function supaqueue.max_attempts_limit() returns integer
language sql immutable parallel safe set search_path = ''
as $$ select 1000 $$;

-- The tables' checks read the rule from the functions above (same constraint names as before).
alter table public.job_queue
  drop constraint job_type_format,
  add constraint job_type_format check (type ~ supaqueue.job_type_pattern()) not valid,
  drop constraint max_attempts_in_range,
  add constraint max_attempts_in_range check (max_attempts between 1 and supaqueue.max_attempts_limit()) not valid;
alter table public.job_queue validate constraint job_type_format;
alter table public.job_queue validate constraint max_attempts_in_range;
alter table public.job_schedules
  drop constraint job_schedule_job_type_format,
  add constraint job_schedule_job_type_format check (job_type ~ supaqueue.job_type_pattern()) not valid,
  drop constraint job_schedule_max_attempts_in_range,
  add constraint job_schedule_max_attempts_in_range check (max_attempts between 1 and supaqueue.max_attempts_limit()) not valid;
alter table public.job_schedules validate constraint job_schedule_job_type_format;
alter table public.job_schedules validate constraint job_schedule_max_attempts_in_range;

/**
 * The engine's spec parser (engine migration), with the job type format and the max_attempts bound read
 * from job_type_pattern() and max_attempts_limit(). Raises QJ001 (first problem, in input order) or QJ007.
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
             where k not in ('tenant_id', 'type', 'payload', 'priority', 'run_at', 'delay_ms', 'max_attempts',
                             'idempotency_key', 'trace_id', 'actor_id', 'request_id', 'backoff_base_ms', 'backoff_max_ms')
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
             octet_length(coalesce(x.payload, '{}'::jsonb)::text)
           )::supaqueue.job_spec order by s.n)
      into v_specs
    from jsonb_array_elements(jobs) with ordinality s(j, n)
    cross join lateral jsonb_to_record(s.j) as x(tenant_id uuid, type text, payload jsonb, priority integer,
      run_at timestamptz, delay_ms bigint, max_attempts integer, idempotency_key text, trace_id text,
      actor_id text, request_id text, backoff_base_ms integer, backoff_max_ms integer);
  exception when data_exception then
    -- 22P02 bad uuid/number, 22007/22008 bad timestamp, 22003 out of range, 22023 ...: one code for all.
    perform supaqueue.invalid('malformed job field: ' || sqlerrm);
  end;

  -- The first invalid spec in input order; the CASE runs once per spec.
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

/** Queued-job ceiling for tenant-driven work when the tenant has no max_queued_jobs. */
create function supaqueue.default_max_queued_jobs() returns integer
language sql immutable parallel safe set search_path = ''
as $$ select 10000 $$;

/** Most payload bytes one user enqueue call may carry (all its jobs together). */
create function supaqueue.max_user_call_payload_bytes() returns integer
language sql immutable parallel safe set search_path = ''
as $$ select 1048576 $$;

/** Smallest backoff_base_ms a user may set (the default base): no hot retry loops on shared workers. */
create function supaqueue.min_user_backoff_ms() returns integer
language sql immutable parallel safe set search_path = ''
as $$ select 1000 $$;

/**
 * The jsonpath that finds a container at level max_json_depth() (the root is level 0), i.e. a value
 * nested deeper than the limit. One walk that never descends below that level, so a 12,000-level value
 * costs as much as a 32-level one. Batch paths read it once into a variable and call
 * jsonb_path_exists per row (a SQL function with `set search_path` is never inlined: calling
 * json_too_deep per row costs about 5 us, the bare jsonb_path_exists well under 1 us on a small payload).
 */
create function supaqueue.json_depth_path() returns jsonpath
language sql immutable parallel safe set search_path = ''
as $$ select ('strict $.**{' || supaqueue.max_json_depth()::text || '} ? (@.type() == "object" || @.type() == "array")')::jsonpath $$;

/** True when the value nests deeper than max_json_depth(); null is not too deep. */
create function supaqueue.json_too_deep(value jsonb) returns boolean
language sql immutable parallel safe set search_path = ''
as $$ select coalesce(jsonb_path_exists(value, supaqueue.json_depth_path()), false) $$;

/** Raises QJ001 when `what` (e.g. 'payload') nests deeper than max_json_depth(). */
create function supaqueue.check_json_depth(value jsonb, what text) returns void
language plpgsql immutable set search_path = ''
as $$
begin
  if supaqueue.json_too_deep(value) then
    perform supaqueue.invalid(format('%s is nested deeper than %s levels', what, supaqueue.max_json_depth()));
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Queued quota: one lock and one count for every path that makes jobs pending
-- ---------------------------------------------------------------------------------------------------

/**
 * The tenant's queued-job quota for a path: max_queued_jobs, or for tenant-driven work (users'
 * enqueues and retries, schedules) the default ceiling when it has none. null = no quota.
 */
create function supaqueue.queue_quota(tenant_id uuid, tenant_driven boolean) returns integer
language sql stable set search_path = ''
as $$
  select case when tenant_driven then coalesce(t.max_queued_jobs, supaqueue.default_max_queued_jobs())
              else t.max_queued_jobs end
  from public.tenants t where t.id = queue_quota.tenant_id
$$;

/**
 * Serialises the tenant's quota-checked changes until the transaction ends; the count taken after it
 * (a fresh snapshot) is then exact. Take it before locking job rows (enqueue and retry do).
 */
create function supaqueue.lock_queue_quota(tenant_id uuid) returns void
language sql volatile set search_path = ''
as $$ select pg_advisory_xact_lock(hashtext('supaqueue.quota'), hashtext(lock_queue_quota.tenant_id::text)) $$;

/** QJ006 unless `adding` more pending jobs fit the quota (null = no quota). Call under lock_queue_quota. */
create function supaqueue.check_queue_room(tenant_id uuid, quota integer, adding bigint) returns void
language plpgsql stable set search_path = ''
as $$
begin
  if quota is not null and adding > 0 and (select count(*) from (select 1 from public.job_queue j
        where j.tenant_id = check_queue_room.tenant_id and j.status in ('pending', 'processing')
        limit quota) q) + adding > quota then
    raise exception 'tenant has reached its limit of % queued jobs', quota
      using errcode = 'QJ006', detail = check_queue_room.tenant_id::text;
  end if;
end
$$;

/**
 * Inserts parsed job specs (see the engine migration): quota per tenant (tenant_driven: see
 * queue_quota), JSON depth, fair tags, idempotency. Returns (job_id, created) per spec, in input order.
 * Errors: QJ001, QJ002, QJ006.
 */
create function supaqueue.insert_job_specs(specs supaqueue.job_spec[], tenant_driven boolean)
returns table (job_id uuid, created boolean)
language plpgsql volatile set search_path = ''
as $$
declare
  v_specs supaqueue.job_spec[] := specs;
  v_tenant record;
  v_new bigint;
  v_inserted uuid[];
  v_depth_path constant jsonpath := supaqueue.json_depth_path();
begin
  if coalesce(cardinality(v_specs), 0) = 0 then return; end if;
  if exists (select 1 from unnest(v_specs) s where not exists (select 1 from public.tenants t where t.id = s.tenant_id)) then
    raise exception 'tenant not found' using errcode = 'QJ002';
  end if;
  perform supaqueue.check_json_depth(s.payload, 'payload') from unnest(v_specs) s where jsonb_path_exists(s.payload, v_depth_path);
  -- Per tenant with a quota, in tenant order: lock, then count what this call really adds (a repeat of
  -- an existing idempotency key adds nothing) against the active jobs.
  for v_tenant in
    select q.id, q.quota
    from (select d.id, supaqueue.queue_quota(d.id, tenant_driven) as quota
          from (select distinct s.tenant_id as id from unnest(v_specs) s) d) q
    where q.quota is not null order by q.id
  loop
    perform supaqueue.lock_queue_quota(v_tenant.id);
    select count(distinct s.idempotency_key) + count(*) filter (where s.idempotency_key is null) into v_new
    from unnest(v_specs) s
    where s.tenant_id = v_tenant.id
      and not exists (select 1 from public.job_queue j where j.tenant_id = s.tenant_id and j.idempotency_key = s.idempotency_key);
    perform supaqueue.check_queue_room(v_tenant.id, v_tenant.quota, v_new);
  end loop;

  with bases as materialized (
    -- fair_base once per (tenant, priority); MATERIALIZED keeps it out of the window (engine migration).
    select d.tenant_id, d.priority, supaqueue.fair_base(d.tenant_id, d.priority::smallint) as base
    from (select distinct s2.tenant_id, s2.priority from unnest(v_specs) s2 where s2.scheduled_at <= now()) d
  ),
  ready as (
    select s.n, g.base + row_number() over (partition by s.tenant_id, s.priority order by s.n) - 1 as fair_key
    from unnest(v_specs) s
    join bases g on g.tenant_id = s.tenant_id and g.priority = s.priority
    where s.scheduled_at <= now()
  ),
  ins as (
    insert into public.job_queue (id, tenant_id, type, payload, priority, scheduled_at, fair_key, max_attempts,
                                  idempotency_key, trace_id, actor_id, request_id, backoff_base_ms, backoff_max_ms)
    select s.id, s.tenant_id, s.type, s.payload, s.priority, greatest(s.scheduled_at, now()), r.fair_key, s.max_attempts,
           s.idempotency_key, s.trace_id, s.actor_id, s.request_id, s.backoff_base_ms, s.backoff_max_ms
    from unnest(v_specs) s left join ready r on r.n = s.n
    order by s.n
    on conflict (tenant_id, idempotency_key) where idempotency_key is not null do nothing
    returning id
  )
  select coalesce(array_agg(ins.id), '{}') into v_inserted from ins;

  return query
  select coalesce(j.id, s.id), i.id is not null
  from unnest(v_specs) s
  left join unnest(v_inserted) i(id) on i.id = s.id
  left join public.job_queue j
    on i.id is null and j.tenant_id = s.tenant_id and j.idempotency_key = s.idempotency_key
  order by s.n;
end
$$;
revoke all on function supaqueue.insert_job_specs(supaqueue.job_spec[], boolean) from public, anon, authenticated;
grant execute on function supaqueue.insert_job_specs(supaqueue.job_spec[], boolean) to service_role;

/** The service path's insert (no default ceiling); kept for its callers. */
create or replace function supaqueue.insert_job_specs(specs supaqueue.job_spec[]) returns table (job_id uuid, created boolean)
language sql volatile set search_path = ''
as $$ select * from supaqueue.insert_job_specs(insert_job_specs.specs, false) $$;

/**
 * The rules of a user's enqueue, applied to parsed specs: actor_id is the caller (another value:
 * QJ010), backoff_base_ms at least min_user_backoff_ms() (QJ001), all payloads together at most
 * max_user_call_payload_bytes() (QJ007), priority lowered to the tenant's max_user_priority.
 * trace_id and request_id are kept: correlation ids the caller chooses, never identity.
 */
create function supaqueue.apply_user_rules(specs supaqueue.job_spec[], user_id uuid) returns supaqueue.job_spec[]
language plpgsql stable set search_path = ''
as $$
declare
  v_specs supaqueue.job_spec[];
begin
  if exists (select 1 from unnest(specs) s where s.actor_id is distinct from apply_user_rules.user_id::text and s.actor_id is not null) then
    raise exception 'actor_id is set by the engine to the signed-in user' using errcode = 'QJ010';
  end if;
  if exists (select 1 from unnest(specs) s where s.backoff_base_ms < supaqueue.min_user_backoff_ms()) then
    perform supaqueue.invalid(format('backoff_base_ms must be at least %s', supaqueue.min_user_backoff_ms()));
  end if;
  if (select sum(s.payload_bytes) from unnest(specs) s) > supaqueue.max_user_call_payload_bytes() then
    raise exception 'the payloads of one call are larger than % bytes together', supaqueue.max_user_call_payload_bytes()
      using errcode = 'QJ007';
  end if;
  select array_agg(jsonb_populate_record(s, jsonb_build_object(
           'priority', least(s.priority, t.max_user_priority), 'actor_id', apply_user_rules.user_id)) order by s.n)
    into v_specs
  from unnest(specs) s join public.tenants t on t.id = s.tenant_id;
  return coalesce(v_specs, '{}');
end
$$;
revoke all on function supaqueue.apply_user_rules(supaqueue.job_spec[], uuid) from public, anon, authenticated;
grant execute on function supaqueue.apply_user_rules(supaqueue.job_spec[], uuid) to service_role;

/** Member path of enqueue: membership, then the user rules, then the tenant-driven insert. */
create or replace function supaqueue.insert_jobs_as_member(jobs jsonb) returns table (job_id uuid, created boolean)
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: signed-in users have no INSERT grant on job_queue (by design); this checks
-- membership for auth.uid() itself before inserting as the owner.
declare
  v_user uuid := (select auth.uid());
  v_specs supaqueue.job_spec[];
begin
  if v_user is null then
    raise exception 'sign in required' using errcode = 'QJ008';
  end if;
  -- Parse first, so malformed input gets QJ001 (as on the service path), not QJ002.
  v_specs := supaqueue.parse_job_specs(jobs);
  if exists (select 1 from unnest(v_specs) s
             where not exists (select 1 from public.tenant_members m where m.user_id = v_user and m.tenant_id = s.tenant_id)) then
    -- Same answer for "no such tenant" and "not your tenant": tenant ids do not leak.
    raise exception 'tenant not found' using errcode = 'QJ002';
  end if;
  return query select * from supaqueue.insert_job_specs(supaqueue.apply_user_rules(v_specs, v_user), true);
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Retry counts against the quota; the member path never returns scheduling internals
-- ---------------------------------------------------------------------------------------------------

/**
 * The retry rule (engine migration) plus the queued quota: a retried job is pending again, so it
 * needs room like an enqueue (QJ006), under the same per-tenant lock, taken before the job's row lock.
 * A user's retry is tenant-driven (default ceiling); user_id null = service caller.
 */
create or replace function supaqueue.retry_job(job_id uuid, extra_attempts integer, user_id uuid) returns setof public.job_queue
language plpgsql volatile set search_path = ''
as $$
declare
  v_job public.job_queue;
  v_tenant uuid;
  v_quota integer;
begin
  -- Arguments first: a bad call gets QJ001 whether or not the job exists.
  if extra_attempts is null or extra_attempts not between 0 and 100 then
    perform supaqueue.invalid('extra_attempts must be between 0 and 100');
  end if;
  select j.tenant_id into v_tenant from public.job_queue j where j.id = retry_job.job_id;
  v_quota := supaqueue.queue_quota(v_tenant, retry_job.user_id is not null);
  if v_quota is not null then
    perform supaqueue.lock_queue_quota(v_tenant);
  end if;
  v_job := supaqueue.lock_job_for_caller(job_id, user_id);
  if v_job.status not in ('failed', 'cancelled') then
    raise exception 'only failed or cancelled jobs can be retried (job is %)', v_job.status using errcode = 'QJ004';
  end if;
  if v_job.attempts >= v_job.max_attempts + extra_attempts then
    raise exception 'job has used all % attempts; pass extra_attempts to grant more', v_job.max_attempts
      using errcode = 'QJ005';
  end if;
  if v_job.max_attempts + extra_attempts > supaqueue.max_attempts_limit() then
    perform supaqueue.invalid(format('max_attempts cannot exceed %s', supaqueue.max_attempts_limit()));
  end if;
  perform supaqueue.check_queue_room(v_job.tenant_id, v_quota, 1);
  perform pg_notify('supaqueue_jobs', '');
  return query
  update public.job_queue j
     set status = 'pending', max_attempts = j.max_attempts + extra_attempts, scheduled_at = now(),
         fair_key = null, completed_at = null, result = null, progress = null, worker_id = null,
         started_at = null, updated_at = now()
   where j.id = v_job.id
  returning j.*;
end
$$;

/** Member path of retry/cancel; the rows come back without fair_key, lease_id and locked_until. */
create or replace function supaqueue.act_on_job_as_member(action text, job_id uuid, extra_attempts integer default 0)
returns setof public.job_queue
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: signed-in users have no UPDATE grant on job_queue; the caller is always
-- auth.uid() (never a parameter), and lock_job_for_caller checks membership or super admin.
declare
  v_user uuid := (select auth.uid());
  -- The columns members may not read (see the grants below).
  v_hidden constant jsonb := '{"fair_key": null, "lease_id": null, "locked_until": null}';
begin
  if v_user is null then
    raise exception 'sign in required' using errcode = 'QJ008';
  end if;
  if action = 'retry' then
    return query select h.* from supaqueue.retry_job(job_id, extra_attempts, v_user) r
                 cross join lateral jsonb_populate_record(r, v_hidden) h;
  elsif action = 'cancel' then
    return query select h.* from supaqueue.cancel_job(job_id, v_user) r
                 cross join lateral jsonb_populate_record(r, v_hidden) h;
  else
    perform supaqueue.invalid('unknown action');
  end if;
end
$$;

-- Members read their jobs without the scheduling internals: fair_key (the global ready line's
-- position), lease_id (the settle fence) and locked_until. Column privileges: `select *` as a signed-in
-- user is refused (42501); name the columns. worker_id stays readable.
revoke select on public.job_queue from authenticated;
grant select (id, tenant_id, type, status, payload, result, priority, attempts, max_attempts, scheduled_at,
              backoff_base_ms, backoff_max_ms, worker_id, cancel_requested_at, started_at, completed_at,
              created_at, updated_at, last_error, errors, progress, idempotency_key, trace_id, actor_id,
              request_id)
  on public.job_queue to authenticated;

-- ---------------------------------------------------------------------------------------------------
-- JSON depth on the worker side: results and progress
-- ---------------------------------------------------------------------------------------------------

/**
 * Completes jobs, storing results[i] as the result of ids[i]; returns the ids actually completed.
 * A result nested deeper than max_json_depth() is not stored: that attempt fails permanently instead
 * (status failed, or cancelled when cancellation was requested), with the reason in last_error and
 * errors, so the job is neither lost nor run again behind the user's back (retry_job can).
 */
create or replace function public.complete_jobs(ids uuid[], lease_ids uuid[], results jsonb[] default null)
returns table (id uuid)
language plpgsql volatile set search_path = ''
set enable_seqscan = off  -- one primary-key probe per input row, even on stale statistics (engine migration)
as $$
declare
  v_ids uuid[];
  v_tenants uuid[];
  v_error constant text := format('result is nested deeper than %s levels; not stored', supaqueue.max_json_depth());
  v_depth_path constant jsonpath := supaqueue.json_depth_path();
begin
  perform supaqueue.check_same_length(cardinality(ids), cardinality(lease_ids), cardinality(results));
  if exists (select 1 from unnest(results) r where octet_length(r::text) > 1048576) then
    raise exception 'result is larger than 1 MiB' using errcode = 'QJ007';
  end if;
  with input as (
    select t.id, t.lease_id, t.result, coalesce(jsonb_path_exists(t.result, v_depth_path), false) as too_deep
    from unnest(complete_jobs.ids, complete_jobs.lease_ids, complete_jobs.results) as t(id, lease_id, result)
  ),
  done as (
    update public.job_queue j
       set status = case when i.too_deep
                         then supaqueue.next_status_after_failure(j.cancel_requested_at is not null, false, j.attempts, j.max_attempts)
                         else 'completed' end,
           result = case when i.too_deep then null else i.result end,
           last_error = case when i.too_deep then v_error else j.last_error end,
           errors = case when i.too_deep then supaqueue.append_error(j.errors, jsonb_build_object(
             'attempt', j.attempts, 'at', now(), 'error', v_error, 'worker_id', j.worker_id, 'retryable', false)) else j.errors end,
           completed_at = now(), updated_at = now(),
           lease_id = null, locked_until = null, cancel_requested_at = null, fair_key = null
      from input i
     where j.id = i.id and j.lease_id = i.lease_id
    returning j.id, j.tenant_id, j.status
  )
  select array_agg(d.id) filter (where d.status = 'completed'), array_agg(d.tenant_id) into v_ids, v_tenants from done d;
  perform supaqueue.release_running(v_tenants);
  return query select unnest(coalesce(v_ids, '{}'));
end
$$;

/** Records progress ({percent 0..100, message}) on a job the caller holds; false when the lease is stale. */
create or replace function public.set_job_progress(id uuid, lease_id uuid, progress jsonb) returns boolean
language plpgsql volatile set search_path = ''
as $$
declare
  v_found boolean;
begin
  if progress is null or jsonb_typeof(progress) <> 'object' or octet_length(progress::text) > 4096
     or (progress ? 'percent' and (jsonb_typeof(progress -> 'percent') <> 'number'
                                  or (progress ->> 'percent')::numeric not between 0 and 100)) then
    perform supaqueue.invalid('progress must be a JSON object under 4 KiB; percent a number 0..100');
  end if;
  perform supaqueue.check_json_depth(progress, 'progress');
  update public.job_queue j set progress = set_job_progress.progress, updated_at = now()
   where j.id = set_job_progress.id and j.lease_id = set_job_progress.lease_id;
  get diagnostics v_found = row_count;
  return v_found;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Schedules: JSON depth, a per-tenant cap, tenant-driven jobs, round-robin due selection
-- ---------------------------------------------------------------------------------------------------

/** The schedule spec check of the schedules migration, plus the payload's JSON depth (QJ001). */
create or replace function supaqueue.check_schedule_spec(spec jsonb, for_create boolean) returns void
language plpgsql stable set search_path = ''
as $$
declare
  v_allowed text[] := array['name', 'cron', 'time_zone', 'job_type', 'payload', 'priority', 'max_attempts', 'enabled', 'next_run_at'];
  v_bad text;
  v_row public.job_schedules;
begin
  if spec is null or jsonb_typeof(spec) <> 'object' then
    perform supaqueue.invalid('the schedule must be a JSON object');
  end if;
  if for_create then v_allowed := array_append(v_allowed, 'tenant_id'); end if;
  select min(k) into v_bad from jsonb_object_keys(spec) k where k <> all (v_allowed);
  if v_bad is not null then perform supaqueue.invalid('unknown field: ' || v_bad); end if;
  select min(k) into v_bad from jsonb_each(spec) e(k, v)
   where jsonb_typeof(e.v) = 'null' and k not in ('next_run_at');
  if v_bad is not null then perform supaqueue.invalid(v_bad || ' must not be null'); end if;
  if for_create then
    select min(k) into v_bad from unnest(array['tenant_id', 'name', 'cron', 'job_type']) k where not spec ? k;
    if v_bad is not null then perform supaqueue.invalid(v_bad || ' is required'); end if;
  end if;
  begin
    v_row := jsonb_populate_record(null::public.job_schedules, spec);
  exception when data_exception then
    perform supaqueue.invalid('malformed schedule field: ' || sqlerrm);
  end;
  if spec ? 'payload' and octet_length(v_row.payload::text) > 262144 then
    raise exception 'payload is larger than 256 KiB' using errcode = 'QJ007';
  end if;
  perform supaqueue.check_json_depth(v_row.payload, 'payload');
  select case
    when spec ? 'name' and char_length(v_row.name) not between 1 and 200 then 'name must be 1-200 characters'
    when spec ? 'cron' and (char_length(v_row.cron) > 200 or v_row.cron !~ '^(@(yearly|annually|monthly|weekly|daily|hourly)|[0-9A-Za-z*/,?#-]+( [0-9A-Za-z*/,?#-]+){4})$')
      then 'cron must be five fields (minute hour day-of-month month day-of-week) separated by single spaces, or @hourly/@daily/@weekly/@monthly/@yearly'
    when spec ? 'job_type' and v_row.job_type !~ supaqueue.job_type_pattern() then 'job_type must match ' || supaqueue.job_type_pattern()
    when spec ? 'payload' and jsonb_typeof(v_row.payload) not in ('object', 'array') then 'payload must be a JSON object or array'
    when spec ? 'priority' and v_row.priority not between -100 and 100 then 'priority must be between -100 and 100'
    when spec ? 'max_attempts' and v_row.max_attempts not between 1 and supaqueue.max_attempts_limit()
      then 'max_attempts must be between 1 and ' || supaqueue.max_attempts_limit()
    when spec ? 'time_zone' and char_length(v_row.time_zone) not between 1 and 64 then 'time_zone must be an IANA time zone name'
  end into v_bad;
  if v_bad is not null then perform supaqueue.invalid(v_bad); end if;
end
$$;

/**
 * Creates a schedule (schedules migration) within the tenant's max_schedules (QJ006 when full, for
 * every caller: the cap keeps the scheduler's passes short for all tenants). Creates of one tenant are
 * serialised by an advisory lock, so the count is exact.
 */
create or replace function supaqueue.create_schedule(spec jsonb, user_id uuid) returns public.job_schedules
language plpgsql volatile set search_path = ''
as $$
declare
  v_new public.job_schedules;
  v_max integer;
begin
  perform supaqueue.check_schedule_spec(spec, true);
  v_new := jsonb_populate_record(null::public.job_schedules, spec);
  perform supaqueue.check_schedule_access(v_new.tenant_id, user_id, true);
  perform pg_advisory_xact_lock(hashtext('supaqueue.schedules'), hashtext(v_new.tenant_id::text));
  select t.max_schedules into v_max from public.tenants t where t.id = v_new.tenant_id;
  if v_max is not null and (select count(*) from public.job_schedules s where s.tenant_id = v_new.tenant_id) >= v_max then
    raise exception 'tenant has reached its limit of % schedules', v_max using errcode = 'QJ006', detail = v_new.tenant_id::text;
  end if;
  begin
    insert into public.job_schedules (tenant_id, name, cron, time_zone, job_type, payload, priority, max_attempts, enabled, next_run_at)
    values (v_new.tenant_id, v_new.name, v_new.cron, coalesce(v_new.time_zone, 'UTC'), v_new.job_type,
            coalesce(v_new.payload, '{}'::jsonb), coalesce(v_new.priority, 0), coalesce(v_new.max_attempts, 3),
            coalesce(v_new.enabled, true), v_new.next_run_at)
    returning * into v_new;
  exception when unique_violation then
    raise exception 'the tenant already has a schedule with this name' using errcode = 'QJ004';
  end;
  return v_new;
end
$$;

/**
 * The job spec a schedule enqueues: its job, attributed to the schedule, at its priority lowered to
 * the tenant's max_user_priority (a schedule is the tenant's choice, whoever wrote it).
 */
create function supaqueue.schedule_job_spec(schedule public.job_schedules) returns jsonb
language sql stable set search_path = ''
as $$
  select jsonb_build_object(
    'tenant_id', schedule.tenant_id, 'type', schedule.job_type, 'payload', schedule.payload,
    'priority', least(schedule.priority, t.max_user_priority), 'max_attempts', schedule.max_attempts,
    'actor_id', 'schedule:' || schedule.id)
  from public.tenants t where t.id = schedule.tenant_id
$$;
revoke all on function supaqueue.schedule_job_spec(public.job_schedules) from public, anon, authenticated;
grant execute on function supaqueue.schedule_job_spec(public.job_schedules) to service_role;

/** Enqueues one schedule's slot (tenant-driven: the default ceiling applies); returns the job id. */
create or replace function supaqueue.enqueue_schedule_slot(schedule public.job_schedules, slot timestamptz) returns uuid
language sql volatile set search_path = ''
as $$
  select i.job_id from supaqueue.insert_job_specs(supaqueue.parse_job_specs(jsonb_build_array(
    supaqueue.schedule_job_spec(schedule) || jsonb_build_object(
      'idempotency_key', 'schedule:' || schedule.id || ':' || to_char(slot at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))), true) i
$$;

/** Enqueues one job from the schedule now, outside its cron slots (tenant-driven, like a slot). */
create or replace function supaqueue.run_schedule_now(schedule_id uuid, user_id uuid) returns uuid
language plpgsql volatile set search_path = ''
as $$
declare
  v_row public.job_schedules := supaqueue.lock_schedule_for_caller(schedule_id, user_id);
  v_job uuid;
begin
  select i.job_id into v_job
  from supaqueue.insert_job_specs(supaqueue.parse_job_specs(jsonb_build_array(supaqueue.schedule_job_spec(v_row))), true) i;
  return v_job;
end
$$;

/**
 * Locks up to max_schedules due, enabled schedules, round-robin across tenants: every tenant's
 * oldest due schedule first, then every tenant's second, and so on (oldest first within a round). So
 * a tenant with hundreds of due schedules delays another tenant's by at most one schedule per batch.
 * SKIP LOCKED as before: an overlapping pass takes other rows; rows fired meanwhile drop out on the
 * re-check of their new version. The ranking reads every due schedule (at most max_schedules per
 * tenant). Meaningful only inside a transaction that then calls fire_schedules.
 */
create or replace function supaqueue.lock_due_schedules(max_schedules integer default 25) returns setof public.job_schedules
language plpgsql volatile set search_path = ''
as $$
begin
  if max_schedules is null or max_schedules not between 1 and 50 then
    perform supaqueue.invalid('max_schedules must be between 1 and 50');
  end if;
  return query
  with ranked as (
    select d.id, d.next_run_at, row_number() over (partition by d.tenant_id order by d.next_run_at, d.id) as round
    from public.job_schedules d
    where d.enabled and d.next_run_at <= now()
  )
  select s.* from public.job_schedules s
  join ranked r on r.id = s.id
  where s.enabled and s.next_run_at <= now()
  order by r.round, r.next_run_at, r.id
  limit max_schedules
  for update of s skip locked;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Row visibility: one tenant set per statement, so reads walk only the caller's index ranges
-- ---------------------------------------------------------------------------------------------------

/**
 * The tenants the signed-in user may read: their memberships, or every tenant for a super admin.
 * Policies compare tenant_id with this set as one array (`= any (array(select ...))`, evaluated once
 * per statement), which the planner turns into an index condition on the tenant indexes; the older
 * `... or (select is_super_admin())` could only be a filter, so a listing scanned other tenants' rows.
 */
create function supaqueue.visible_tenant_ids() returns setof uuid
language plpgsql stable security definer set search_path = ''
as $$
-- security definer: reads tenant_members, super_admins and tenants, which the caller cannot read in
-- full; answers only about the caller (auth.uid()).
begin
  if exists (select 1 from supaqueue.super_admins s where s.user_id = (select auth.uid())) then
    return query select t.id from public.tenants t;
  else
    return query select m.tenant_id from public.tenant_members m where m.user_id = (select auth.uid());
  end if;
end
$$;
revoke all on function supaqueue.visible_tenant_ids() from public, anon;
grant execute on function supaqueue.visible_tenant_ids() to authenticated, service_role;

drop policy tenants_select_member_or_super_admin on public.tenants;
create policy tenants_select_visible on public.tenants
  for select to authenticated
  using (id = any (array(select supaqueue.visible_tenant_ids())));

drop policy tenant_members_select_same_tenant_or_super_admin on public.tenant_members;
create policy tenant_members_select_visible on public.tenant_members
  for select to authenticated
  using (tenant_id = any (array(select supaqueue.visible_tenant_ids())));

drop policy job_queue_select_member_or_super_admin on public.job_queue;
create policy job_queue_select_visible on public.job_queue
  for select to authenticated
  using (tenant_id = any (array(select supaqueue.visible_tenant_ids())));

drop policy job_schedules_select_member_or_super_admin on public.job_schedules;
create policy job_schedules_select_visible on public.job_schedules
  for select to authenticated
  using (tenant_id = any (array(select supaqueue.visible_tenant_ids())));

-- ---------------------------------------------------------------------------------------------------
-- Rate-limit counters: purged as they expire
-- ---------------------------------------------------------------------------------------------------

create index rate_limits_window_start_idx on supaqueue.rate_limits (window_start);

/**
 * The edge API's rate limiter (api migration), unchanged for callers. When a hit starts a new window
 * for its key (at most once per key and window), it also deletes up to 100 keys whose window ended,
 * oldest first, through the window_start index: the table holds about the keys active in the last
 * window instead of every user ever seen. Keys sharing the table are assumed to share one window length.
 */
create or replace function supaqueue.rate_limit_hit(key text, max_hits integer, window_seconds integer)
returns table (allowed boolean, hits integer, retry_after_seconds integer)
language plpgsql volatile set search_path = ''
as $$
declare
  v_hits integer;
  v_start timestamptz;
begin
  insert into supaqueue.rate_limits as r (key, window_start, hits)
  values (rate_limit_hit.key, now(), 1)
  on conflict on constraint rate_limits_pkey do update
    set window_start = case when r.window_start + make_interval(secs => rate_limit_hit.window_seconds) <= now()
                            then now() else r.window_start end,
        hits = case when r.window_start + make_interval(secs => rate_limit_hit.window_seconds) <= now()
                    then 1 else least(r.hits + 1, rate_limit_hit.max_hits + 1) end
  returning r.hits, r.window_start into v_hits, v_start;
  if v_hits = 1 then
    delete from supaqueue.rate_limits r
     where r.key in (select o.key from supaqueue.rate_limits o
                      where o.window_start + make_interval(secs => rate_limit_hit.window_seconds) <= now()
                      order by o.window_start limit 100 for update skip locked);
  end if;
  return query select v_hits <= rate_limit_hit.max_hits, v_hits,
    case when v_hits <= rate_limit_hit.max_hits then 0
         else greatest(1, ceil(extract(epoch from v_start + make_interval(secs => rate_limit_hit.window_seconds) - now()))::integer)
    end;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Leases: one default for the engine and the worker
-- ---------------------------------------------------------------------------------------------------

/** The lease of a claim or heartbeat when the caller gives none; the worker's default (contract.ts) too. */
create function supaqueue.default_lease_seconds() returns double precision
language sql immutable parallel safe set search_path = ''
as $$ select 15::double precision $$;
revoke all on function supaqueue.default_lease_seconds() from public, anon, authenticated;
grant execute on function supaqueue.default_lease_seconds() to service_role;

/**
 * Claims up to batch_size ready jobs for worker_id and leases them for lease_seconds (default:
 * supaqueue.default_lease_seconds(), the worker's default too).
 *
 * Order: priority (higher first), then the fair tag, which serves tenants round-robin. Each claimed job
 * gets attempts + 1, started_at, and a fresh lease (lease_id, locked_until) that fences its settle
 * calls. First, housekeeping that makes work claimable: expired leases go back to pending (so a dead
 * worker's jobs run again at the next claim of any live worker, not at the next maintenance run), and
 * due delayed/retrying jobs join the ready line; one statement of index probes when there is nothing
 * to do. Then the claim itself: a single SKIP LOCKED statement unless some tenant has
 * a concurrency limit (claim_limited). A limited pick can leave part of the batch empty (jobs of a
 * tenant beyond its free slots), so it is repeated, at most 3 passes, to fill the batch from others.
 * service_role only. Errors: QJ001.
 */
create or replace function public.claim_jobs(
  worker_id text,
  types text[] default null,
  batch_size integer default 10,
  lease_seconds double precision default supaqueue.default_lease_seconds()
) returns setof public.job_queue
language plpgsql volatile set search_path = ''
-- The claim must walk the claim index in order and stop after batch_size rows, whatever the statistics
-- say. Right after a burst into an idle queue they still describe the empty table, and the planner
-- then prefers to scan and sort every pending row (measured: ~100 ms per claim at 20k pending, against
-- under 1 ms on the index); these make the index walk the only plan it will pick.
set enable_seqscan = off set enable_sort = off
as $$
declare
  v_expired boolean;
  v_due boolean;
  v_limits boolean;
  v_claimed integer := 0;
  v_n integer;
begin
  if claim_jobs.worker_id is null or char_length(claim_jobs.worker_id) not between 1 and 200 then
    perform supaqueue.invalid('worker_id must be 1-200 characters');
  end if;
  if claim_jobs.batch_size is null or claim_jobs.batch_size not between 1 and 1000 then
    perform supaqueue.invalid('batch_size must be between 1 and 1000');
  end if;
  if claim_jobs.lease_seconds is null or claim_jobs.lease_seconds not between 0.1 and 86400 then
    perform supaqueue.invalid('lease_seconds must be between 0.1 and 86400');
  end if;

  select exists (select 1 from public.job_queue j where j.status = 'processing' and j.locked_until < now()),
         exists (select 1 from public.job_queue j where j.status = 'pending' and j.fair_key is null and j.scheduled_at <= now()),
         exists (select 1 from supaqueue.tenant_limits l)
    into v_expired, v_due, v_limits;
  if v_expired then
    perform public.reclaim_expired_jobs(greatest(claim_jobs.batch_size * 4, 100));
    v_due := true;
  end if;
  if v_due then
    perform supaqueue.promote_due_jobs(greatest(claim_jobs.batch_size * 4, 100));
  end if;

  if not v_limits then
    -- No limits anywhere: one FOR UPDATE SKIP LOCKED pick of the first ready jobs in (priority desc,
    -- fair tag) order and one UPDATE that leases them; rows another claimer holds are skipped.
    return query
    with picked as materialized (
      select j.id
      from public.job_queue j
      where j.status = 'pending'
        and j.fair_key is not null
        and (claim_jobs.types is null or j.type = any (claim_jobs.types))
      order by j.priority desc, j.fair_key
      limit claim_jobs.batch_size
      for update of j skip locked
    )
    update public.job_queue j
       set status = 'processing',
           attempts = j.attempts + 1,
           worker_id = claim_jobs.worker_id,
           lease_id = gen_random_uuid(),
           locked_until = now() + make_interval(secs => claim_jobs.lease_seconds),
           started_at = now(),
           updated_at = now()
      from picked p
     where j.id = p.id
    returning j.*;
    return;
  end if;
  for pass in 1..3 loop
    return query select * from supaqueue.claim_limited(claim_jobs.worker_id, claim_jobs.types, claim_jobs.batch_size - v_claimed, claim_jobs.lease_seconds);
    get diagnostics v_n = row_count;
    v_claimed := v_claimed + v_n;
    exit when v_n = 0 or v_claimed >= claim_jobs.batch_size;
  end loop;
end
$$;

/**
 * Extends the leases the caller still holds to now + lease_seconds. One row per input id:
 * lease_valid false means the lease was lost (expired and reclaimed, or settled): abort the handler.
 * cancel_requested true means cancel_job was called: stop and report via fail_jobs.
 */
create or replace function public.heartbeat_jobs(ids uuid[], lease_ids uuid[], lease_seconds double precision default supaqueue.default_lease_seconds())
returns table (id uuid, lease_valid boolean, cancel_requested boolean, locked_until timestamptz)
language plpgsql volatile set search_path = ''
set enable_seqscan = off  -- one primary-key probe per input row, even on stale statistics (see above)
as $$
begin
  perform supaqueue.check_same_length(cardinality(ids), cardinality(lease_ids));
  if lease_seconds is null or lease_seconds not between 0.1 and 86400 then
    perform supaqueue.invalid('lease_seconds must be between 0.1 and 86400');
  end if;
  return query
  with input as (select t.id, t.lease_id from unnest(heartbeat_jobs.ids, heartbeat_jobs.lease_ids) as t(id, lease_id)),
  extended as (
    update public.job_queue j
       set locked_until = now() + make_interval(secs => heartbeat_jobs.lease_seconds)
      from input i
     where j.id = i.id and j.lease_id = i.lease_id
    returning j.id, j.cancel_requested_at, j.locked_until
  )
  select i.id, e.id is not null, coalesce(e.cancel_requested_at is not null, false), e.locked_until
  from input i left join extended e on e.id = i.id;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Maintenance: one retention setting, one pass
-- ---------------------------------------------------------------------------------------------------

/**
 * How long finished jobs are kept: the database setting supaqueue.retention (an interval, e.g.
 * `alter database postgres set supaqueue.retention = '30 days'`), default 7 days. The one retention
 * setting: the worker and the jobs-scheduler function call run_maintenance without a retention.
 */
create function supaqueue.retention() returns interval
language sql stable parallel safe set search_path = ''
as $$ select coalesce(nullif(current_setting('supaqueue.retention', true), '')::interval, interval '7 days') $$;
revoke all on function supaqueue.retention() from public, anon, authenticated;
grant execute on function supaqueue.retention() to service_role;

/** Deletes completed, failed and cancelled jobs finished longer than `retention` (default: supaqueue.retention()) ago, at most max_jobs. */
create or replace function public.purge_finished_jobs(retention interval default supaqueue.retention(), max_jobs integer default 1000) returns integer
language plpgsql volatile set search_path = ''
as $$
declare
  v_count integer;
begin
  if retention is null or retention < interval '0' then
    perform supaqueue.invalid('retention must be a non-negative interval');
  end if;
  if max_jobs is null or max_jobs not between 1 and 100000 then
    perform supaqueue.invalid('max_jobs must be between 1 and 100000');
  end if;
  delete from public.job_queue j
   where j.id in (select f.id from public.job_queue f
                  where f.completed_at is not null and f.completed_at < now() - retention
                  order by f.completed_at limit max_jobs for update skip locked)
     and j.status in ('completed', 'failed', 'cancelled');
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

/**
 * The one maintenance pass (reclaim, promote, purge, fold stats; each step bounded), which the worker and the
 * jobs-scheduler function both run; returns counts as JSON. service_role.
 */
create or replace function public.run_maintenance(retention interval default supaqueue.retention(), max_jobs integer default 1000) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_reclaimed integer := public.reclaim_expired_jobs(max_jobs);
  v_promoted integer := supaqueue.promote_due_jobs(max_jobs);
  v_purged integer := public.purge_finished_jobs(retention, max_jobs);
  -- The dashboard's statistics deltas (20261130000400_supaqueue_stats.sql), folded here every pass so
  -- they stay few even when nobody reads stats, and never inside a claim or settle.
  v_folded integer := supaqueue.fold_job_stats();
begin
  return jsonb_build_object('reclaimed', v_reclaimed, 'promoted', v_promoted, 'purged', v_purged, 'stats_folded', v_folded);
end
$$;

-- Grants of the helpers this migration adds (functions created above without their own).
revoke all on function supaqueue.job_type_pattern(), supaqueue.max_attempts_limit(), supaqueue.max_json_depth(), supaqueue.default_max_queued_jobs(), supaqueue.max_user_call_payload_bytes(),
  supaqueue.min_user_backoff_ms(), supaqueue.json_depth_path(), supaqueue.json_too_deep(jsonb), supaqueue.check_json_depth(jsonb, text),
  supaqueue.queue_quota(uuid, boolean), supaqueue.lock_queue_quota(uuid), supaqueue.check_queue_room(uuid, integer, bigint)
  from public, anon, authenticated;
grant execute on function supaqueue.job_type_pattern(), supaqueue.max_attempts_limit(), supaqueue.max_json_depth(), supaqueue.default_max_queued_jobs(), supaqueue.max_user_call_payload_bytes(),
  supaqueue.min_user_backoff_ms(), supaqueue.json_depth_path(), supaqueue.json_too_deep(jsonb), supaqueue.check_json_depth(jsonb, text),
  supaqueue.queue_quota(uuid, boolean), supaqueue.lock_queue_quota(uuid), supaqueue.check_queue_room(uuid, integer, bigint)
  to service_role;

-- ---------------------------------------------------------------------------------------------------
-- SCHEDULE_NOT_FOUND (QJ011): a missing schedule is no longer reported as a missing job
-- ---------------------------------------------------------------------------------------------------

/** Locks a schedule the caller may manage; QJ011 when missing or invisible to the caller, QJ010 as above. */
create or replace function supaqueue.lock_schedule_for_caller(schedule_id uuid, user_id uuid) returns public.job_schedules
language plpgsql volatile set search_path = ''
as $$
declare
  v_row public.job_schedules;
begin
  select * into v_row from public.job_schedules s where s.id = schedule_id for update;
  if v_row.id is null then
    raise exception 'schedule not found' using errcode = 'QJ011';
  end if;
  begin
    perform supaqueue.check_schedule_access(v_row.tenant_id, user_id, true);
  exception when sqlstate 'QJ002' then
    -- Another tenant's schedule: the same answer as a missing one.
    raise exception 'schedule not found' using errcode = 'QJ011';
  end;
  return v_row;
end
$$;
revoke all on function supaqueue.lock_schedule_for_caller(uuid, uuid) from public, anon, authenticated;
grant execute on function supaqueue.lock_schedule_for_caller(uuid, uuid) to service_role;
