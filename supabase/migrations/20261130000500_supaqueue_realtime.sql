-- supaqueue: live job status for browsers over Supabase Realtime Broadcast on private channels (issue 14).
--
-- What it does:
--   * Takes public.job_queue out of the supabase_realtime publication. Postgres Changes cannot apply
--     RLS to DELETE events, so every subscriber saw the ids of any tenant's purged jobs.
--   * Where Realtime's database interface exists (realtime.messages, realtime.topic(), realtime.send();
--     hosted Supabase and `supabase start`), statement triggers on public.job_queue broadcast each state
--     change of a job, and its progress at most once per supaqueue.realtime_progress_interval(), to
--     two private topics:
--        supaqueue:job:<job id>             the job's watchers
--        supaqueue:tenant:<tenant id>:jobs  a tenant's job list
--     event 'job', payload {"job": {...}} with what a list or a progress bar renders (see job_event);
--     never payload, result, errors, fair_key, lease_id or locked_until. realtime.send turns any error
--     into a WARNING, so a failed broadcast never fails the job's transaction.
--   * RLS policies on realtime.messages: the tenant's members and super admins receive (exactly who may
--     read the job or tenant through the API), nobody receives or sends on any other supaqueue:* topic,
--     and no API role may send on supaqueue:* topics at all, whatever other policies the project has.
-- Elsewhere (the embedded Postgres of `npm start` without the bootstrap, a plain Postgres) the
-- Realtime part is skipped with a NOTICE. The whole file may be re-run, e.g. once Realtime's schema
-- exists; it replaces what it installed.
--
-- Topics live under 'supaqueue:' so an application's own topics (job:..., tenant:...) never collide
-- with these and are never affected by the restrictive policies below.

-- ---------------------------------------------------------------------------------------------------
-- The DELETE leak: out of the Postgres Changes publication (wherever it exists)
-- ---------------------------------------------------------------------------------------------------
do $$
begin
  if exists (select 1 from pg_catalog.pg_publication_tables p
             where p.pubname = 'supabase_realtime' and p.schemaname = 'public' and p.tablename = 'job_queue') then
    alter publication supabase_realtime drop table public.job_queue;
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Limits and names: each written once, here
-- ---------------------------------------------------------------------------------------------------

-- These constants, the topic names and the event are plpgsql, not sql: a SQL function with a SET clause
-- is never inlined, and called once per row of a broadcast (a lateral VALUES re-evaluated per job) it
-- was re-planned at each call: 0.3-0.6 ms a row, measured with auto_explain. plpgsql keeps its plan.

/** Least time between two progress-only broadcasts of one job (state changes are never throttled). */
create or replace function supaqueue.realtime_progress_interval() returns interval
language plpgsql immutable set search_path = '' as $$ begin return interval '1 second'; end $$;

/** Most characters of last_error a broadcast carries (the full text is in GET /jobs/:id). */
create or replace function supaqueue.realtime_error_chars() returns integer
language plpgsql immutable set search_path = '' as $$ begin return 1000; end $$;

/** The private topic of one job. */
create or replace function supaqueue.job_topic(job_id uuid) returns text
language plpgsql immutable set search_path = '' as $$ begin return 'supaqueue:job:' || job_id::text; end $$;

/** The private topic of a tenant's jobs. */
create or replace function supaqueue.tenant_jobs_topic(tenant_id uuid) returns text
language plpgsql immutable set search_path = '' as $$ begin return 'supaqueue:tenant:' || tenant_id::text || ':jobs'; end $$;

-- ---------------------------------------------------------------------------------------------------
-- Who may receive: exactly who may read the job (or the tenant) through the API
-- ---------------------------------------------------------------------------------------------------

/**
 * True when the caller may receive broadcasts on the topic: for supaqueue:job:<id>, the job is visible
 * to them under job_queue's RLS; for supaqueue:tenant:<id>:jobs, the tenant is visible under tenants'
 * RLS (members and super admins, as in the API). False for any other supaqueue:* topic. Runs with the
 * caller's rights, so the same policies as every read decide.
 */
create or replace function supaqueue.can_receive_topic(topic text) returns boolean
language sql stable set search_path = ''
as $$
  select case
    when topic ~ '^supaqueue:job:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
      exists (select 1 from public.job_queue j where j.id = substr(topic, 15)::uuid)
    when topic ~ '^supaqueue:tenant:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:jobs$' then
      exists (select 1 from public.tenants t where t.id = substr(topic, 18, 36)::uuid)
    else false
  end
$$;

-- ---------------------------------------------------------------------------------------------------
-- What is sent
-- ---------------------------------------------------------------------------------------------------

/** A job as broadcast: the API's field names, only what a status view renders; never queue internals. */
create or replace function supaqueue.job_event(job public.job_queue) returns jsonb
language plpgsql stable set search_path = ''
as $$
begin
  return jsonb_build_object('job', jsonb_build_object(
    'id', job.id, 'tenant_id', job.tenant_id, 'type', job.type, 'status', job.status,
    'progress', job.progress, 'attempts', job.attempts, 'max_attempts', job.max_attempts,
    'last_error', left(job.last_error, supaqueue.realtime_error_chars()),
    'scheduled_at', job.scheduled_at, 'started_at', job.started_at, 'completed_at', job.completed_at,
    'created_at', job.created_at, 'updated_at', job.updated_at, 'cancel_requested_at', job.cancel_requested_at));
end
$$;

-- When each job's progress was last broadcast (progress throttle). Unlogged: losing it in a crash only
-- lets one more progress message through. A job's row goes when the job ends.
create unlogged table if not exists supaqueue.job_progress_broadcasts (
  job_id uuid primary key,
  sent_at timestamptz not null
);
alter table supaqueue.job_progress_broadcasts enable row level security;
revoke all on supaqueue.job_progress_broadcasts from public, anon, authenticated;
grant select, insert, update, delete on supaqueue.job_progress_broadcasts to service_role;

/**
 * Statement trigger on job_queue (insert and update): one message to each changed job's topic and one
 * to its tenant's topic (a new job: its tenant's topic only), all inserted into realtime.messages in one statement (Realtime's documented
 * database path: it streams that table's new rows to the subscribers). Sent: every inserted job, and
 * every update that changes status, attempts, max_attempts or cancel_requested_at. An update that
 * changes only progress is sent when the job's last progress message is at least
 * realtime_progress_interval() old, and dropped otherwise (the next message carries the latest
 * progress). A batch claim or settle of n jobs costs one statement and 2n rows, not 2n function calls
 * and subtransactions. As realtime.send does, a failure (e.g. a missing partition) becomes a WARNING:
 * a broadcast never fails the job's transaction.
 */
create or replace function supaqueue.broadcast_job_changes() returns trigger
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: whoever changes job_queue (workers as service_role, users through the engine's
-- helpers) must be able to write the private throttle table and to insert into realtime.messages past
-- its RLS, which no API role may do on supaqueue topics (the owner, postgres, bypasses RLS on Supabase).
begin
  begin
    if tg_op = 'INSERT' then
      -- A new job goes to its tenant's topic only: nobody can watch a job's own topic before the
      -- enqueue returned its id (watchers read the job once subscribed, then follow its changes).
      -- Each message's id is also in its payload, as realtime.send writes it.
      insert into realtime.messages (id, payload, event, topic, private, extension)
      select x.id, x.event || jsonb_build_object('id', x.id), 'job', x.topic, true, 'broadcast'
      from (select gen_random_uuid() as id, supaqueue.job_event(n) as event, supaqueue.tenant_jobs_topic(n.tenant_id) as topic
            from new_rows n) x;
      return null;
    end if;
    with pairs as (
      select n.id, n.status,
             (n.status, n.attempts, n.max_attempts, n.cancel_requested_at)
               is distinct from (o.status, o.attempts, o.max_attempts, o.cancel_requested_at) as state_changed,
             n.progress is distinct from o.progress as progress_changed
      from new_rows n join old_rows o on o.id = n.id
    ),
    throttled as (
      insert into supaqueue.job_progress_broadcasts as b (job_id, sent_at)
      select p.id, now() from pairs p where not p.state_changed and p.progress_changed
      on conflict (job_id) do update set sent_at = excluded.sent_at
        where b.sent_at <= excluded.sent_at - supaqueue.realtime_progress_interval()
      returning b.job_id
    ),
    ended as (
      delete from supaqueue.job_progress_broadcasts b using pairs p
      where b.job_id = p.id and p.state_changed and p.status in ('completed', 'failed', 'cancelled')
    ),
    sent as (
      select p.id from pairs p where p.state_changed
      union all
      select t.job_id from throttled t
    )
    insert into realtime.messages (id, payload, event, topic, private, extension)
    select x.id, x.event || jsonb_build_object('id', x.id), 'job', x.topic, true, 'broadcast'
    from (select gen_random_uuid() as id, supaqueue.job_event(n) as event, t.topic
          from new_rows n join sent s on s.id = n.id
          cross join lateral (values (supaqueue.job_topic(n.id)), (supaqueue.tenant_jobs_topic(n.tenant_id))) t(topic)) x;
  exception when others then
    raise warning 'supaqueue: job status broadcast failed: %', sqlerrm;
  end;
  return null;
end
$$;

revoke all on function supaqueue.realtime_progress_interval(), supaqueue.realtime_error_chars(),
  supaqueue.job_topic(uuid), supaqueue.tenant_jobs_topic(uuid), supaqueue.can_receive_topic(text),
  supaqueue.job_event(public.job_queue), supaqueue.broadcast_job_changes()
  from public, anon, authenticated, service_role;
-- The policies below call can_receive_topic as the subscriber (authenticated).
grant execute on function supaqueue.can_receive_topic(text) to authenticated, service_role;
grant execute on function supaqueue.realtime_progress_interval(), supaqueue.realtime_error_chars(),
  supaqueue.job_topic(uuid), supaqueue.tenant_jobs_topic(uuid), supaqueue.job_event(public.job_queue)
  to service_role;

-- ---------------------------------------------------------------------------------------------------
-- Install where Realtime's database interface exists
-- ---------------------------------------------------------------------------------------------------
do $$
begin
  drop trigger if exists job_queue_realtime_insert on public.job_queue;
  drop trigger if exists job_queue_realtime_update on public.job_queue;
  if to_regclass('realtime.messages') is null or to_regprocedure('realtime.topic()') is null
     or to_regprocedure('realtime.send(jsonb, text, text, boolean)') is null then
    raise notice 'supaqueue: Realtime (realtime.messages, realtime.send) is not in this database; job status is not broadcast here (clients poll)';
    return;
  end if;

  create trigger job_queue_realtime_insert after insert on public.job_queue
    referencing new table as new_rows for each statement execute function supaqueue.broadcast_job_changes();
  -- Every update statement (transition tables allow no column list); the function sends only watched
  -- changes. Heartbeats never update job_queue at all (20261130000600_supaqueue_hot_path.sql).
  create trigger job_queue_realtime_update after update on public.job_queue
    referencing old table as old_rows new table as new_rows for each statement execute function supaqueue.broadcast_job_changes();

  -- Receive: members of the tenant and super admins, broadcast only.
  drop policy if exists supaqueue_receive_job_broadcasts on realtime.messages;
  create policy supaqueue_receive_job_broadcasts on realtime.messages
    for select to authenticated
    using (realtime.messages.extension = 'broadcast' and realtime.messages.topic like 'supaqueue:%'
           and supaqueue.can_receive_topic(realtime.messages.topic));
  -- Restrictive: another permissive policy of the project (e.g. "authenticated can read all") never
  -- opens supaqueue topics to anyone else. anon cannot run supaqueue functions, so its rule is inline.
  drop policy if exists supaqueue_topics_receive_guard on realtime.messages;
  create policy supaqueue_topics_receive_guard on realtime.messages
    as restrictive for select to authenticated
    using (realtime.messages.topic not like 'supaqueue:%' or supaqueue.can_receive_topic(realtime.messages.topic));
  drop policy if exists supaqueue_topics_receive_guard_anon on realtime.messages;
  create policy supaqueue_topics_receive_guard_anon on realtime.messages
    as restrictive for select to anon
    using (realtime.messages.topic not like 'supaqueue:%');
  -- Send: only the database (this trigger, as the owner). No API role may send on supaqueue topics.
  drop policy if exists supaqueue_topics_send_guard on realtime.messages;
  create policy supaqueue_topics_send_guard on realtime.messages
    as restrictive for insert to anon, authenticated
    with check (realtime.messages.topic not like 'supaqueue:%');
  drop policy if exists supaqueue_topics_update_guard on realtime.messages;
  create policy supaqueue_topics_update_guard on realtime.messages
    as restrictive for update to anon, authenticated
    using (realtime.messages.topic not like 'supaqueue:%')
    with check (realtime.messages.topic not like 'supaqueue:%');
end
$$;
