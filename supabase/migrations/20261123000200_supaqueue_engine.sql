-- supaqueue 0002: the queue engine.
--
-- Every rule of the queue lives here; the worker, the edge functions and users' own SQL call these same
-- functions. Errors are raised with our own SQLSTATE class QJ (see the table below), mapped to names and
-- HTTP statuses once, in supabase/functions/_shared/errors.ts.
--
--   QJ001 INVALID_ARGUMENT      bad input (uuid, type, payload shape, ranges, unknown fields)
--   QJ002 TENANT_NOT_FOUND      no such tenant, or the caller is not a member (same answer: no leak)
--   QJ003 JOB_NOT_FOUND         no such job, or not visible to the caller (same answer: no leak)
--   QJ004 INVALID_STATE         the job's state does not allow the operation
--   QJ005 MAX_ATTEMPTS_REACHED  retry of a job that used all its attempts, without granting more
--   QJ006 QUEUE_QUOTA_EXCEEDED  the tenant's max_queued_jobs would be exceeded
--   QJ007 PAYLOAD_TOO_LARGE     payload over 256 KiB (result over 1 MiB)
--   QJ008 NOT_AUTHENTICATED     no signed-in user (anon)
--   QJ009 RATE_LIMITED          too many requests (edge API)
--   QJ010 FORBIDDEN             signed in and a member, but the operation needs more (e.g. tenant admin)
--
-- Who may call what: user-facing functions (enqueue, retry, cancel) are security invoker and open to
-- authenticated and service_role; for signed-in users they delegate to a security definer helper in
-- the unexposed schema that checks membership first. Worker functions (claim, settle, heartbeat,
-- maintenance) are service_role only and need no definer rights: service_role owns the privileges.

-- ---------------------------------------------------------------------------------------------------
-- Small helpers
-- ---------------------------------------------------------------------------------------------------

/** Raises QJ001 with the message; used by every validator so callers see one code for bad input. */
create function supaqueue.invalid(message text) returns void
language plpgsql immutable set search_path = ''
as $$ begin raise exception '%', message using errcode = 'QJ001'; end $$;

/** 'user' for signed-in/anon API roles, 'service' for everyone else (service_role, postgres, owners). */
create function supaqueue.caller_kind() returns text
language sql stable set search_path = ''
as $$ select case when current_user in ('authenticated', 'anon') then 'user' else 'service' end $$;

/** Backoff before retry n (1-based): min(cap, base*2^(n-1)), "equal jitter" (half fixed, half random). */
create function supaqueue.backoff_delay(attempt integer, base_ms integer, max_ms integer) returns interval
language sql volatile set search_path = ''
as $$
  with d as (select least(max_ms::float8, base_ms::float8 * power(2, least(greatest(attempt, 1) - 1, 40))) as ms)
  select make_interval(secs => (d.ms / 2 + random() * d.ms / 2) / 1000.0) from d
$$;

/** errors || entry, keeping the newest 10 (the error_history_bounded constraint). */
create function supaqueue.append_error(history jsonb, entry jsonb) returns jsonb
language sql immutable set search_path = ''
as $$
  select coalesce(jsonb_agg(e.v order by e.n), '[]'::jsonb)
  from jsonb_array_elements(coalesce(history, '[]'::jsonb) || jsonb_build_array(entry)) with ordinality as e(v, n)
  where e.n > jsonb_array_length(coalesce(history, '[]'::jsonb)) + 1 - 10
$$;

/**
 * The fair tag a tenant's next ready job of a given priority starts from: start-time fair queueing.
 * A tenant's tags continue after its own newest active tag; a tenant with no backlog starts at the
 * front of the ready line (the smallest ready tag of that priority). Claims take the smallest tags
 * first, so tenants with ready work are served round-robin, one job each per "round", however deep
 * one tenant's backlog is. Both lookups are single index probes (claim and tenant-active indexes).
 */
create function supaqueue.fair_base(tenant_id uuid, priority smallint) returns bigint
language sql stable set search_path = ''
as $$
  select greatest(
    coalesce((select j.fair_key from public.job_queue j
              where j.status = 'pending' and j.fair_key is not null and j.priority = fair_base.priority
              order by j.priority desc, j.fair_key limit 1), 0),
    coalesce((select j.fair_key + 1 from public.job_queue j
              where j.tenant_id = fair_base.tenant_id and j.status in ('pending', 'processing') and j.fair_key is not null
              order by j.tenant_id, j.fair_key desc limit 1), 0)
  )
$$;

-- ---------------------------------------------------------------------------------------------------
-- Per-tenant limits: keep supaqueue.tenant_limits in step with tenants.max_concurrent_jobs
-- ---------------------------------------------------------------------------------------------------

/**
 * When a tenant's max_concurrent_jobs is set or changed, (re)count its processing jobs under the
 * counter row's lock: claims skip a locked counter and settles wait for it, so the count taken in the
 * next statement (a fresh snapshot, after the lock) is exact.
 */
create function supaqueue.tg_tenants__sync_limits() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if new.max_concurrent_jobs is null then
    delete from supaqueue.tenant_limits l where l.tenant_id = new.id;
    return null;
  end if;
  insert into supaqueue.tenant_limits (tenant_id, max_running) values (new.id, new.max_concurrent_jobs)
  on conflict (tenant_id) do update set max_running = excluded.max_running;
  perform 1 from supaqueue.tenant_limits l where l.tenant_id = new.id for update;
  update supaqueue.tenant_limits l
     set running = (select count(*) from public.job_queue j where j.tenant_id = new.id and j.status = 'processing')
   where l.tenant_id = new.id;
  return null;
end
$$;
revoke all on function supaqueue.tg_tenants__sync_limits() from public, anon, authenticated;

create trigger tenants_900_sync_limits
  after insert or update of max_concurrent_jobs on public.tenants
  for each row execute function supaqueue.tg_tenants__sync_limits();

/** Lowers the running counters of limited tenants by the given per-tenant counts, locking in tenant order. */
create function supaqueue.release_running(tenant_ids uuid[]) returns void
language plpgsql volatile set search_path = ''
as $$
begin
  if tenant_ids is null or cardinality(tenant_ids) = 0
     or not exists (select 1 from supaqueue.tenant_limits l where l.tenant_id = any (tenant_ids)) then
    return;
  end if;
  -- Lock in a fixed order so two settles touching the same tenants cannot deadlock.
  perform 1 from supaqueue.tenant_limits l where l.tenant_id = any (tenant_ids) order by l.tenant_id for update;
  update supaqueue.tenant_limits l
     set running = greatest(l.running - c.n, 0)
    from (select t as tenant_id, count(*) as n from unnest(tenant_ids) t group by t) c
   where l.tenant_id = c.tenant_id;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Enqueue
-- ---------------------------------------------------------------------------------------------------

/** One parsed job spec (see insert_jobs). */
create type supaqueue.job_spec as (
  n integer, id uuid, tenant_id uuid, type text, payload jsonb, priority integer, scheduled_at timestamptz,
  run_at_given boolean, delay_ms bigint, max_attempts integer, idempotency_key text, trace_id text,
  actor_id text, request_id text, backoff_base_ms integer, backoff_max_ms integer, payload_bytes integer
);

/** Parses and validates job specs; raises QJ001 (first problem, in input order) or QJ007. */
create function supaqueue.parse_job_specs(jobs jsonb) returns supaqueue.job_spec[]
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
      when s.type is null or s.type !~ '^[a-z][a-z0-9_.:-]{0,127}$' then 'type must match ^[a-z][a-z0-9_.:-]{0,127}$'
      when s.priority not between -100 and 100 then 'priority must be between -100 and 100'
      when s.max_attempts not between 1 and 100 then 'max_attempts must be between 1 and 100'
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

/**
 * Inserts parsed job specs; returns (job_id, created) per spec, in input order.
 * created = false: the (tenant, idempotency_key) already had a job, which is returned instead (also
 * under concurrent calls: ON CONFLICT waits for the other insert and then yields to it).
 * Runs as the caller: the service path (supaqueue.insert_jobs) and the member-checked definer helper
 * both end here. Takes an advisory transaction lock per tenant that has max_queued_jobs, which
 * serialises that tenant's enqueues so the quota is exact. Errors: QJ002, QJ006.
 */
create function supaqueue.insert_job_specs(specs supaqueue.job_spec[]) returns table (job_id uuid, created boolean)
language plpgsql volatile set search_path = ''
as $$
declare
  v_specs supaqueue.job_spec[] := specs;
  v_tenant record;
  v_new bigint;
  v_inserted uuid[];
begin
  if coalesce(cardinality(v_specs), 0) = 0 then return; end if;
  if exists (select 1 from unnest(v_specs) s where not exists (select 1 from public.tenants t where t.id = s.tenant_id)) then
    raise exception 'tenant not found' using errcode = 'QJ002';
  end if;

  -- Quotas: serialise enqueues per limited tenant, then count (fresh snapshot, after the lock) its
  -- active jobs and the jobs this call really adds: a repeat of an existing idempotency key adds
  -- none, so retrying an enqueue that already succeeded returns its job even at the quota.
  for v_tenant in
    select distinct t.id, t.max_queued_jobs
    from unnest(v_specs) s join public.tenants t on t.id = s.tenant_id
    where t.max_queued_jobs is not null
    order by t.id
  loop
    perform pg_advisory_xact_lock(hashtext('supaqueue.quota'), hashtext(v_tenant.id::text));
    select count(distinct s.idempotency_key) + count(*) filter (where s.idempotency_key is null) into v_new
    from unnest(v_specs) s
    where s.tenant_id = v_tenant.id
      and not exists (select 1 from public.job_queue j where j.tenant_id = s.tenant_id and j.idempotency_key = s.idempotency_key);
    if v_new > 0 and (select count(*) from (select 1 from public.job_queue j
          where j.tenant_id = v_tenant.id and j.status in ('pending', 'processing')
          limit v_tenant.max_queued_jobs) q) + v_new > v_tenant.max_queued_jobs then
      raise exception 'tenant has reached its limit of % queued jobs', v_tenant.max_queued_jobs
        using errcode = 'QJ006', detail = v_tenant.id::text;
    end if;
  end loop;

  with bases as materialized (
    -- fair_base once per (tenant, priority). MATERIALIZED: inlined, the planner moves the call up to the
    -- window below and runs it once per job (measured: 90 ms per 1,000 jobs instead of under 1 ms).
    select d.tenant_id, d.priority, supaqueue.fair_base(d.tenant_id, d.priority::smallint) as base
    from (select distinct s2.tenant_id, s2.priority from unnest(v_specs) s2 where s2.scheduled_at <= now()) d
  ),
  ready as (
    -- Fair tags for jobs that may run now, numbered per (tenant, priority) after that tenant's backlog.
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

  -- A separate statement, so a key repeated within this very call finds the row inserted above.
  -- Joins, not `s.id = any (v_inserted)`: that compares every spec with every inserted id (quadratic).
  return query
  select coalesce(j.id, s.id), i.id is not null
  from unnest(v_specs) s
  left join unnest(v_inserted) i(id) on i.id = s.id
  left join public.job_queue j
    on i.id is null and j.tenant_id = s.tenant_id and j.idempotency_key = s.idempotency_key
  order by s.n;
end
$$;

/**
 * Inserts jobs from a JSON array of specs (the service path; also used by the scheduler). Spec fields:
 * tenant_id (required), type (required), payload, priority, run_at | delay_ms, max_attempts,
 * idempotency_key, trace_id, actor_id, request_id, backoff_base_ms, backoff_max_ms.
 * Returns (job_id, created) per spec, in input order. Errors: QJ001, QJ002, QJ006, QJ007.
 */
create function supaqueue.insert_jobs(jobs jsonb) returns table (job_id uuid, created boolean)
language sql volatile set search_path = ''
as $$ select * from supaqueue.insert_job_specs(supaqueue.parse_job_specs(insert_jobs.jobs)) $$;

/** Member path of enqueue: every tenant in the batch must be one the signed-in user belongs to. */
create function supaqueue.insert_jobs_as_member(jobs jsonb) returns table (job_id uuid, created boolean)
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
  return query select * from supaqueue.insert_job_specs(v_specs);
end
$$;
revoke all on function supaqueue.insert_jobs_as_member(jsonb) from public, anon, service_role;
grant execute on function supaqueue.insert_jobs_as_member(jsonb) to authenticated;

/**
 * Enqueue many jobs in one call (see supaqueue.insert_jobs for the spec fields). Transactional: in a
 * transaction that rolls back, no job remains. Callable by service_role for any tenant and by signed-in
 * users for tenants they belong to. Errors: QJ001, QJ002, QJ006, QJ007, QJ008.
 */
create function public.enqueue_jobs(jobs jsonb) returns table (job_id uuid, created boolean)
language plpgsql volatile set search_path = ''
as $$
begin
  if current_user = 'anon' then
    raise exception 'sign in required' using errcode = 'QJ008';
  elsif supaqueue.caller_kind() = 'user' then
    return query select * from supaqueue.insert_jobs_as_member(jobs);
  else
    return query select * from supaqueue.insert_jobs(jobs);
  end if;
end
$$;
revoke all on function public.enqueue_jobs(jsonb) from public, anon;
grant execute on function public.enqueue_jobs(jsonb) to authenticated, service_role;

/** Enqueue one job; returns (job_id, created). Same rules and errors as enqueue_jobs. */
create function public.enqueue_job(
  tenant_id uuid,
  type text,
  payload jsonb default '{}'::jsonb,
  priority integer default null,
  run_at timestamptz default null,
  delay_ms bigint default null,
  max_attempts integer default null,
  idempotency_key text default null,
  trace_id text default null,
  actor_id text default null,
  request_id text default null,
  backoff_base_ms integer default null,
  backoff_max_ms integer default null
) returns table (job_id uuid, created boolean)
language sql volatile set search_path = ''
as $$
  select * from public.enqueue_jobs(jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
    'tenant_id', enqueue_job.tenant_id, 'type', enqueue_job.type, 'payload', enqueue_job.payload,
    'priority', enqueue_job.priority, 'run_at', enqueue_job.run_at, 'delay_ms', enqueue_job.delay_ms,
    'max_attempts', enqueue_job.max_attempts, 'idempotency_key', enqueue_job.idempotency_key,
    'trace_id', enqueue_job.trace_id, 'actor_id', enqueue_job.actor_id, 'request_id', enqueue_job.request_id,
    'backoff_base_ms', enqueue_job.backoff_base_ms, 'backoff_max_ms', enqueue_job.backoff_max_ms))))
$$;
revoke all on function public.enqueue_job(uuid, text, jsonb, integer, timestamptz, bigint, integer, text, text, text, text, integer, integer) from public, anon;
grant execute on function public.enqueue_job(uuid, text, jsonb, integer, timestamptz, bigint, integer, text, text, text, text, integer, integer) to authenticated, service_role;

-- Wake-up hint for idle workers: one notification per inserting statement that made ready work (not one
-- per row; Postgres also folds repeats within a transaction). Only a hint: workers poll for correctness,
-- and NOTIFY does not pass Supabase's transaction pooler.
create function supaqueue.tg_job_queue__notify_insert() returns trigger
language plpgsql set search_path = ''
as $$
begin
  if exists (select 1 from new_jobs n where n.fair_key is not null) then
    perform pg_notify('supaqueue_jobs', '');
  end if;
  return null;
end
$$;
revoke all on function supaqueue.tg_job_queue__notify_insert() from public, anon, authenticated;

create trigger job_queue_900_notify_insert
  after insert on public.job_queue
  referencing new table as new_jobs
  for each statement execute function supaqueue.tg_job_queue__notify_insert();

-- ---------------------------------------------------------------------------------------------------
-- Claim
-- ---------------------------------------------------------------------------------------------------

/**
 * Gives due delayed/retrying jobs their fair tag, so they join the ready line. Bounded, and SKIP LOCKED
 * so concurrent claimers share the work instead of queueing on it. Returns how many were promoted.
 */
create function supaqueue.promote_due_jobs(max_jobs integer default 1000) returns integer
language plpgsql volatile set search_path = ''
as $$
declare
  v_count integer;
begin
  -- Cheap exit for the common case (one probe of the due index).
  if not exists (select 1 from public.job_queue j where j.status = 'pending' and j.fair_key is null and j.scheduled_at <= now()) then
    return 0;
  end if;
  with due as (
    select j.id, j.tenant_id, j.priority
    from public.job_queue j
    where j.status = 'pending' and j.fair_key is null and j.scheduled_at <= now()
    order by j.scheduled_at
    limit max_jobs
    for update skip locked
  ),
  bases as materialized (
    -- Once per (tenant, priority), not per job: see insert_job_specs.
    select d2.tenant_id, d2.priority, supaqueue.fair_base(d2.tenant_id, d2.priority) as base
    from (select distinct d1.tenant_id, d1.priority from due d1) d2
  ),
  tagged as (
    select d.id, g.base + row_number() over (partition by d.tenant_id, d.priority order by d.id) - 1 as fair_key
    from due d
    join bases g on g.tenant_id = d.tenant_id and g.priority = d.priority
  )
  update public.job_queue j set fair_key = t.fair_key
  from tagged t
  where j.id = t.id and j.status = 'pending' and j.fair_key is null;
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
revoke all on function supaqueue.promote_due_jobs(integer) from public, anon, authenticated;
grant execute on function supaqueue.promote_due_jobs(integer) to service_role;

/**
 * The claim when some tenants have max_concurrent_jobs: the unlimited claim plus exact limits. The
 * pick skips tenants whose counter is full; the counter rows of the limited tenants among the picked
 * jobs are locked (SKIP LOCKED: a counter another claimer holds means "not now" for that tenant) and
 * raised in the same statement that leases the jobs, so two claimers can never both take a tenant's
 * last free slot. FOR UPDATE reads the counter's latest committed version, so `room` also counts claims
 * committed after this statement's snapshot. Picked jobs beyond a tenant's room are left pending.
 */
create function supaqueue.claim_limited(worker_id text, types text[], batch_size integer, lease_seconds double precision)
returns setof public.job_queue
language plpgsql volatile set search_path = ''
as $$
begin
  return query
  with candidates as materialized (
    select j.id, j.tenant_id, j.priority, j.fair_key
    from public.job_queue j
    where j.status = 'pending'
      and j.fair_key is not null
      and (claim_limited.types is null or j.type = any (claim_limited.types))
      and not exists (select 1 from supaqueue.tenant_limits l where l.tenant_id = j.tenant_id and l.running >= l.max_running)
    order by j.priority desc, j.fair_key
    limit claim_limited.batch_size
    for update of j skip locked
  ),
  limited as materialized (
    select l.tenant_id, l.max_running - l.running as room
    from supaqueue.tenant_limits l
    where l.tenant_id in (select c.tenant_id from candidates c)
    for update skip locked
  ),
  chosen as materialized (
    select r.id, r.tenant_id
    from (select c.id, c.tenant_id,
                 row_number() over (partition by c.tenant_id order by c.priority desc, c.fair_key) as rn
          from candidates c) r
    left join limited lm on lm.tenant_id = r.tenant_id
    where r.rn <= lm.room
       or (lm.tenant_id is null and not exists (select 1 from supaqueue.tenant_limits l where l.tenant_id = r.tenant_id))
  ),
  counted as (
    update supaqueue.tenant_limits l
       set running = l.running + n.cnt
      from (select ch.tenant_id, count(*) as cnt from chosen ch group by ch.tenant_id) n
     where l.tenant_id = n.tenant_id
  )
  update public.job_queue j
     set status = 'processing',
         attempts = j.attempts + 1,
         worker_id = claim_limited.worker_id,
         lease_id = gen_random_uuid(),
         locked_until = now() + make_interval(secs => claim_limited.lease_seconds),
         started_at = now(),
         updated_at = now()
    from chosen ch
   where j.id = ch.id
  returning j.*;
end
$$;

/**
 * Claims up to batch_size ready jobs for worker_id and leases them for lease_seconds.
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
create function public.claim_jobs(
  worker_id text,
  types text[] default null,
  batch_size integer default 10,
  lease_seconds double precision default 30
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
revoke all on function public.claim_jobs(text, text[], integer, double precision) from public, anon, authenticated;
grant execute on function public.claim_jobs(text, text[], integer, double precision) to service_role;
revoke all on function supaqueue.claim_limited(text, text[], integer, double precision) from public, anon, authenticated;
grant execute on function supaqueue.claim_limited(text, text[], integer, double precision) to service_role;

-- ---------------------------------------------------------------------------------------------------
-- Settle: complete, fail, release. Each applies only where the caller still holds the lease
-- (lease_id matches); a stale or repeated call changes nothing and the job is absent from the returned
-- rows, which is how the caller learns its lease was lost.
--
-- The lease_id match alone is the fence: a job has a lease_id only while it is processing (every
-- transition out of processing clears it, and a claim always mints a new one). The settles and the
-- heartbeat deliberately do not repeat `status = 'processing'`: with it, the planner may drive the
-- UPDATE from the partial lease index (estimated tiny when statistics were taken on an idle queue)
-- and probe the input array once per processing job, which is quadratic under load; without it, the
-- only path is one primary-key probe per input row. The same goes for statistics taken while the queue
-- was idle: the planner then takes job_queue for tiny and may scan all of it once per settle call (the
-- worker benchmark ran 45% faster after a manual ANALYZE); `enable_seqscan = off` on these functions
-- keeps them on the primary key whatever the statistics say.
-- ---------------------------------------------------------------------------------------------------

/** Raises QJ001 unless the arrays are non-null and of one length. */
create function supaqueue.check_same_length(a integer, b integer, c integer default null) returns void
language plpgsql immutable set search_path = ''
as $$
begin
  if a is null or b is null or a <> b or (c is not null and c <> a) then
    perform supaqueue.invalid('ids, lease_ids and the per-job arrays must be non-null and of the same length');
  end if;
end
$$;

/** Completes jobs, storing results[i] as the result of ids[i]; returns the ids actually completed. */
create function public.complete_jobs(ids uuid[], lease_ids uuid[], results jsonb[] default null)
returns table (id uuid)
language plpgsql volatile set search_path = ''
set enable_seqscan = off  -- one primary-key probe per input row, even on stale statistics (see above)
as $$
declare
  v_ids uuid[];
  v_tenants uuid[];
begin
  perform supaqueue.check_same_length(cardinality(ids), cardinality(lease_ids), cardinality(results));
  if exists (select 1 from unnest(results) r where octet_length(r::text) > 1048576) then
    raise exception 'result is larger than 1 MiB' using errcode = 'QJ007';
  end if;
  with input as (
    select t.id, t.lease_id, t.result
    from unnest(complete_jobs.ids, complete_jobs.lease_ids, complete_jobs.results) as t(id, lease_id, result)
  ),
  done as (
    update public.job_queue j
       set status = 'completed', result = i.result, completed_at = now(), updated_at = now(),
           lease_id = null, locked_until = null, cancel_requested_at = null, fair_key = null
      from input i
     where j.id = i.id and j.lease_id = i.lease_id
    returning j.id, j.tenant_id
  )
  select array_agg(d.id), array_agg(d.tenant_id) into v_ids, v_tenants from done d;
  perform supaqueue.release_running(v_tenants);
  return query select unnest(coalesce(v_ids, '{}'));
end
$$;
revoke all on function public.complete_jobs(uuid[], uuid[], jsonb[]) from public, anon, authenticated;
grant execute on function public.complete_jobs(uuid[], uuid[], jsonb[]) to service_role;

/** Completes one job; true if this lease still held it (false: stale or repeated call, nothing changed). */
create function public.complete_job(id uuid, lease_id uuid, result jsonb default null) returns boolean
language sql volatile set search_path = ''
as $$
  select exists (select 1 from public.complete_jobs(array[complete_job.id], array[complete_job.lease_id], array[complete_job.result]))
$$;
revoke all on function public.complete_job(uuid, uuid, jsonb) from public, anon, authenticated;
grant execute on function public.complete_job(uuid, uuid, jsonb) to service_role;

/**
 * The one transition out of a failed attempt, shared by fail_jobs and lease expiry:
 * cancellation requested -> cancelled; retryable with attempts left -> pending after backoff;
 * otherwise -> failed (terminal, the dead-letter set).
 */
create function supaqueue.next_status_after_failure(cancel_requested boolean, retryable boolean, attempts integer, max_attempts integer)
returns public.job_status
language sql immutable set search_path = ''
as $$
  select case
    when cancel_requested then 'cancelled'::public.job_status
    when retryable and attempts < max_attempts then 'pending'::public.job_status
    else 'failed'::public.job_status
  end
$$;

/**
 * Fails the current attempt of jobs: errors[i] is recorded for ids[i] (last_error and the bounded
 * history); retryable[i] false fails it permanently. Returns (id, status, scheduled_at) of the jobs
 * this call settled; stale leases are absent.
 */
create function public.fail_jobs(ids uuid[], lease_ids uuid[], errors text[], retryable boolean[] default null)
returns table (id uuid, status public.job_status, scheduled_at timestamptz)
language plpgsql volatile set search_path = ''
set enable_seqscan = off  -- one primary-key probe per input row, even on stale statistics (see above)
as $$
declare
  v_ids uuid[];
  v_status public.job_status[];
  v_sched timestamptz[];
  v_tenants uuid[];
begin
  perform supaqueue.check_same_length(cardinality(ids), cardinality(lease_ids), cardinality(errors));
  perform supaqueue.check_same_length(cardinality(ids), coalesce(cardinality(retryable), cardinality(ids)));
  -- The next status is decided from the row version the UPDATE locks (not from an earlier snapshot),
  -- so a cancel_job committed while this call waited for the row is honoured.
  with input as (
    select t.id, t.lease_id, left(coalesce(t.error, 'unknown error'), 4000) as error, coalesce(t.retryable, true) as retryable
    from unnest(fail_jobs.ids, fail_jobs.lease_ids, fail_jobs.errors,
                coalesce(fail_jobs.retryable, array_fill(true, array[cardinality(fail_jobs.ids)]))) as t(id, lease_id, error, retryable)
  ),
  done as (
    update public.job_queue j
       set status = supaqueue.next_status_after_failure(j.cancel_requested_at is not null, i.retryable, j.attempts, j.max_attempts),
           scheduled_at = case
             when supaqueue.next_status_after_failure(j.cancel_requested_at is not null, i.retryable, j.attempts, j.max_attempts) = 'pending'
             then now() + supaqueue.backoff_delay(j.attempts, j.backoff_base_ms, j.backoff_max_ms) else j.scheduled_at end,
           completed_at = case
             when supaqueue.next_status_after_failure(j.cancel_requested_at is not null, i.retryable, j.attempts, j.max_attempts) = 'pending'
             then null else now() end,
           fair_key = null, lease_id = null, locked_until = null, cancel_requested_at = null,
           last_error = i.error,
           errors = supaqueue.append_error(j.errors, jsonb_build_object(
             'attempt', j.attempts, 'at', now(), 'error', i.error, 'worker_id', j.worker_id, 'retryable', i.retryable)),
           updated_at = now()
      from input i
     where j.id = i.id and j.lease_id = i.lease_id
    returning j.id, j.status, j.scheduled_at, j.tenant_id
  )
  select array_agg(x.id), array_agg(x.status), array_agg(x.scheduled_at), array_agg(x.tenant_id)
    into v_ids, v_status, v_sched, v_tenants from done x;
  perform supaqueue.release_running(v_tenants);
  return query select * from unnest(coalesce(v_ids, '{}'), coalesce(v_status, '{}'), coalesce(v_sched, '{}'));
end
$$;
revoke all on function public.fail_jobs(uuid[], uuid[], text[], boolean[]) from public, anon, authenticated;
grant execute on function public.fail_jobs(uuid[], uuid[], text[], boolean[]) to service_role;

/** Fails one attempt; returns the job's new status, or null when the lease was stale (nothing changed). */
create function public.fail_job(id uuid, lease_id uuid, error text, retryable boolean default true)
returns public.job_status
language sql volatile set search_path = ''
as $$
  select f.status from public.fail_jobs(array[fail_job.id], array[fail_job.lease_id], array[fail_job.error], array[fail_job.retryable]) f
$$;
revoke all on function public.fail_job(uuid, uuid, text, boolean) from public, anon, authenticated;
grant execute on function public.fail_job(uuid, uuid, text, boolean) to service_role;

/**
 * Gives jobs back without using up an attempt (graceful shutdown): pending again, runnable at once.
 * A job whose cancellation was requested is cancelled instead. Returns the ids released.
 */
create function public.release_jobs(ids uuid[], lease_ids uuid[]) returns table (id uuid)
language plpgsql volatile set search_path = ''
set enable_seqscan = off  -- one primary-key probe per input row, even on stale statistics (see above)
as $$
declare
  v_ids uuid[];
  v_tenants uuid[];
begin
  perform supaqueue.check_same_length(cardinality(ids), cardinality(lease_ids));
  with done as (
    update public.job_queue j
       set status = case when j.cancel_requested_at is not null then 'cancelled'::public.job_status else 'pending' end,
           completed_at = case when j.cancel_requested_at is not null then now() end,
           attempts = greatest(j.attempts - 1, 0), scheduled_at = now(), fair_key = null,
           lease_id = null, locked_until = null, cancel_requested_at = null, updated_at = now()
      from unnest(release_jobs.ids, release_jobs.lease_ids) as t(id, lease_id)
     where j.id = t.id and j.lease_id = t.lease_id
    returning j.id, j.tenant_id
  )
  select array_agg(d.id), array_agg(d.tenant_id) into v_ids, v_tenants from done d;
  perform supaqueue.release_running(v_tenants);
  if v_ids is not null then perform pg_notify('supaqueue_jobs', ''); end if;
  return query select unnest(coalesce(v_ids, '{}'));
end
$$;
revoke all on function public.release_jobs(uuid[], uuid[]) from public, anon, authenticated;
grant execute on function public.release_jobs(uuid[], uuid[]) to service_role;

-- ---------------------------------------------------------------------------------------------------
-- Heartbeat and progress
-- ---------------------------------------------------------------------------------------------------

/**
 * Extends the leases the caller still holds to now + lease_seconds. One row per input id:
 * lease_valid false means the lease was lost (expired and reclaimed, or settled): abort the handler.
 * cancel_requested true means cancel_job was called: stop and report via fail_jobs.
 */
create function public.heartbeat_jobs(ids uuid[], lease_ids uuid[], lease_seconds double precision default 30)
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
revoke all on function public.heartbeat_jobs(uuid[], uuid[], double precision) from public, anon, authenticated;
grant execute on function public.heartbeat_jobs(uuid[], uuid[], double precision) to service_role;

/** Records progress ({percent 0..100, message}) on a job the caller holds; false when the lease is stale. */
create function public.set_job_progress(id uuid, lease_id uuid, progress jsonb) returns boolean
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
  update public.job_queue j set progress = set_job_progress.progress, updated_at = now()
   where j.id = set_job_progress.id and j.lease_id = set_job_progress.lease_id;
  get diagnostics v_found = row_count;
  return v_found;
end
$$;
revoke all on function public.set_job_progress(uuid, uuid, jsonb) from public, anon, authenticated;
grant execute on function public.set_job_progress(uuid, uuid, jsonb) to service_role;

-- ---------------------------------------------------------------------------------------------------
-- Retry and cancel: tenant members, super admins and service_role
-- ---------------------------------------------------------------------------------------------------

/**
 * Locks and returns a job the caller may act on, or raises QJ003 (also for other tenants' jobs, so
 * existence never leaks). Service callers see every job; users their tenants' (or all, super admin).
 */
create function supaqueue.lock_job_for_caller(job_id uuid, user_id uuid) returns public.job_queue
language plpgsql volatile set search_path = ''
as $$
declare
  v_job public.job_queue;
begin
  if lock_job_for_caller.job_id is null then
    perform supaqueue.invalid('job_id is required');
  end if;
  select * into v_job from public.job_queue j where j.id = job_id for update;
  if v_job.id is null
     or (lock_job_for_caller.user_id is not null
         and not exists (select 1 from public.tenant_members m where m.tenant_id = v_job.tenant_id and m.user_id = lock_job_for_caller.user_id)
         and not exists (select 1 from supaqueue.super_admins s where s.user_id = lock_job_for_caller.user_id)) then
    raise exception 'job not found' using errcode = 'QJ003';
  end if;
  return v_job;
end
$$;
revoke all on function supaqueue.lock_job_for_caller(uuid, uuid) from public, anon, authenticated;
-- The service path of retry/cancel runs as service_role (security invoker) and calls it directly.
grant execute on function supaqueue.lock_job_for_caller(uuid, uuid) to service_role;

/**
 * The retry rule: failed and cancelled jobs go back to pending, runnable now. If the job has used all
 * its attempts, the caller must grant more (extra_attempts > 0 raises max_attempts by that much);
 * otherwise QJ005. Other states: QJ004. user_id null = service caller.
 */
create function supaqueue.retry_job(job_id uuid, extra_attempts integer, user_id uuid) returns setof public.job_queue
language plpgsql volatile set search_path = ''
as $$
declare
  v_job public.job_queue;
begin
  -- Arguments first: a bad call gets QJ001 whether or not the job exists.
  if extra_attempts is null or extra_attempts not between 0 and 100 then
    perform supaqueue.invalid('extra_attempts must be between 0 and 100');
  end if;
  v_job := supaqueue.lock_job_for_caller(job_id, user_id);
  if v_job.status not in ('failed', 'cancelled') then
    raise exception 'only failed or cancelled jobs can be retried (job is %)', v_job.status using errcode = 'QJ004';
  end if;
  if v_job.attempts >= v_job.max_attempts + extra_attempts then
    raise exception 'job has used all % attempts; pass extra_attempts to grant more', v_job.max_attempts
      using errcode = 'QJ005';
  end if;
  if v_job.max_attempts + extra_attempts > 1000 then
    perform supaqueue.invalid('max_attempts cannot exceed 1000');
  end if;
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
revoke all on function supaqueue.retry_job(uuid, integer, uuid) from public, anon, authenticated;
grant execute on function supaqueue.retry_job(uuid, integer, uuid) to service_role;

/**
 * The cancel rule: pending -> cancelled at once; processing -> cancellation requested (the holder sees it
 * at its next heartbeat, stops, and the job ends cancelled); terminal -> QJ004.
 */
create function supaqueue.cancel_job(job_id uuid, user_id uuid) returns setof public.job_queue
language plpgsql volatile set search_path = ''
as $$
declare
  v_job public.job_queue := supaqueue.lock_job_for_caller(job_id, user_id);
begin
  if v_job.status = 'pending' then
    return query
    update public.job_queue j
       set status = 'cancelled', completed_at = now(), fair_key = null, updated_at = now()
     where j.id = v_job.id
    returning j.*;
  elsif v_job.status = 'processing' then
    return query
    update public.job_queue j
       set cancel_requested_at = coalesce(j.cancel_requested_at, now()), updated_at = now()
     where j.id = v_job.id
    returning j.*;
  else
    raise exception 'job is already % and cannot be cancelled', v_job.status using errcode = 'QJ004';
  end if;
end
$$;
revoke all on function supaqueue.cancel_job(uuid, uuid) from public, anon, authenticated;
grant execute on function supaqueue.cancel_job(uuid, uuid) to service_role;

/** Member path of retry/cancel. */
create function supaqueue.act_on_job_as_member(action text, job_id uuid, extra_attempts integer default 0)
returns setof public.job_queue
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: signed-in users have no UPDATE grant on job_queue; the caller is always
-- auth.uid() (never a parameter), and lock_job_for_caller checks membership or super admin.
declare
  v_user uuid := (select auth.uid());
begin
  if v_user is null then
    raise exception 'sign in required' using errcode = 'QJ008';
  end if;
  if action = 'retry' then
    return query select * from supaqueue.retry_job(job_id, extra_attempts, v_user);
  elsif action = 'cancel' then
    return query select * from supaqueue.cancel_job(job_id, v_user);
  else
    perform supaqueue.invalid('unknown action');
  end if;
end
$$;
revoke all on function supaqueue.act_on_job_as_member(text, uuid, integer) from public, anon, service_role;
grant execute on function supaqueue.act_on_job_as_member(text, uuid, integer) to authenticated;

/**
 * Retries a failed or cancelled job (see supaqueue.retry_job for the rule). Members of the job's tenant,
 * super admins, service_role. Errors: QJ001, QJ003, QJ004, QJ005, QJ008.
 */
create function public.retry_job(job_id uuid, extra_attempts integer default 0) returns setof public.job_queue
language plpgsql volatile set search_path = ''
as $$
begin
  if current_user = 'anon' then
    raise exception 'sign in required' using errcode = 'QJ008';
  elsif supaqueue.caller_kind() = 'user' then
    return query select * from supaqueue.act_on_job_as_member('retry', job_id, extra_attempts);
  else
    return query select * from supaqueue.retry_job(job_id, extra_attempts, null);
  end if;
end
$$;
revoke all on function public.retry_job(uuid, integer) from public, anon;
grant execute on function public.retry_job(uuid, integer) to authenticated, service_role;

/** Cancels a job (see supaqueue.cancel_job). Members, super admins, service_role. Errors: QJ003, QJ004, QJ008. */
create function public.cancel_job(job_id uuid) returns setof public.job_queue
language plpgsql volatile set search_path = ''
as $$
begin
  if current_user = 'anon' then
    raise exception 'sign in required' using errcode = 'QJ008';
  elsif supaqueue.caller_kind() = 'user' then
    return query select * from supaqueue.act_on_job_as_member('cancel', job_id, 0);
  else
    return query select * from supaqueue.cancel_job(job_id, null);
  end if;
end
$$;
revoke all on function public.cancel_job(uuid) from public, anon;
grant execute on function public.cancel_job(uuid) to authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------
-- Maintenance: idempotent, bounded, one short statement each
-- ---------------------------------------------------------------------------------------------------

/**
 * Returns jobs whose lease expired (their worker died or stalled) to pending, or to failed when their
 * attempts are used up (cancelled if cancellation was requested). The UPDATE re-checks
 * status = 'processing' and locked_until < now() itself, so a job settled meanwhile is never touched.
 */
create function public.reclaim_expired_jobs(max_jobs integer default 1000) returns integer
language plpgsql volatile set search_path = ''
as $$
declare
  v_tenants uuid[];
begin
  if max_jobs is null or max_jobs not between 1 and 100000 then
    perform supaqueue.invalid('max_jobs must be between 1 and 100000');
  end if;
  with expired as (
    select j.id from public.job_queue j
    where j.status = 'processing' and j.locked_until < now()
    order by j.locked_until
    limit max_jobs
    for update skip locked
  ),
  done as (
    update public.job_queue j
       set status = supaqueue.next_status_after_failure(j.cancel_requested_at is not null, true, j.attempts, j.max_attempts),
           scheduled_at = now(),
           completed_at = case when supaqueue.next_status_after_failure(j.cancel_requested_at is not null, true, j.attempts, j.max_attempts) = 'pending' then null else now() end,
           fair_key = null, lease_id = null, locked_until = null, cancel_requested_at = null,
           last_error = 'lease expired (worker ' || j.worker_id || ' stopped heartbeating)',
           errors = supaqueue.append_error(j.errors, jsonb_build_object(
             'attempt', j.attempts, 'at', now(), 'error', 'lease expired', 'worker_id', j.worker_id, 'retryable', true)),
           updated_at = now()
      from expired e
     where j.id = e.id and j.status = 'processing' and j.locked_until < now()
    returning j.tenant_id
  )
  select array_agg(d.tenant_id) into v_tenants from done d;
  perform supaqueue.release_running(v_tenants);
  return coalesce(cardinality(v_tenants), 0);
end
$$;
revoke all on function public.reclaim_expired_jobs(integer) from public, anon, authenticated;
grant execute on function public.reclaim_expired_jobs(integer) to service_role;

/** Deletes completed, failed and cancelled jobs finished longer than `retention` ago, at most max_jobs. */
create function public.purge_finished_jobs(retention interval default '7 days', max_jobs integer default 1000) returns integer
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
revoke all on function public.purge_finished_jobs(interval, integer) from public, anon, authenticated;
grant execute on function public.purge_finished_jobs(interval, integer) to service_role;

/** One maintenance pass (each step its own bounded statement); returns counts as JSON. service_role. */
create function public.run_maintenance(retention interval default '7 days', max_jobs integer default 1000) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_reclaimed integer := public.reclaim_expired_jobs(max_jobs);
  v_promoted integer := supaqueue.promote_due_jobs(max_jobs);
  v_purged integer := public.purge_finished_jobs(retention, max_jobs);
begin
  return jsonb_build_object('reclaimed', v_reclaimed, 'promoted', v_promoted, 'purged', v_purged);
end
$$;
revoke all on function public.run_maintenance(interval, integer) from public, anon, authenticated;
grant execute on function public.run_maintenance(interval, integer) to service_role;

-- Helpers that no API role calls directly.
revoke all on function supaqueue.invalid(text), supaqueue.backoff_delay(integer, integer, integer),
  supaqueue.append_error(jsonb, jsonb), supaqueue.fair_base(uuid, smallint), supaqueue.release_running(uuid[]),
  supaqueue.parse_job_specs(jsonb), supaqueue.insert_job_specs(supaqueue.job_spec[]), supaqueue.insert_jobs(jsonb),
  supaqueue.check_same_length(integer, integer, integer),
  supaqueue.next_status_after_failure(boolean, boolean, integer, integer)
  from public, anon, authenticated;
grant execute on function supaqueue.invalid(text), supaqueue.backoff_delay(integer, integer, integer),
  supaqueue.append_error(jsonb, jsonb), supaqueue.fair_base(uuid, smallint), supaqueue.release_running(uuid[]),
  supaqueue.parse_job_specs(jsonb), supaqueue.insert_job_specs(supaqueue.job_spec[]), supaqueue.insert_jobs(jsonb),
  supaqueue.check_same_length(integer, integer, integer),
  supaqueue.next_status_after_failure(boolean, boolean, integer, integer)
  to service_role;
revoke all on function supaqueue.caller_kind() from public, anon;
grant execute on function supaqueue.caller_kind() to authenticated, service_role;
