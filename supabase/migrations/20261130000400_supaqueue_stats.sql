-- supaqueue: job statistics for the dashboard (issue 13) and bulk retry/cancel.
--
-- What the dashboard shows must stay cheap at 1M jobs and 10,000 tenants, so nothing here counts a
-- tenant's history per refresh:
--   * Statement-level triggers on public.job_queue (transition tables) append one row per
--     (tenant, type, status) a statement changed to supaqueue.job_stat_deltas: insert-only, no row
--     another transaction could be waiting on, so concurrent claims and settles never contend here.
--     Statements that change no status (heartbeats, progress) net to zero and write nothing.
--   * supaqueue.fold_job_stats() folds those deltas (bounded, one folder at a time) into
--     supaqueue.job_counts (jobs by tenant, type and status) and supaqueue.job_minute_stats (jobs that
--     completed or failed per tenant per minute, kept 25 hours). Rows under the nil UUID are the totals
--     of all tenants. Folds run at each stats read, in run_maintenance (worker or scheduler, every
--     minute), and on demand; never inside a claim or settle.
--   * public.job_stats() answers the overview from those tables plus index-bounded probes: the jobs
--     running now (the lease index holds only running jobs) and the oldest waiting job (the head of each
--     tenant's ready line in job_queue_tenant_active_idx).

-- ---------------------------------------------------------------------------------------------------
-- Limits: each written once, here
-- ---------------------------------------------------------------------------------------------------

/** Most jobs one bulk retry/cancel call acts on. */
create function supaqueue.max_bulk_jobs() returns integer
language sql immutable set search_path = '' as $$ select 1000 $$;

/** Most delta rows one fold takes (the rest wait for the next fold). */
create function supaqueue.stats_fold_batch() returns integer
language sql immutable set search_path = '' as $$ select 20000 $$;

/** How long per-minute history is kept. */
create function supaqueue.stats_history_retention() returns interval
language sql immutable set search_path = '' as $$ select interval '25 hours' $$;

/** Tenants probed for the oldest waiting job when a super admin looks at all tenants. */
create function supaqueue.stats_max_probes() returns integer
language sql immutable set search_path = '' as $$ select 1000 $$;

/** The key of the all-tenants totals in the stats tables (no tenant has it: tenants get random UUIDs). */
create function supaqueue.all_tenants() returns uuid
language sql immutable set search_path = '' as $$ select '00000000-0000-0000-0000-000000000000'::uuid $$;

-- ---------------------------------------------------------------------------------------------------
-- Tables (private; no foreign keys: a deleted tenant's rows are simply never read again)
-- ---------------------------------------------------------------------------------------------------
create table supaqueue.job_stat_deltas (
  tenant_id uuid not null,
  type text not null,
  status public.job_status not null,
  delta integer not null,
  -- True when this many jobs reached completed/failed in this statement (the per-minute chart).
  finished boolean not null default false,
  at timestamptz not null default now()
);
-- Inserted, then deleted by the next fold: vacuum often so it stays a few pages.
alter table supaqueue.job_stat_deltas set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
  autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000);

create table supaqueue.job_counts (
  tenant_id uuid not null,
  type text not null,
  status public.job_status not null,
  n bigint not null,
  primary key (tenant_id, type, status)
);

create table supaqueue.job_minute_stats (
  tenant_id uuid not null,
  minute timestamptz not null,
  completed integer not null default 0,
  failed integer not null default 0,
  primary key (tenant_id, minute)
);
create index job_minute_stats_minute_idx on supaqueue.job_minute_stats (minute);

alter table supaqueue.job_stat_deltas enable row level security;
alter table supaqueue.job_counts enable row level security;
alter table supaqueue.job_minute_stats enable row level security;
revoke all on supaqueue.job_stat_deltas, supaqueue.job_counts, supaqueue.job_minute_stats from public, anon, authenticated;
grant select, insert, update, delete on supaqueue.job_stat_deltas, supaqueue.job_counts, supaqueue.job_minute_stats to service_role;

-- ---------------------------------------------------------------------------------------------------
-- Folding deltas into counts and per-minute history
-- ---------------------------------------------------------------------------------------------------

/**
 * Folds up to max_rows deltas into job_counts and job_minute_stats (per tenant and the all-tenants
 * totals) and prunes history older than the retention. One folder at a time: a caller that cannot
 * take the lock returns 0 at once (someone else is folding). Returns the number of deltas folded.
 */
create function supaqueue.fold_job_stats(max_rows integer default null) returns integer
language plpgsql volatile set search_path = ''
as $$
declare
  v_all constant uuid := supaqueue.all_tenants();
  v_folded integer;
begin
  if not exists (select 1 from supaqueue.job_stat_deltas) or not pg_try_advisory_xact_lock(hashtext('supaqueue.fold_job_stats')) then
    return 0;
  end if;
  with taken as (
    delete from supaqueue.job_stat_deltas d
    where d.ctid = any (array(select x.ctid from supaqueue.job_stat_deltas x
                              limit coalesce(max_rows, supaqueue.stats_fold_batch())))
    returning d.*
  ), scoped as (
    select t.tenant_id, t.type, t.status, t.delta, t.finished, t.at from taken t
    union all
    select v_all, t.type, t.status, t.delta, t.finished, t.at from taken t
  ), counts as (
    insert into supaqueue.job_counts as c (tenant_id, type, status, n)
    select s.tenant_id, s.type, s.status, sum(s.delta) from scoped s
    group by 1, 2, 3 having sum(s.delta) <> 0
    on conflict (tenant_id, type, status) do update set n = c.n + excluded.n
  ), minutes as (
    insert into supaqueue.job_minute_stats as m (tenant_id, minute, completed, failed)
    select s.tenant_id, date_trunc('minute', s.at),
           coalesce(sum(s.delta) filter (where s.status = 'completed'), 0),
           coalesce(sum(s.delta) filter (where s.status = 'failed'), 0)
    from scoped s where s.finished
    group by 1, 2
    on conflict (tenant_id, minute) do update
      set completed = m.completed + excluded.completed, failed = m.failed + excluded.failed
  )
  select count(*) into v_folded from taken;
  delete from supaqueue.job_minute_stats m
  where m.ctid = any (array(select x.ctid from supaqueue.job_minute_stats x
                            where x.minute < now() - supaqueue.stats_history_retention() limit 10000));
  return v_folded;
end
$$;

/** Statement-level trigger on job_queue: the net change per (tenant, type, status), appended. */
create function supaqueue.record_job_stat_deltas() returns trigger
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: whoever changes job_queue (workers as service_role, the engine's definer helpers,
-- the owner) must be able to append to the private deltas table, which no API role may write.
begin
  if tg_op = 'INSERT' then
    insert into supaqueue.job_stat_deltas (tenant_id, type, status, delta)
    select n.tenant_id, n.type, n.status, count(*) from new_rows n group by 1, 2, 3;
  elsif tg_op = 'DELETE' then
    insert into supaqueue.job_stat_deltas (tenant_id, type, status, delta)
    select o.tenant_id, o.type, o.status, -count(*) from old_rows o group by 1, 2, 3;
  else
    insert into supaqueue.job_stat_deltas (tenant_id, type, status, delta, finished)
    select c.tenant_id, c.type, c.status, sum(c.d), sum(c.d) > 0 and c.status in ('completed', 'failed')
    from (select n.tenant_id, n.type, n.status, 1 as d from new_rows n
          union all
          select o.tenant_id, o.type, o.status, -1 from old_rows o) c
    group by 1, 2, 3 having sum(c.d) <> 0;
  end if;
  -- No folding here: a fold inside a claim, heartbeat or settle would put its cost (up to
  -- stats_fold_batch() rows) on the hot path at random. Stats reads and run_maintenance fold.
  return null;
end
$$;

/** TRUNCATE of job_queue empties the stats too (row triggers cannot see a truncate). */
create function supaqueue.reset_job_stats() returns trigger
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: the stats tables are private; whoever may truncate job_queue resets them.
begin
  truncate supaqueue.job_stat_deltas, supaqueue.job_counts, supaqueue.job_minute_stats;
  return null;
end
$$;

create trigger job_queue_stats_insert after insert on public.job_queue
  referencing new table as new_rows for each statement execute function supaqueue.record_job_stat_deltas();
create trigger job_queue_stats_update after update on public.job_queue
  referencing old table as old_rows new table as new_rows for each statement execute function supaqueue.record_job_stat_deltas();
create trigger job_queue_stats_delete after delete on public.job_queue
  referencing old table as old_rows for each statement execute function supaqueue.record_job_stat_deltas();
create trigger job_queue_stats_truncate after truncate on public.job_queue
  for each statement execute function supaqueue.reset_job_stats();

-- Existing jobs: counted once, here (the triggers above hold their lock on job_queue until this
-- migration commits, so no change slips between the count and the triggers).
insert into supaqueue.job_counts (tenant_id, type, status, n)
select j.tenant_id, j.type, j.status, count(*) from public.job_queue j group by 1, 2, 3
union all
select supaqueue.all_tenants(), j.type, j.status, count(*) from public.job_queue j group by 2, 3;

insert into supaqueue.job_minute_stats (tenant_id, minute, completed, failed)
select k.tenant_id, k.minute, count(*) filter (where k.status = 'completed'), count(*) filter (where k.status = 'failed')
from (select j.tenant_id, date_trunc('minute', j.completed_at) as minute, j.status from public.job_queue j
      where j.status in ('completed', 'failed') and j.completed_at > now() - supaqueue.stats_history_retention()
      union all
      select supaqueue.all_tenants(), date_trunc('minute', j.completed_at), j.status from public.job_queue j
      where j.status in ('completed', 'failed') and j.completed_at > now() - supaqueue.stats_history_retention()) k
group by 1, 2;

-- ---------------------------------------------------------------------------------------------------
-- Reading: the overview. plpgsql, not sql: Postgres 17 plans a SQL function's query on every call,
-- while plpgsql keeps each statement's plan for the session (the API's pooled connections).
-- ---------------------------------------------------------------------------------------------------

/** Jobs by status, and by type and status, for a scope (tenant ids, or {all_tenants()} for all). */
create function supaqueue.stats_counts(scope uuid[]) returns jsonb
language plpgsql stable set search_path = ''
as $$
begin
  return (
      with c as (
        select c.type, c.status, sum(c.n)::bigint as n from supaqueue.job_counts c
        where c.tenant_id = any (scope) group by 1, 2 having sum(c.n) <> 0
      )
      select jsonb_build_object(
        'by_status', (select jsonb_object_agg(s.status::text, coalesce((select sum(c.n) from c where c.status = s.status), 0))
                      from unnest(enum_range(null::public.job_status)) s(status)),
        'by_type', coalesce((select jsonb_agg(t.row order by t.total desc, t.type) from (
            select c.type, sum(c.n) as total,
                   jsonb_build_object('type', c.type) || jsonb_object_agg(c.status, c.n) as row
            from c group by c.type order by 2 desc limit 100) t), '[]'::jsonb))
  );
end
$$;

/**
 * Completed and failed jobs per bucket over the last `hours` (1: per minute; 24: per 10 minutes),
 * every bucket present (zeros included) so a chart's x axis is continuous.
 */
create function supaqueue.stats_history(scope uuid[], hours integer) returns jsonb
language plpgsql stable set search_path = ''
as $$
begin
  return (
      with b as (
        select case when hours <= 1 then interval '1 minute' else interval '10 minutes' end as step
      ), buckets as (
        select g as t from b, generate_series(date_bin(b.step, now() - make_interval(hours => hours), timestamptz '2000-01-01'),
                                              now(), b.step) g
      ), m as (
        select date_bin(b.step, m.minute, timestamptz '2000-01-01') as t, sum(m.completed) as completed, sum(m.failed) as failed
        from supaqueue.job_minute_stats m, b
        where m.tenant_id = any (scope) and m.minute >= now() - make_interval(hours => hours) - b.step
        group by 1
      )
      select jsonb_build_object(
        'step_seconds', (select extract(epoch from step)::int from b),
        'points', coalesce(jsonb_agg(jsonb_build_array(extract(epoch from k.t)::bigint, coalesce(m.completed, 0), coalesce(m.failed, 0)) order by k.t), '[]'::jsonb))
      from buckets k left join m on m.t = k.t
  );
end
$$;

/** The jobs running now (at most 10, longest running first), from the lease index. */
create function supaqueue.stats_running(scope uuid[]) returns jsonb
language plpgsql stable set search_path = ''
as $$
begin
  return (
      select coalesce(jsonb_agg(jsonb_build_object('id', r.id, 'tenant_id', r.tenant_id, 'type', r.type,
               'started_at', r.started_at, 'attempts', r.attempts, 'progress', r.progress) order by r.started_at), '[]'::jsonb)
      from (select j.id, j.tenant_id, j.type, j.started_at, j.attempts, j.progress
            from public.job_queue j
            where j.status = 'processing' and j.locked_until is not null
              and (scope = array[supaqueue.all_tenants()] or j.tenant_id = any (scope))
            order by j.locked_until limit 10) r
  );
end
$$;

/**
 * The oldest waiting job: the head of each tenant's ready line (smallest fair tag, one index probe per
 * tenant). For all tenants, only tenants with pending jobs are probed, at most stats_max_probes()
 * (`partial` says when more had some).
 */
create function supaqueue.stats_oldest_waiting(scope uuid[]) returns jsonb
language plpgsql stable set search_path = ''
as $$
begin
  return (
      with tenants as (
        select c.tenant_id from supaqueue.job_counts c
        where c.status = 'pending' and c.n > 0 and c.tenant_id <> supaqueue.all_tenants()
          and (scope = array[supaqueue.all_tenants()] or c.tenant_id = any (scope))
        group by c.tenant_id
      ), probed as (
        select t.tenant_id from tenants t limit supaqueue.stats_max_probes()
      ), heads as (
        select h.* from probed p cross join lateral (
          select j.id, j.tenant_id, j.scheduled_at from public.job_queue j
          where j.tenant_id = p.tenant_id and j.status = 'pending' and j.fair_key is not null
          order by j.fair_key limit 1) h
      )
      select jsonb_build_object(
        'job_id', o.id, 'tenant_id', o.tenant_id, 'since', o.scheduled_at,
        'age_seconds', greatest(0, extract(epoch from now() - o.scheduled_at)),
        'partial', (select count(*) from tenants) > supaqueue.stats_max_probes())
      from (select 1) one left join lateral (select * from heads order by scheduled_at limit 1) o on true
  );
end
$$;

/** One tenant's limits and usage (counters, and its schedules: at most max_schedules rows). */
create function supaqueue.stats_limits(tenant_id uuid) returns jsonb
language plpgsql stable set search_path = ''
as $$
begin
  return (
      select jsonb_build_object(
        'max_concurrent_jobs', t.max_concurrent_jobs, 'max_queued_jobs', t.max_queued_jobs,
        'max_user_priority', t.max_user_priority, 'max_schedules', t.max_schedules,
        'default_max_queued_jobs', supaqueue.default_max_queued_jobs(),
        'running', coalesce((select sum(c.n) from supaqueue.job_counts c where c.tenant_id = t.id and c.status = 'processing'), 0),
        'queued', coalesce((select sum(c.n) from supaqueue.job_counts c where c.tenant_id = t.id and c.status in ('pending', 'processing')), 0),
        'schedules', (select count(*) from public.job_schedules s where s.tenant_id = t.id))
      from public.tenants t where t.id = stats_limits.tenant_id
  );
end
$$;

/**
 * The overview for a scope the caller may see. tenant_id null: all tenants for the service role and
 * super admins, the caller's own tenants for members. Folds pending deltas first (bounded, skipped
 * when another fold runs). A tenant the caller cannot see is QJ002, exactly like a missing one.
 */
create function supaqueue.job_stats(tenant_id uuid, hours integer, caller uuid) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_super boolean := caller is null or exists (select 1 from supaqueue.super_admins s where s.user_id = caller);
  v_scope uuid[];
begin
  if hours is null or hours not in (1, 24) then
    perform supaqueue.invalid('hours must be 1 or 24');
  end if;
  if job_stats.tenant_id is not null then
    if not (v_super or exists (select 1 from public.tenant_members m where m.tenant_id = job_stats.tenant_id and m.user_id = caller))
       or not exists (select 1 from public.tenants t where t.id = job_stats.tenant_id) then
      raise exception 'tenant not found' using errcode = 'QJ002';
    end if;
    v_scope := array[job_stats.tenant_id];
  elsif v_super then
    v_scope := array[supaqueue.all_tenants()];
  else
    v_scope := array(select m.tenant_id from public.tenant_members m where m.user_id = caller);
  end if;
  perform supaqueue.fold_job_stats();
  return jsonb_build_object(
    'scope', case when v_scope = array[supaqueue.all_tenants()] then 'all' else 'tenants' end,
    'tenant_ids', case when v_scope = array[supaqueue.all_tenants()] then null else to_jsonb(v_scope) end,
    'counts', supaqueue.stats_counts(v_scope),
    'running', supaqueue.stats_running(v_scope),
    'oldest_waiting', supaqueue.stats_oldest_waiting(v_scope),
    'history', supaqueue.stats_history(v_scope, hours),
    'limits', case when job_stats.tenant_id is not null then supaqueue.stats_limits(job_stats.tenant_id) end,
    'at', now());
end
$$;

/** Member path of job_stats: the caller is always auth.uid(). */
create function supaqueue.job_stats_as_member(tenant_id uuid, hours integer) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: the counters, deltas and history are private tables, and the oldest-job probe
-- reads fair_key, which members may not select; job_stats checks the caller may see the scope.
declare
  v_user uuid := (select auth.uid());
begin
  if v_user is null then
    raise exception 'sign in required' using errcode = 'QJ008';
  end if;
  return supaqueue.job_stats(tenant_id, hours, v_user);
end
$$;

/** The dashboard's overview (see supaqueue.job_stats). */
create function public.job_stats(tenant_id uuid default null, hours integer default 1) returns jsonb
language plpgsql volatile set search_path = ''
as $$
begin
  if current_user = 'anon' then
    raise exception 'sign in required' using errcode = 'QJ008';
  elsif supaqueue.caller_kind() = 'user' then
    return supaqueue.job_stats_as_member(tenant_id, hours);
  else
    return supaqueue.job_stats(tenant_id, hours, null);
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Bulk retry/cancel: tenant admins and super admins; each job by the single-job rules
-- ---------------------------------------------------------------------------------------------------

/**
 * Retries or cancels the given jobs (at most max_bulk_jobs()) by the same functions and rules as one
 * job at a time (quota, attempts, states). Jobs not in a state the action applies to are skipped, not
 * an error. Signed-in callers must be an admin of every affected tenant or a super admin (QJ010); jobs
 * they cannot see are skipped like missing ones. All or nothing. Returns the jobs acted on; with
 * dry_run, the jobs it would act on (after the same access check), unchanged.
 */
create function public.act_on_jobs(action text, job_ids uuid[], extra_attempts integer default 0, dry_run boolean default false)
returns table (job_id uuid, status public.job_status)
language plpgsql volatile set search_path = ''
as $$
declare
  v_id uuid;
  v_status public.job_status;
begin
  if current_user = 'anon' then
    raise exception 'sign in required' using errcode = 'QJ008';
  end if;
  if action is null or action not in ('retry', 'cancel') then
    raise exception 'action must be retry or cancel' using errcode = 'QJ001';
  end if;
  if job_ids is null or cardinality(job_ids) > supaqueue.max_bulk_jobs() then
    raise exception 'give at most % job ids', supaqueue.max_bulk_jobs() using errcode = 'QJ001';
  end if;
  if supaqueue.caller_kind() = 'user' and not (select supaqueue.is_super_admin()) and exists (
    select 1 from public.job_queue j where j.id = any (job_ids)
      and not supaqueue.has_tenant_role(j.tenant_id, 'admin')) then
    raise exception 'bulk actions need a tenant admin' using errcode = 'QJ010';
  end if;
  for v_id in
    select j.id from public.job_queue j
    where j.id = any (job_ids)
      and case when action = 'retry'
               then j.status in ('failed', 'cancelled') and j.attempts < j.max_attempts + coalesce(extra_attempts, 0)
               else j.status in ('pending', 'processing') and j.cancel_requested_at is null end
    order by j.id
  loop
    if dry_run then
      select j.status into v_status from public.job_queue j where j.id = v_id;
    elsif action = 'retry' then
      select r.status into v_status from public.retry_job(v_id, coalesce(extra_attempts, 0)) r;
    else
      select r.status into v_status from public.cancel_job(v_id) r;
    end if;
    job_id := v_id;
    status := v_status;
    return next;
  end loop;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Grants
-- ---------------------------------------------------------------------------------------------------
revoke all on function supaqueue.max_bulk_jobs(), supaqueue.stats_fold_batch(), supaqueue.stats_history_retention(),
  supaqueue.stats_max_probes(), supaqueue.all_tenants(), supaqueue.fold_job_stats(integer),
  supaqueue.record_job_stat_deltas(), supaqueue.reset_job_stats(), supaqueue.stats_counts(uuid[]),
  supaqueue.stats_history(uuid[], integer), supaqueue.stats_running(uuid[]), supaqueue.stats_oldest_waiting(uuid[]),
  supaqueue.stats_limits(uuid), supaqueue.job_stats(uuid, integer, uuid), supaqueue.job_stats_as_member(uuid, integer)
  from public, anon, authenticated;
grant execute on function supaqueue.max_bulk_jobs(), supaqueue.all_tenants() to authenticated, service_role;
grant execute on function supaqueue.stats_fold_batch(), supaqueue.stats_history_retention(), supaqueue.stats_max_probes(),
  supaqueue.fold_job_stats(integer), supaqueue.stats_counts(uuid[]), supaqueue.stats_history(uuid[], integer),
  supaqueue.stats_running(uuid[]), supaqueue.stats_oldest_waiting(uuid[]), supaqueue.stats_limits(uuid),
  supaqueue.job_stats(uuid, integer, uuid) to service_role;
grant execute on function supaqueue.job_stats_as_member(uuid, integer) to authenticated;

revoke all on function public.job_stats(uuid, integer), public.act_on_jobs(text, uuid[], integer, boolean) from public, anon;
grant execute on function public.job_stats(uuid, integer), public.act_on_jobs(text, uuid[], integer, boolean) to authenticated, service_role;
