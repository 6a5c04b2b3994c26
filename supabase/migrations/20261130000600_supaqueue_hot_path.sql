-- supaqueue: the hot path (issue 11). Scheduling state leaves the job record.
--
-- Until 0.1.0 a job's ready order (fair_key), lease (locked_until) and due time lived in the same wide,
-- RLS-protected row that tenants read, and every heartbeat rewrote that row into several indexes. Now:
--   * public.job_queue is the durable record. It is written at enqueue, claim and settle, and by user
--     actions (cancel, retry) and progress; never by heartbeats, promotion or lease bookkeeping. No
--     index covers a column the claim changes (status, attempts, worker_id, lease_id, started_at), so
--     a claim is a HOT update when its page has room (fillfactor below).
--   * supaqueue.job_ready: the ready line (one narrow row per claimable job, deleted by the claim).
--   * supaqueue.job_delayed: delayed and retrying jobs until due_at (deleted on promotion).
--   * supaqueue.job_leases: one row per running job (deleted by its settle or when its worker dies).
--   * supaqueue.workers: liveness per worker, not per job. A heartbeat updates one small row per
--     worker (a HOT update), whatever the number of jobs it holds.
-- A pending job has exactly one row in job_ready or job_delayed; a processing job one in job_leases;
-- a finished job none.
--
-- Liveness. A worker is dead when
--   (a) its expires_at passed (it stopped heartbeating for a whole lease: the fallback that works
--       everywhere, also through poolers), or
--   (b) it registered its heartbeat session (track_session), that session is gone, and its last sign
--       of life (its last heartbeat, or the server's start if Postgres restarted since) is older than
--       worker_session_grace(): a killed process closes its connection, so its jobs are freed about a
--       second after its last heartbeat instead of a lease later. The grace (two heartbeats) lets a
--       live worker whose connection was replaced, or that is reconnecting after a server restart,
--       register its new session first.
-- Dead workers' leases are freed by the next heartbeat of any worker and by run_maintenance; a claim
-- also frees those of workers whose lease time has passed (its cheap check sees only expires_at).
--
-- Lock order, the same on every path, so no two of them can deadlock:
--   job_delayed row -> job_ready row -> job_leases row -> job_queue row -> tenant_limits rows (in
--   tenant order); workers rows are locked alone (heartbeat) or skipped when locked (reaper).

-- ---------------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------------

create table supaqueue.job_ready (
  job_id uuid primary key,
  tenant_id uuid not null,
  type text not null,
  priority smallint not null,
  -- Start-time fair queueing tag: see fair_base.
  fair_key bigint not null
);
-- The claim walks this in order and stops after batch_size rows.
create index job_ready_claim_idx on supaqueue.job_ready (priority desc, fair_key);
-- A tenant's newest tag (fair_base), its head (oldest waiting) and its quota count.
create index job_ready_tenant_idx on supaqueue.job_ready (tenant_id, fair_key);
comment on table supaqueue.job_ready is 'The ready line: one row per pending job that can run now. Deleted by claim_jobs.';

create table supaqueue.job_delayed (
  job_id uuid primary key,
  tenant_id uuid not null,
  type text not null,
  priority smallint not null,
  due_at timestamptz not null
);
create index job_delayed_due_idx on supaqueue.job_delayed (due_at);
create index job_delayed_tenant_idx on supaqueue.job_delayed (tenant_id);
comment on table supaqueue.job_delayed is 'Pending jobs waiting for due_at (delays, retry backoff, released and reclaimed jobs). Promoted into job_ready.';

create table supaqueue.job_leases (
  job_id uuid primary key,
  lease_id uuid not null,
  worker_id text not null,
  tenant_id uuid not null,
  claimed_at timestamptz not null default now()
);
create index job_leases_worker_idx on supaqueue.job_leases (worker_id);
create index job_leases_tenant_idx on supaqueue.job_leases (tenant_id, claimed_at);
comment on table supaqueue.job_leases is 'One row per running job: who holds it, and the lease id that fences its settle.';

create table supaqueue.workers (
  id text primary key,
  -- The backend pid of the worker's heartbeat connection (track_session).
  session_pid integer,
  heartbeat_at timestamptz not null default now(),
  expires_at timestamptz not null
) with (fillfactor = 50);
comment on table supaqueue.workers is 'Worker liveness: one row per worker holding jobs, renewed by its heartbeat.';

-- Narrow, churning tables: vacuum and analyze early (as job_queue).
alter table supaqueue.job_ready set (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_insert_scale_factor = 0.02);
alter table supaqueue.job_delayed set (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_insert_scale_factor = 0.02);
alter table supaqueue.job_leases set (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_insert_scale_factor = 0.02);

alter table supaqueue.job_ready enable row level security;
alter table supaqueue.job_delayed enable row level security;
alter table supaqueue.job_leases enable row level security;
alter table supaqueue.workers enable row level security;
revoke all on supaqueue.job_ready, supaqueue.job_delayed, supaqueue.job_leases, supaqueue.workers from public, anon, authenticated;
grant select, insert, update, delete on supaqueue.job_ready, supaqueue.job_delayed, supaqueue.job_leases, supaqueue.workers to service_role;

-- ---------------------------------------------------------------------------------------------------
-- Convert a live database: every pending, delayed and leased job keeps its place
-- ---------------------------------------------------------------------------------------------------
-- The CLI applies a migration as one implicit transaction; LOCK needs a block, hence the DO. Held until
-- the migration commits: no enqueue, claim or settle can slip between the copy and the column drops.
do $$ begin lock table public.job_queue in exclusive mode; end $$;

insert into supaqueue.job_ready (job_id, tenant_id, type, priority, fair_key)
select j.id, j.tenant_id, j.type, j.priority, j.fair_key from public.job_queue j
where j.status = 'pending' and j.fair_key is not null;

insert into supaqueue.job_delayed (job_id, tenant_id, type, priority, due_at)
select j.id, j.tenant_id, j.type, j.priority, j.scheduled_at from public.job_queue j
where j.status = 'pending' and j.fair_key is null;

insert into supaqueue.job_leases (job_id, lease_id, worker_id, tenant_id, claimed_at)
select j.id, j.lease_id, j.worker_id, j.tenant_id, coalesce(j.started_at, now()) from public.job_queue j
where j.status = 'processing';

-- Running 0.1.0 workers keep their jobs: each worker's lease lasts as long as its longest job lease did,
-- and its heartbeats (heartbeat_jobs without a worker_id) renew it from then on.
insert into supaqueue.workers (id, heartbeat_at, expires_at)
select j.worker_id, now(), max(j.locked_until) from public.job_queue j
where j.status = 'processing' group by j.worker_id;

drop index public.job_queue_claim_idx;
drop index public.job_queue_due_idx;
drop index public.job_queue_tenant_active_idx;
drop index public.job_queue_lease_idx;
alter table public.job_queue
  drop constraint lease_iff_processing,
  drop constraint fair_key_only_when_pending,
  drop column fair_key,
  drop column locked_until,
  add constraint lease_iff_processing check ((status = 'processing') = (lease_id is not null)),
  add constraint processing_has_worker check (status <> 'processing' or worker_id is not null);
-- The retention purge finds finished jobs through a BRIN index: since Postgres 16 a BRIN (summarizing)
-- index does not prevent HOT updates, so setting completed_at at the settle keeps the update HOT, where
-- the B-tree it replaces made every settle write a new entry into each of the table's indexes.
drop index public.job_queue_finished_idx;
create index job_queue_completed_at_brin on public.job_queue using brin (completed_at);
-- Room on each page for the new row versions of claims, settles and progress: HOT updates need it on
-- the same page.
alter table public.job_queue set (fillfactor = 80);

-- ---------------------------------------------------------------------------------------------------
-- Rules written once
-- ---------------------------------------------------------------------------------------------------

/** How long a worker's registered session must have been seen gone before its jobs are freed. */
create function supaqueue.worker_session_grace() returns interval
language sql immutable parallel safe set search_path = ''
as $$ select interval '1 second' $$;
revoke all on function supaqueue.worker_session_grace() from public, anon, authenticated;
grant execute on function supaqueue.worker_session_grace() to service_role;

/**
 * The fair tag a tenant's next ready job of a given priority starts from: start-time fair queueing.
 * A tenant's tags continue after its own newest ready tag; a tenant with nothing ready starts at the
 * front of the ready line (the smallest ready tag of that priority). Claims take the smallest tags
 * first, so tenants with ready work are served round-robin, however deep one tenant's backlog is.
 * Two index probes on job_ready.
 */
create or replace function supaqueue.fair_base(tenant_id uuid, priority smallint) returns bigint
language sql stable set search_path = ''
as $$
  select greatest(
    coalesce((select r.fair_key from supaqueue.job_ready r
              where r.priority = fair_base.priority
              order by r.priority desc, r.fair_key limit 1), 0),
    coalesce((select r.fair_key + 1 from supaqueue.job_ready r
              where r.tenant_id = fair_base.tenant_id
              order by r.tenant_id, r.fair_key desc limit 1), 0)
  )
$$;

/** The tenant's pending and running jobs, counted up to `upto` (three index ranges of the narrow tables). */
create function supaqueue.active_jobs(tenant_id uuid, upto integer) returns bigint
language sql stable set search_path = ''
as $$
  select count(*) from (
    select 1 from supaqueue.job_ready r where r.tenant_id = active_jobs.tenant_id
    union all select 1 from supaqueue.job_delayed d where d.tenant_id = active_jobs.tenant_id
    union all select 1 from supaqueue.job_leases l where l.tenant_id = active_jobs.tenant_id
    limit upto) q
$$;
revoke all on function supaqueue.active_jobs(uuid, integer) from public, anon, authenticated;
grant execute on function supaqueue.active_jobs(uuid, integer) to service_role;

/** QJ006 unless `adding` more pending jobs fit the quota (null = no quota). Call under lock_queue_quota. */
create or replace function supaqueue.check_queue_room(tenant_id uuid, quota integer, adding bigint) returns void
language plpgsql stable set search_path = ''
as $$
begin
  if quota is not null and adding > 0 and supaqueue.active_jobs(check_queue_room.tenant_id, quota) + adding > quota then
    raise exception 'tenant has reached its limit of % queued jobs', quota
      using errcode = 'QJ006', detail = check_queue_room.tenant_id::text;
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Enqueue: the record, plus one narrow row in the ready line or the delayed set
-- ---------------------------------------------------------------------------------------------------

/**
 * Inserts parsed job specs: quota per tenant (tenant_driven: see queue_quota), per-user active-job
 * limits (reserve_user_slots), JSON depth, fair tags, idempotency. Returns (job_id, created) per spec, in
 * input order. Errors: QJ001, QJ002, QJ006, QJ012.
 */
create or replace function supaqueue.insert_job_specs(specs supaqueue.job_spec[], tenant_driven boolean)
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
  perform supaqueue.reserve_user_slots(v_specs);

  with bases as materialized (
    -- fair_base once per (tenant, priority), not per job.
    select d.tenant_id, d.priority, supaqueue.fair_base(d.tenant_id, d.priority::smallint) as base
    from (select distinct s2.tenant_id, s2.priority from unnest(v_specs) s2 where s2.scheduled_at <= now()) d
  ),
  tags as (
    select s.id, g.base + row_number() over (partition by s.tenant_id, s.priority order by s.n) - 1 as fair_key
    from unnest(v_specs) s
    join bases g on g.tenant_id = s.tenant_id and g.priority = s.priority
    where s.scheduled_at <= now()
  ),
  ins as (
    insert into public.job_queue (id, tenant_id, type, payload, priority, scheduled_at, max_attempts, idempotency_key,
                                  trace_id, actor_id, request_id, submitted_by, backoff_base_ms, backoff_max_ms)
    select s.id, s.tenant_id, s.type, s.payload, s.priority, greatest(s.scheduled_at, now()), s.max_attempts, s.idempotency_key,
           s.trace_id, s.actor_id, s.request_id, s.submitted_by, s.backoff_base_ms, s.backoff_max_ms
    from unnest(v_specs) s
    order by s.n
    on conflict (tenant_id, idempotency_key) where idempotency_key is not null do nothing
    returning id, tenant_id, type, priority, scheduled_at
  ),
  ready as (
    insert into supaqueue.job_ready (job_id, tenant_id, type, priority, fair_key)
    select i.id, i.tenant_id, i.type, i.priority, t.fair_key from ins i join tags t on t.id = i.id
  ),
  delayed as (
    insert into supaqueue.job_delayed (job_id, tenant_id, type, priority, due_at)
    select i.id, i.tenant_id, i.type, i.priority, i.scheduled_at from ins i
    where not exists (select 1 from tags t where t.id = i.id)
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

/**
 * The service path's enqueue (see the engine migration), in plpgsql: Postgres plans a SQL function's
 * query at every call, plpgsql once per session (measured: it is most of a single enqueue_job's time
 * outside the insert itself).
 */
create or replace function supaqueue.insert_jobs(jobs jsonb) returns table (job_id uuid, created boolean)
language plpgsql volatile set search_path = ''
as $$
begin
  return query select * from supaqueue.insert_job_specs(supaqueue.parse_job_specs(insert_jobs.jobs), false);
end
$$;

/** Enqueue one job; returns (job_id, created). Same rules and errors as enqueue_jobs. plpgsql: see insert_jobs. */
create or replace function public.enqueue_job(
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
language plpgsql volatile set search_path = ''
as $$
begin
  return query select * from public.enqueue_jobs(jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
    'tenant_id', enqueue_job.tenant_id, 'type', enqueue_job.type, 'payload', enqueue_job.payload,
    'priority', enqueue_job.priority, 'run_at', enqueue_job.run_at, 'delay_ms', enqueue_job.delay_ms,
    'max_attempts', enqueue_job.max_attempts, 'idempotency_key', enqueue_job.idempotency_key,
    'trace_id', enqueue_job.trace_id, 'actor_id', enqueue_job.actor_id, 'request_id', enqueue_job.request_id,
    'backoff_base_ms', enqueue_job.backoff_base_ms, 'backoff_max_ms', enqueue_job.backoff_max_ms))));
end
$$;

-- Wake-up hint for idle workers: one notification per inserting statement that made ready work.
create or replace function supaqueue.tg_job_queue__notify_insert() returns trigger
language plpgsql set search_path = ''
as $$
begin
  if exists (select 1 from new_jobs n where n.scheduled_at <= now()) then
    perform pg_notify('supaqueue_jobs', '');
  end if;
  return null;
end
$$;

/**
 * Deleting job records (retention purge of finished jobs, a tenant's deletion, a service-role DELETE)
 * also deletes their scheduling rows, and gives back running jobs' concurrency slots.
 */
create function supaqueue.tg_job_queue__forget_deleted() returns trigger
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: the scheduling tables are private; whoever may delete jobs may drop their rows.
begin
  if not exists (select 1 from old_rows o where o.status in ('pending', 'processing')) then
    return null; -- purges delete finished jobs only: nothing to do
  end if;
  delete from supaqueue.job_delayed d where d.job_id in (select o.id from old_rows o where o.status = 'pending');
  delete from supaqueue.job_ready r where r.job_id in (select o.id from old_rows o where o.status = 'pending');
  delete from supaqueue.job_leases l where l.job_id in (select o.id from old_rows o where o.status = 'processing');
  perform supaqueue.release_running(array(select o.tenant_id from old_rows o where o.status = 'processing'));
  return null;
end
$$;
revoke all on function supaqueue.tg_job_queue__forget_deleted() from public, anon, authenticated;
create trigger job_queue_forget_deleted after delete on public.job_queue
  referencing old table as old_rows for each statement execute function supaqueue.tg_job_queue__forget_deleted();

/** TRUNCATE of job_queue empties the scheduling tables and the running counters too. */
create function supaqueue.tg_job_queue__forget_truncated() returns trigger
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: as above.
begin
  truncate supaqueue.job_ready, supaqueue.job_delayed, supaqueue.job_leases;
  update supaqueue.tenant_limits l set running = 0 where l.running <> 0;
  return null;
end
$$;
revoke all on function supaqueue.tg_job_queue__forget_truncated() from public, anon, authenticated;
create trigger job_queue_forget_truncated after truncate on public.job_queue
  for each statement execute function supaqueue.tg_job_queue__forget_truncated();

-- ---------------------------------------------------------------------------------------------------
-- Promotion and the claim
-- ---------------------------------------------------------------------------------------------------

/**
 * Moves due delayed jobs into the ready line with their fair tags. Bounded, and SKIP LOCKED so
 * concurrent claimers share the work instead of queueing on it. Returns how many were promoted.
 */
create or replace function supaqueue.promote_due_jobs(max_jobs integer default 1000) returns integer
language plpgsql volatile set search_path = ''
as $$
declare
  v_count integer;
begin
  with due as (
    select d.job_id from supaqueue.job_delayed d
    where d.due_at <= now()
    order by d.due_at
    limit max_jobs
    for update skip locked
  ),
  gone as (
    delete from supaqueue.job_delayed d using due where d.job_id = due.job_id
    returning d.job_id, d.tenant_id, d.type, d.priority, d.due_at
  ),
  bases as materialized (
    select x.tenant_id, x.priority, supaqueue.fair_base(x.tenant_id, x.priority) as base
    from (select distinct g.tenant_id, g.priority from gone g) x
  ),
  ins as (
    insert into supaqueue.job_ready (job_id, tenant_id, type, priority, fair_key)
    select g.job_id, g.tenant_id, g.type, g.priority,
           b.base + row_number() over (partition by g.tenant_id, g.priority order by g.due_at, g.job_id) - 1
    from gone g join bases b on b.tenant_id = g.tenant_id and b.priority = g.priority
    returning 1
  )
  select count(*) into v_count from ins;
  return v_count;
end
$$;

/** Renews (or creates) a worker's row until now + lease_seconds; never shortens it. */
create function supaqueue.touch_worker(worker_id text, lease_seconds double precision) returns void
language plpgsql volatile set search_path = ''
as $$
begin
  insert into supaqueue.workers as w (id, expires_at)
  values (touch_worker.worker_id, now() + make_interval(secs => touch_worker.lease_seconds))
  on conflict (id) do update set expires_at = greatest(w.expires_at, excluded.expires_at);
end
$$;
revoke all on function supaqueue.touch_worker(text, double precision) from public, anon, authenticated;
grant execute on function supaqueue.touch_worker(text, double precision) to service_role;

/**
 * The claim when no tenant has a concurrency limit: one FOR UPDATE SKIP LOCKED pick of the first
 * ready rows in (priority desc, fair tag) order, which are deleted, leased, and marked processing in
 * the job record (one UPDATE, HOT when the page has room).
 */
create function supaqueue.claim_ready(worker_id text, types text[], batch_size integer)
returns setof public.job_queue
language plpgsql volatile set search_path = ''
as $$
begin
  return query
  with picked as materialized (
    select r.job_id from supaqueue.job_ready r
    where claim_ready.types is null or r.type = any (claim_ready.types)
    order by r.priority desc, r.fair_key
    limit claim_ready.batch_size
    for update skip locked
  ),
  taken as (
    delete from supaqueue.job_ready r using picked p where r.job_id = p.job_id
    returning r.job_id, r.tenant_id
  ),
  leased as (
    insert into supaqueue.job_leases (job_id, lease_id, worker_id, tenant_id)
    select t.job_id, gen_random_uuid(), claim_ready.worker_id, t.tenant_id from taken t
    returning job_id, lease_id
  )
  update public.job_queue j
     set status = 'processing', attempts = j.attempts + 1, worker_id = claim_ready.worker_id,
         lease_id = l.lease_id, started_at = now(), updated_at = now()
    from leased l
   where j.id = l.job_id
  returning j.*;
end
$$;
revoke all on function supaqueue.claim_ready(text, text[], integer) from public, anon, authenticated;
grant execute on function supaqueue.claim_ready(text, text[], integer) to service_role;

/**
 * The claim when some tenants have max_concurrent_jobs: claim_ready plus exact limits. The pick skips
 * tenants whose counter is full; the counter rows of the limited tenants among the picked jobs are
 * locked (SKIP LOCKED: a counter another claimer holds means "not now" for that tenant) and raised in
 * the statement that leases the jobs, so two claimers can never both take a tenant's last free slot.
 * Picked rows beyond a tenant's room stay in the ready line (locked until this transaction ends).
 */
drop function supaqueue.claim_limited(text, text[], integer, double precision);
create function supaqueue.claim_limited(worker_id text, types text[], batch_size integer)
returns setof public.job_queue
language plpgsql volatile set search_path = ''
as $$
begin
  return query
  with candidates as materialized (
    select r.job_id, r.tenant_id, r.priority, r.fair_key
    from supaqueue.job_ready r
    where (claim_limited.types is null or r.type = any (claim_limited.types))
      and not exists (select 1 from supaqueue.tenant_limits l where l.tenant_id = r.tenant_id and l.running >= l.max_running)
    order by r.priority desc, r.fair_key
    limit claim_limited.batch_size
    for update of r skip locked
  ),
  limited as materialized (
    select l.tenant_id, l.max_running - l.running as room
    from supaqueue.tenant_limits l
    where l.tenant_id in (select c.tenant_id from candidates c)
    for update skip locked
  ),
  chosen as materialized (
    select x.job_id, x.tenant_id
    from (select c.job_id, c.tenant_id,
                 row_number() over (partition by c.tenant_id order by c.priority desc, c.fair_key) as rn
          from candidates c) x
    left join limited lm on lm.tenant_id = x.tenant_id
    where x.rn <= lm.room
       or (lm.tenant_id is null and not exists (select 1 from supaqueue.tenant_limits l where l.tenant_id = x.tenant_id))
  ),
  counted as (
    update supaqueue.tenant_limits l
       set running = l.running + n.cnt
      from (select ch.tenant_id, count(*) as cnt from chosen ch group by ch.tenant_id) n
     where l.tenant_id = n.tenant_id
  ),
  taken as (
    delete from supaqueue.job_ready r using chosen ch where r.job_id = ch.job_id
    returning r.job_id, r.tenant_id
  ),
  leased as (
    insert into supaqueue.job_leases (job_id, lease_id, worker_id, tenant_id)
    select t.job_id, gen_random_uuid(), claim_limited.worker_id, t.tenant_id from taken t
    returning job_id, lease_id
  )
  update public.job_queue j
     set status = 'processing', attempts = j.attempts + 1, worker_id = claim_limited.worker_id,
         lease_id = l.lease_id, started_at = now(), updated_at = now()
    from leased l
   where j.id = l.job_id
  returning j.*;
end
$$;
revoke all on function supaqueue.claim_limited(text, text[], integer) from public, anon, authenticated;
grant execute on function supaqueue.claim_limited(text, text[], integer) to service_role;

/**
 * Claims up to batch_size ready jobs for worker_id, whose lease (supaqueue.workers) then lasts at
 * least lease_seconds (default: supaqueue.default_lease_seconds(), the worker's default too) and is
 * renewed by heartbeat_jobs.
 *
 * Order: priority (higher first), then the fair tag, which serves tenants round-robin. Each claimed job
 * gets attempts + 1, started_at, and a fresh lease_id that fences its settle calls. First, what makes
 * work claimable: dead workers' jobs go back to the line (a time-expired worker is found here; a worker
 * whose session ended is found by heartbeats and maintenance), and due delayed jobs are promoted. Each
 * is one index probe when there is nothing to do. A limited pick can leave part of the batch empty
 * (jobs of a tenant beyond its free slots), so it is repeated, at most 3 passes.
 * service_role only. Errors: QJ001.
 */
create or replace function public.claim_jobs(
  worker_id text,
  types text[] default null,
  batch_size integer default 10,
  lease_seconds double precision default supaqueue.default_lease_seconds()
) returns setof public.job_queue
language plpgsql volatile set search_path = ''
as $$
declare
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
  if exists (select 1 from supaqueue.workers w where w.expires_at < now()) then
    perform supaqueue.reap_workers(greatest(claim_jobs.batch_size * 4, 100));
  end if;
  if exists (select 1 from supaqueue.job_delayed d where d.due_at <= now()) then
    perform supaqueue.promote_due_jobs(greatest(claim_jobs.batch_size * 4, 100));
  end if;

  if not exists (select 1 from supaqueue.tenant_limits l) then
    return query select * from supaqueue.claim_ready(claim_jobs.worker_id, claim_jobs.types, claim_jobs.batch_size);
    get diagnostics v_claimed = row_count;
  else
    for pass in 1..3 loop
      return query select * from supaqueue.claim_limited(claim_jobs.worker_id, claim_jobs.types, claim_jobs.batch_size - v_claimed);
      get diagnostics v_n = row_count;
      v_claimed := v_claimed + v_n;
      exit when v_n = 0 or v_claimed >= claim_jobs.batch_size;
    end loop;
  end if;
  -- The leases live as long as the worker's row: at least lease_seconds from now. Idle polls write nothing.
  if v_claimed > 0 then
    perform supaqueue.touch_worker(claim_jobs.worker_id, claim_jobs.lease_seconds);
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Settles: take the lease rows (in job order), then the job records
-- ---------------------------------------------------------------------------------------------------

/** Deletes the given leases that are still current, locking them in job order; returns the jobs. */
create function supaqueue.take_leases(ids uuid[], lease_ids uuid[]) returns table (job_id uuid, tenant_id uuid)
language plpgsql volatile set search_path = ''
as $$
begin
  return query
  with mine as (
    -- One primary-key probe per input row (LATERAL), whatever the statistics of job_leases say (see
    -- heartbeat_jobs). The input is sorted first, so the locks are taken in job order.
    select p.job_id
    from (select t.id, t.lease_id from unnest(take_leases.ids, take_leases.lease_ids) as t(id, lease_id) order by t.id) t
    cross join lateral (select x.job_id from supaqueue.job_leases x
                        where x.job_id = t.id and x.lease_id = t.lease_id for update) p
  )
  delete from supaqueue.job_leases l where l.job_id = any (array(select m.job_id from mine m))
  returning l.job_id, l.tenant_id;
end
$$;
revoke all on function supaqueue.take_leases(uuid[], uuid[]) from public, anon, authenticated;
grant execute on function supaqueue.take_leases(uuid[], uuid[]) to service_role;

/**
 * Completes jobs, storing results[i] as the result of ids[i]; returns the ids actually completed.
 * A result nested deeper than max_json_depth() is not stored: that attempt fails permanently instead
 * (status failed, or cancelled when cancellation was requested), with the reason in last_error and
 * errors, so the job is neither lost nor run again behind the user's back (retry_job can).
 */
create or replace function public.complete_jobs(ids uuid[], lease_ids uuid[], results jsonb[] default null)
returns table (id uuid)
language plpgsql volatile set search_path = ''
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
    select t.id, t.result, coalesce(jsonb_path_exists(t.result, v_depth_path), false) as too_deep
    from unnest(complete_jobs.ids, complete_jobs.results) as t(id, result)
  ),
  taken as (select * from supaqueue.take_leases(complete_jobs.ids, complete_jobs.lease_ids)),
  done as (
    update public.job_queue j
       set status = case when i.too_deep
                         then supaqueue.next_status_after_failure(j.cancel_requested_at is not null, false, j.attempts, j.max_attempts)
                         else 'completed' end,
           result = case when i.too_deep then null else i.result end,
           last_error = case when i.too_deep then v_error else j.last_error end,
           errors = case when i.too_deep then supaqueue.append_error(j.errors, jsonb_build_object(
             'attempt', j.attempts, 'at', now(), 'error', v_error, 'worker_id', j.worker_id, 'retryable', false)) else j.errors end,
           completed_at = now(), updated_at = now(), lease_id = null, cancel_requested_at = null
      from taken k join input i on i.id = k.job_id
     where j.id = k.job_id
    returning j.id, j.tenant_id, j.status
  )
  select array_agg(d.id) filter (where d.status = 'completed'), array_agg(d.tenant_id) into v_ids, v_tenants from done d;
  perform supaqueue.release_running(v_tenants);
  return query select unnest(coalesce(v_ids, '{}'));
end
$$;

/**
 * Fails the current attempt of jobs: errors[i] is recorded for ids[i] (last_error and the bounded
 * history); retryable[i] false fails it permanently. A job with attempts left waits its backoff in
 * job_delayed. Returns (id, status, scheduled_at) of the jobs this call settled; stale leases are absent.
 */
create or replace function public.fail_jobs(ids uuid[], lease_ids uuid[], errors text[], retryable boolean[] default null)
returns table (id uuid, status public.job_status, scheduled_at timestamptz)
language plpgsql volatile set search_path = ''
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
    select t.id, left(coalesce(t.error, 'unknown error'), 4000) as error, coalesce(t.retryable, true) as retryable
    from unnest(fail_jobs.ids, fail_jobs.errors,
                coalesce(fail_jobs.retryable, array_fill(true, array[cardinality(fail_jobs.ids)]))) as t(id, error, retryable)
  ),
  taken as (select * from supaqueue.take_leases(fail_jobs.ids, fail_jobs.lease_ids)),
  done as (
    update public.job_queue j
       set status = supaqueue.next_status_after_failure(j.cancel_requested_at is not null, i.retryable, j.attempts, j.max_attempts),
           scheduled_at = case
             when supaqueue.next_status_after_failure(j.cancel_requested_at is not null, i.retryable, j.attempts, j.max_attempts) = 'pending'
             then now() + supaqueue.backoff_delay(j.attempts, j.backoff_base_ms, j.backoff_max_ms) else j.scheduled_at end,
           completed_at = case
             when supaqueue.next_status_after_failure(j.cancel_requested_at is not null, i.retryable, j.attempts, j.max_attempts) = 'pending'
             then null else now() end,
           lease_id = null, cancel_requested_at = null,
           last_error = i.error,
           errors = supaqueue.append_error(j.errors, jsonb_build_object(
             'attempt', j.attempts, 'at', now(), 'error', i.error, 'worker_id', j.worker_id, 'retryable', i.retryable)),
           updated_at = now()
      from taken k join input i on i.id = k.job_id
     where j.id = k.job_id
    returning j.id, j.status, j.scheduled_at, j.tenant_id, j.type, j.priority
  ),
  requeued as (
    insert into supaqueue.job_delayed (job_id, tenant_id, type, priority, due_at)
    select d.id, d.tenant_id, d.type, d.priority, d.scheduled_at from done d where d.status = 'pending'
  )
  select array_agg(x.id), array_agg(x.status), array_agg(x.scheduled_at), array_agg(x.tenant_id)
    into v_ids, v_status, v_sched, v_tenants from done x;
  perform supaqueue.release_running(v_tenants);
  return query select * from unnest(coalesce(v_ids, '{}'), coalesce(v_status, '{}'), coalesce(v_sched, '{}'));
end
$$;

/**
 * Gives jobs back without using up an attempt (graceful shutdown, a fenced job): pending again,
 * runnable at once. A job whose cancellation was requested is cancelled instead. Returns the ids released.
 */
create or replace function public.release_jobs(ids uuid[], lease_ids uuid[]) returns table (id uuid)
language plpgsql volatile set search_path = ''
as $$
declare
  v_ids uuid[];
  v_tenants uuid[];
begin
  perform supaqueue.check_same_length(cardinality(ids), cardinality(lease_ids));
  with taken as (select * from supaqueue.take_leases(release_jobs.ids, release_jobs.lease_ids)),
  done as (
    update public.job_queue j
       set status = case when j.cancel_requested_at is not null then 'cancelled'::public.job_status else 'pending' end,
           completed_at = case when j.cancel_requested_at is not null then now() end,
           attempts = greatest(j.attempts - 1, 0), scheduled_at = now(),
           lease_id = null, cancel_requested_at = null, updated_at = now()
      from taken k
     where j.id = k.job_id
    returning j.id, j.tenant_id, j.type, j.priority, j.status, j.scheduled_at
  ),
  requeued as (
    insert into supaqueue.job_delayed (job_id, tenant_id, type, priority, due_at)
    select d.id, d.tenant_id, d.type, d.priority, d.scheduled_at from done d where d.status = 'pending'
  )
  select array_agg(d.id), array_agg(d.tenant_id) into v_ids, v_tenants from done d;
  perform supaqueue.release_running(v_tenants);
  if v_ids is not null then perform pg_notify('supaqueue_jobs', ''); end if;
  return query select unnest(coalesce(v_ids, '{}'));
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Liveness: heartbeats per worker, and the reaper
-- ---------------------------------------------------------------------------------------------------

/** The workers found dead (see the top of this migration); the session check runs only for late ones. */
create function supaqueue.dead_workers() returns setof text
language sql stable set search_path = ''
as $$
  select w.id from supaqueue.workers w
  where w.expires_at < now()
     or (w.session_pid is not null
         and greatest(w.heartbeat_at, pg_catalog.pg_postmaster_start_time()) < now() - supaqueue.worker_session_grace()
         -- Only the pid is compared, which every role may read in pg_stat_activity: a reused pid makes
         -- a dead worker look alive (it then falls back to expires_at), never the other way round.
         and not exists (select 1 from pg_catalog.pg_stat_activity a where a.pid = w.session_pid))
$$;
revoke all on function supaqueue.dead_workers() from public, anon, authenticated;
grant execute on function supaqueue.dead_workers() to service_role;

/**
 * Frees the jobs of dead workers (supaqueue.dead_workers), at most max_jobs per call: each goes back to
 * the ready line, or to failed when its attempts are used up (cancelled if cancellation was
 * requested), and idle workers are woken. Workers whose leases are all freed are forgotten. Returns how
 * many jobs were freed. Costs one look at the workers table (a few rows) when nobody is late.
 */
create function supaqueue.reap_workers(max_jobs integer) returns integer
language plpgsql volatile set search_path = ''
as $$
declare
  v_freed uuid[];
  v_tenants uuid[];
begin
  if not exists (select 1 from supaqueue.workers w
                 where w.expires_at < now() or w.heartbeat_at < now() - supaqueue.worker_session_grace()) then
    return 0;
  end if;
  with dead as materialized (
    select w.id from supaqueue.workers w
    where w.id in (select supaqueue.dead_workers())
    for update skip locked
  ),
  victims as (
    select l.job_id from supaqueue.job_leases l
    where l.worker_id in (select d.id from dead d)
    order by l.job_id
    limit reap_workers.max_jobs
    for update of l skip locked
  ),
  taken as (
    delete from supaqueue.job_leases l using victims v where l.job_id = v.job_id returning l.job_id
  ),
  done as (
    update public.job_queue j
       set status = supaqueue.next_status_after_failure(j.cancel_requested_at is not null, true, j.attempts, j.max_attempts),
           scheduled_at = now(),
           completed_at = case when supaqueue.next_status_after_failure(j.cancel_requested_at is not null, true, j.attempts, j.max_attempts) = 'pending' then null else now() end,
           lease_id = null, cancel_requested_at = null,
           last_error = 'worker ' || j.worker_id || ' stopped (its lease expired or its database session ended)',
           errors = supaqueue.append_error(j.errors, jsonb_build_object(
             'attempt', j.attempts, 'at', now(), 'error', 'lease expired', 'worker_id', j.worker_id, 'retryable', true)),
           updated_at = now()
      from taken t
     where j.id = t.job_id
    returning j.id, j.tenant_id, j.type, j.priority, j.status, j.scheduled_at
  ),
  requeued as (
    insert into supaqueue.job_delayed (job_id, tenant_id, type, priority, due_at)
    select d.id, d.tenant_id, d.type, d.priority, d.scheduled_at from done d where d.status = 'pending'
  ),
  forgotten as (
    delete from supaqueue.workers w using dead d
    where w.id = d.id and not exists (select 1 from supaqueue.job_leases l where l.worker_id = d.id and l.job_id not in (select t.job_id from taken t))
  )
  select array_agg(d.id), array_agg(d.tenant_id) into v_freed, v_tenants from done d;
  perform supaqueue.release_running(v_tenants);
  if v_freed is not null then
    -- Straight into the ready line (fair tags), so the worker this wakes claims them at once.
    perform supaqueue.promote_due_jobs(reap_workers.max_jobs);
    perform pg_notify('supaqueue_jobs', '');
  end if;
  return coalesce(cardinality(v_freed), 0);
end
$$;
revoke all on function supaqueue.reap_workers(integer) from public, anon, authenticated;
grant execute on function supaqueue.reap_workers(integer) to service_role;

/**
 * Frees the jobs of dead workers (supaqueue.reap_workers): lease expired, or session ended. Returns how
 * many. Claims, heartbeats and run_maintenance call it; kept public for operators and 0.1.0 callers.
 */
create or replace function public.reclaim_expired_jobs(max_jobs integer default 1000) returns integer
language plpgsql volatile set search_path = ''
as $$
begin
  if max_jobs is null or max_jobs not between 1 and 100000 then
    perform supaqueue.invalid('max_jobs must be between 1 and 100000');
  end if;
  return supaqueue.reap_workers(max_jobs);
end
$$;

/** Renews the worker's row and, with track_session, registers the calling session as its liveness. */
create function supaqueue.renew_worker(worker_id text, lease_seconds double precision, track_session boolean) returns void
language plpgsql volatile set search_path = ''
as $$
begin
  insert into supaqueue.workers as w (id, session_pid, heartbeat_at, expires_at)
  values (renew_worker.worker_id, case when renew_worker.track_session then pg_backend_pid() end, now(),
          now() + make_interval(secs => renew_worker.lease_seconds))
  on conflict (id) do update
    set session_pid = excluded.session_pid,
        heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at;
end
$$;
revoke all on function supaqueue.renew_worker(text, double precision, boolean) from public, anon, authenticated;
grant execute on function supaqueue.renew_worker(text, double precision, boolean) to service_role;

drop function public.heartbeat_jobs(uuid[], uuid[], double precision);
/**
 * The worker's heartbeat. Renews the worker's lease (worker_id; without it, as 0.1.0 workers call it,
 * the workers holding the given leases) to now + lease_seconds, writing one small row per worker and
 * no job record. With track_session, the calling session becomes the worker's liveness: when it ends
 * (the process was killed), its jobs are freed within about worker_session_grace() instead of a
 * lease. Use it only on a connection of its own, never through a transaction pooler.
 * One row per input job: lease_valid false means the job is no longer this lease's (its worker was
 * found dead and the job freed, or it was settled): abort the handler. cancel_requested true means
 * cancel_job was called: stop and report via fail_jobs. locked_until: the worker's lease end.
 * With worker_id, leases of this worker it does not list and that are older than two leases are
 * released (a claim it abandoned but Postgres ran). Then frees the jobs of workers found dead
 * (bounded), so recovery does not wait for a claim.
 */
create function public.heartbeat_jobs(
  ids uuid[],
  lease_ids uuid[],
  lease_seconds double precision default supaqueue.default_lease_seconds(),
  worker_id text default null,
  track_session boolean default false
) returns table (id uuid, lease_valid boolean, cancel_requested boolean, locked_until timestamptz)
language plpgsql volatile set search_path = ''
as $$
declare
  v_orphans uuid[];
  v_orphan_leases uuid[];
begin
  perform supaqueue.check_same_length(cardinality(ids), cardinality(lease_ids));
  if lease_seconds is null or lease_seconds not between 0.1 and 86400 then
    perform supaqueue.invalid('lease_seconds must be between 0.1 and 86400');
  end if;
  if heartbeat_jobs.worker_id is not null then
    if char_length(heartbeat_jobs.worker_id) not between 1 and 200 then
      perform supaqueue.invalid('worker_id must be 1-200 characters');
    end if;
    perform supaqueue.renew_worker(heartbeat_jobs.worker_id, heartbeat_jobs.lease_seconds, coalesce(heartbeat_jobs.track_session, false));
    -- Leases this worker holds without knowing it: a claim it abandoned at its deadline that Postgres
    -- still ran (its answer went to a closed socket). Renewing the worker would keep them forever, so
    -- the ones it does not list and that are older than two leases go back to the line (a worker
    -- never starts a job whose claim answer came after the lease ended, so none of these can be running).
    select array_agg(l.job_id), array_agg(l.lease_id) into v_orphans, v_orphan_leases
    from supaqueue.job_leases l
    where l.worker_id = heartbeat_jobs.worker_id
      and l.claimed_at < now() - make_interval(secs => 2 * heartbeat_jobs.lease_seconds)
      and l.job_id not in (select t.id from unnest(heartbeat_jobs.ids) t(id));
    if v_orphans is not null then
      perform 1 from public.release_jobs(v_orphans, v_orphan_leases);
    end if;
  else
    update supaqueue.workers w
       set heartbeat_at = now(), expires_at = greatest(w.expires_at, now() + make_interval(secs => heartbeat_jobs.lease_seconds))
     where w.id in (select l.worker_id from supaqueue.job_leases l
                    join unnest(heartbeat_jobs.ids, heartbeat_jobs.lease_ids) as t(id, lease_id) on l.job_id = t.id and l.lease_id = t.lease_id);
  end if;
  -- A new statement, so a new snapshot taken after the renewal's row lock: if the reaper freed this
  -- worker's jobs meanwhile, its commit is seen here and the jobs answer lease_valid = false.
  -- One primary-key probe per held job (LATERAL), whatever the statistics of job_leases say: analysed
  -- while nearly empty, a plain join was planned as a nested loop over every lease (quadratic: 100 ms
  -- at 1,000 held jobs, measured by bench/capacity.ts).
  return query
  select t.id, l.job_id is not null, coalesce(l.cancel_requested, false), l.expires_at
  from unnest(heartbeat_jobs.ids, heartbeat_jobs.lease_ids) as t(id, lease_id)
  left join lateral (
    select x.job_id, w.expires_at, j.cancel_requested_at is not null as cancel_requested
    from supaqueue.job_leases x
    join supaqueue.workers w on w.id = x.worker_id
    join public.job_queue j on j.id = x.job_id
    where x.job_id = t.id and x.lease_id = t.lease_id
  ) l on true;
  -- One reaper at a time; the others skip it.
  if pg_try_advisory_xact_lock(hashtext('supaqueue.reaper')) then
    perform supaqueue.reap_workers(1000);
  end if;
end
$$;
revoke all on function public.heartbeat_jobs(uuid[], uuid[], double precision, text, boolean) from public, anon, authenticated;
grant execute on function public.heartbeat_jobs(uuid[], uuid[], double precision, text, boolean) to service_role;

/**
 * The one maintenance pass (free dead workers' jobs, promote due jobs, purge, fold stats; each step
 * bounded), which the worker and the jobs-scheduler function both run; returns counts as JSON.
 */
create or replace function public.run_maintenance(retention interval default supaqueue.retention(), max_jobs integer default 1000) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_reclaimed integer := public.reclaim_expired_jobs(max_jobs);
  v_promoted integer := supaqueue.promote_due_jobs(max_jobs);
  v_purged integer := public.purge_finished_jobs(retention, max_jobs);
  v_folded integer := supaqueue.fold_job_stats();
begin
  return jsonb_build_object('reclaimed', v_reclaimed, 'promoted', v_promoted, 'purged', v_purged, 'stats_folded', v_folded);
end
$$;

/**
 * Deletes completed, failed and cancelled jobs finished longer than `retention` (default:
 * supaqueue.retention()) ago, at most max_jobs, found through the BRIN index on completed_at.
 */
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
                  where f.completed_at < now() - retention
                  limit max_jobs for update skip locked)
     and j.status in ('completed', 'failed', 'cancelled');
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- User actions: retry and cancel
-- ---------------------------------------------------------------------------------------------------

/**
 * The retry rule: failed and cancelled jobs go back to pending, runnable now, if they fit the tenant's
 * queued quota (QJ006, under its lock, taken before the job's row lock) and their submitter's active
 * job limit (QJ012). If the job has used all its attempts, the caller must grant more (extra_attempts >
 * 0 raises max_attempts by that much); otherwise QJ005. Other states: QJ004. user_id null = service caller.
 */
create or replace function supaqueue.retry_job(job_id uuid, extra_attempts integer, user_id uuid) returns setof public.job_queue
language plpgsql volatile set search_path = ''
as $$
declare
  v_job public.job_queue;
  v_tenant uuid;
  v_quota integer;
begin
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
  if v_job.submitted_by is not null then
    perform supaqueue.reserve_user_slot(v_job.tenant_id, v_job.submitted_by, 1);
  end if;
  perform pg_notify('supaqueue_jobs', '');
  insert into supaqueue.job_delayed (job_id, tenant_id, type, priority, due_at)
  values (v_job.id, v_job.tenant_id, v_job.type, v_job.priority, now());
  return query
  update public.job_queue j
     set status = 'pending', max_attempts = j.max_attempts + extra_attempts, scheduled_at = now(),
         completed_at = null, result = null, progress = null, worker_id = null,
         started_at = null, updated_at = now()
   where j.id = v_job.id
  returning j.*;
end
$$;

/**
 * The cancel rule: pending -> cancelled at once (its ready or delayed row is deleted); processing ->
 * cancellation requested (the holder sees it at its next heartbeat, stops, and the job ends
 * cancelled); terminal -> QJ004. Locks in the engine's order: delayed row, ready row, then the job.
 */
create or replace function supaqueue.cancel_job(job_id uuid, user_id uuid) returns setof public.job_queue
language plpgsql volatile set search_path = ''
as $$
declare
  v_job public.job_queue;
begin
  perform 1 from supaqueue.job_delayed d where d.job_id = cancel_job.job_id for update;
  perform 1 from supaqueue.job_ready r where r.job_id = cancel_job.job_id for update;
  v_job := supaqueue.lock_job_for_caller(job_id, user_id);
  if v_job.status = 'pending' then
    delete from supaqueue.job_delayed d where d.job_id = v_job.id;
    delete from supaqueue.job_ready r where r.job_id = v_job.id;
    return query
    update public.job_queue j
       set status = 'cancelled', completed_at = now(), updated_at = now()
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

/** Member path of retry/cancel; the rows come back without lease_id (the settle fence). */
create or replace function supaqueue.act_on_job_as_member(action text, job_id uuid, extra_attempts integer default 0)
returns setof public.job_queue
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: signed-in users have no UPDATE grant on job_queue; the caller is always
-- auth.uid() (never a parameter), and lock_job_for_caller checks membership or super admin.
declare
  v_user uuid := (select auth.uid());
  -- The columns members may not read (see the column grants of the hardening migration).
  v_hidden constant jsonb := '{"lease_id": null}';
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

-- ---------------------------------------------------------------------------------------------------
-- Per-tenant limits and the dashboard read the narrow tables
-- ---------------------------------------------------------------------------------------------------

/** (Re)counts a limited tenant's running jobs under its counter row's lock (see the engine migration). */
create or replace function supaqueue.tg_tenants__sync_limits() returns trigger
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
     set running = (select count(*) from supaqueue.job_leases x where x.tenant_id = new.id)
   where l.tenant_id = new.id;
  return null;
end
$$;

/** The jobs running now (at most 10, longest running first), from the leases. */
create or replace function supaqueue.stats_running(scope uuid[]) returns jsonb
language plpgsql stable set search_path = ''
as $$
begin
  return (
      select coalesce(jsonb_agg(jsonb_build_object('id', r.id, 'tenant_id', r.tenant_id, 'type', r.type,
               'started_at', r.started_at, 'attempts', r.attempts, 'progress', r.progress) order by r.started_at), '[]'::jsonb)
      from (select j.id, j.tenant_id, j.type, j.started_at, j.attempts, j.progress
            from (select l.job_id from supaqueue.job_leases l
                  where scope = array[supaqueue.all_tenants()] or l.tenant_id = any (scope)
                  order by l.claimed_at limit 10) l
            join public.job_queue j on j.id = l.job_id) r
  );
end
$$;

/**
 * The oldest waiting job: the head of each tenant's ready line (smallest fair tag, one index probe per
 * tenant). For all tenants, only tenants with pending jobs are probed, at most stats_max_probes()
 * (`partial` says when more had some).
 */
create or replace function supaqueue.stats_oldest_waiting(scope uuid[]) returns jsonb
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
        select j.id, j.tenant_id, j.scheduled_at from probed p cross join lateral (
          select r.job_id from supaqueue.job_ready r
          where r.tenant_id = p.tenant_id order by r.fair_key limit 1) h
        join public.job_queue j on j.id = h.job_id
      )
      select jsonb_build_object(
        'job_id', o.id, 'tenant_id', o.tenant_id, 'since', o.scheduled_at,
        'age_seconds', greatest(0, extract(epoch from now() - o.scheduled_at)),
        'partial', (select count(*) from tenants) > supaqueue.stats_max_probes())
      from (select 1) one left join lateral (select * from heads order by scheduled_at limit 1) o on true
  );
end
$$;
