-- supaqueue 0004: recurring jobs (cron schedules per tenant).
--
-- A schedule enqueues one job of `job_type` with `payload` at every slot of its cron expression, read in
-- its IANA time zone. Postgres cannot evaluate cron expressions, so the `jobs-scheduler` edge function
-- (cron-parser, supabase/functions/_shared/cron.ts) computes slots; SQL stores them and enforces every
-- rule that does not need a cron evaluator: format sanity, time zone (pg_timezone_names), access, and
-- exactly-once per slot.
--
-- next_run_at is the earliest time the next slot may fire. The edge API passes the exact next slot; a
-- SQL caller may omit it, and then it is set to now(), which means "from now on": the scheduler's next
-- pass fires no slot earlier than next_run_at and stores the real next slot.
--
-- Catch-up policy after downtime: "run once, not a burst". When the scheduler finds a schedule due, it
-- enqueues only the LATEST slot that is <= now (and >= next_run_at); earlier missed slots are dropped,
-- and next_run_at becomes the first slot after now. A schedule that was disabled does not catch up at
-- all when re-enabled (next_run_at restarts from now).
--
-- Exactly once per slot, even with overlapping or retried scheduler invocations:
--   * due schedules are taken with FOR UPDATE SKIP LOCKED, in short transactions of a small batch;
--   * fire_schedules only fires a slot later than last_run_at (the last slot enqueued);
--   * the job's idempotency key is 'schedule:<schedule id>:<slot, ISO 8601 UTC>'.
-- Jobs made by a schedule have actor_id 'schedule:<schedule id>' and run at once (no run_at), so a
-- late slot is not rejected by enqueue's "run_at more than a day in the past" rule.
--
-- Access: members of the tenant read its schedules (RLS); tenant admins (role 'admin') and super admins
-- create, change, delete and run them through the functions below (QJ010 for plain members, QJ002 /
-- QJ003 for tenants and schedules the caller cannot see); service_role does everything; anon nothing.
-- Errors: QJ001 bad input, QJ002 tenant not found, QJ003 schedule not found (the engine has no separate
-- schedule code; "not found" is the contract), QJ004 name already used in the tenant, QJ007 payload
-- over 256 KiB, QJ008 not signed in, QJ010 not a tenant admin.

create table public.job_schedules (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  name text not null,
  -- Five fields (minute hour day-of-month month day-of-week) or a macro; whitespace normalised to one
  -- space. No seconds field: the scheduler runs once a minute, finer schedules would only pretend.
  cron text not null,
  time_zone text not null default 'UTC',
  job_type text not null,
  payload jsonb not null default '{}'::jsonb,
  priority smallint not null default 0,
  max_attempts integer not null default 3,
  enabled boolean not null default true,
  -- The last slot a job was enqueued for (null: never fired).
  last_run_at timestamptz,
  -- The job enqueued for last_run_at, and why the last due slot could not be enqueued (if it could not).
  last_job_id uuid,
  last_error text,
  -- Earliest time the next slot may fire; null exactly when disabled.
  next_run_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),

  constraint job_schedules_tenant_name_key unique (tenant_id, name),
  constraint job_schedule_name_length check (char_length(name) between 1 and 200),
  constraint job_schedule_cron_format check (
    char_length(cron) <= 200
    and cron ~ '^(@(yearly|annually|monthly|weekly|daily|hourly)|[0-9A-Za-z*/,?#-]+( [0-9A-Za-z*/,?#-]+){4})$'),
  constraint job_schedule_time_zone_length check (char_length(time_zone) between 1 and 64),
  constraint job_schedule_job_type_format check (job_type ~ '^[a-z][a-z0-9_.:-]{0,127}$'),
  constraint job_schedule_payload_shape check (jsonb_typeof(payload) in ('object', 'array')),
  constraint job_schedule_payload_max_256kib check (octet_length(payload::text) <= 262144),
  constraint job_schedule_priority_in_range check (priority between -100 and 100),
  constraint job_schedule_max_attempts_in_range check (max_attempts between 1 and 100),
  constraint job_schedule_next_run_iff_enabled check (enabled = (next_run_at is not null)),
  constraint job_schedule_last_error_length check (last_error is null or char_length(last_error) <= 1000)
);
comment on table public.job_schedules is 'Recurring jobs per tenant (cron + IANA time zone), fired by the jobs-scheduler edge function. Written only through the supaqueue functions.';

-- The scheduler's scan: enabled schedules in due order. (tenant_id is covered by the unique key.)
create index job_schedules_due_idx on public.job_schedules (next_run_at) where enabled;

revoke all on public.job_schedules from anon, authenticated;
grant select on public.job_schedules to authenticated;
grant select, insert, update, delete on public.job_schedules to service_role;
alter table public.job_schedules enable row level security;

-- Read for members (and super admins); no write policies: writes go through the functions below, which
-- check the admin role, so a plain member's direct UPDATE finds no grant at all.
create policy job_schedules_select_member_or_super_admin on public.job_schedules
  for select to authenticated
  using (tenant_id = any (array(select supaqueue.member_tenant_ids())) or (select supaqueue.is_super_admin()));

-- ---------------------------------------------------------------------------------------------------
-- Row rules (also for direct service-role writes): time zone, next_run_at defaults, updated_at
-- ---------------------------------------------------------------------------------------------------

/**
 * Validates the time zone against pg_timezone_names (only when it changes: that view reads the zone
 * files) and keeps next_run_at consistent with `enabled`: null when disabled; now() ("from now on") when
 * enabled without one, or when the cron or time zone changed and no new next_run_at was given.
 */
create function supaqueue.tg_job_schedules__rules() returns trigger
language plpgsql set search_path = ''
as $$
begin
  if (tg_op = 'INSERT' or new.time_zone is distinct from old.time_zone)
     and not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = new.time_zone) then
    perform supaqueue.invalid('time_zone must be an IANA time zone name, e.g. Europe/Berlin');
  end if;
  if not new.enabled then
    new.next_run_at := null;
  elsif new.next_run_at is null then
    new.next_run_at := now();
  elsif tg_op = 'UPDATE' and (new.cron, new.time_zone) is distinct from (old.cron, old.time_zone)
        and new.next_run_at is not distinct from old.next_run_at then
    new.next_run_at := now();
  end if;
  -- updated_at tracks changes of the definition, not the scheduler's bookkeeping.
  if tg_op = 'UPDATE' and (new.name, new.cron, new.time_zone, new.job_type, new.payload, new.priority, new.max_attempts, new.enabled)
     is distinct from (old.name, old.cron, old.time_zone, old.job_type, old.payload, old.priority, old.max_attempts, old.enabled) then
    new.updated_at := now();
  end if;
  return new;
end
$$;
revoke all on function supaqueue.tg_job_schedules__rules() from public, anon, authenticated;

create trigger job_schedules_100_rules
  before insert or update on public.job_schedules
  for each row execute function supaqueue.tg_job_schedules__rules();

-- ---------------------------------------------------------------------------------------------------
-- Validation and access
-- ---------------------------------------------------------------------------------------------------

/**
 * Checks a create spec (for_create) or a patch; raises QJ001 (QJ007 for a large payload) with the first
 * problem. Typed values are read with jsonb_populate_record, so a wrong JSON type is QJ001 too.
 */
create function supaqueue.check_schedule_spec(spec jsonb, for_create boolean) returns void
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
  select case
    when spec ? 'name' and char_length(v_row.name) not between 1 and 200 then 'name must be 1-200 characters'
    when spec ? 'cron' and (char_length(v_row.cron) > 200 or v_row.cron !~ '^(@(yearly|annually|monthly|weekly|daily|hourly)|[0-9A-Za-z*/,?#-]+( [0-9A-Za-z*/,?#-]+){4})$')
      then 'cron must be five fields (minute hour day-of-month month day-of-week) separated by single spaces, or @hourly/@daily/@weekly/@monthly/@yearly'
    when spec ? 'job_type' and v_row.job_type !~ '^[a-z][a-z0-9_.:-]{0,127}$' then 'job_type must match ^[a-z][a-z0-9_.:-]{0,127}$'
    when spec ? 'payload' and jsonb_typeof(v_row.payload) not in ('object', 'array') then 'payload must be a JSON object or array'
    when spec ? 'priority' and v_row.priority not between -100 and 100 then 'priority must be between -100 and 100'
    when spec ? 'max_attempts' and v_row.max_attempts not between 1 and 100 then 'max_attempts must be between 1 and 100'
    when spec ? 'time_zone' and char_length(v_row.time_zone) not between 1 and 64 then 'time_zone must be an IANA time zone name'
  end into v_bad;
  if v_bad is not null then perform supaqueue.invalid(v_bad); end if;
end
$$;
revoke all on function supaqueue.check_schedule_spec(jsonb, boolean) from public, anon, authenticated;
grant execute on function supaqueue.check_schedule_spec(jsonb, boolean) to service_role;

/**
 * Raises unless the caller may act on the tenant's schedules: QJ002 when the tenant does not exist or
 * the user is neither a member nor a super admin (one answer: tenant ids do not leak); QJ010 when
 * need_admin and the user is a plain member. user_id null = service caller.
 */
create function supaqueue.check_schedule_access(tenant_id uuid, user_id uuid, need_admin boolean) returns void
language plpgsql stable set search_path = ''
as $$
declare
  v_role text;
begin
  if not exists (select 1 from public.tenants t where t.id = check_schedule_access.tenant_id) then
    raise exception 'tenant not found' using errcode = 'QJ002';
  end if;
  if user_id is null or exists (select 1 from supaqueue.super_admins s where s.user_id = check_schedule_access.user_id) then
    return;
  end if;
  select m.role into v_role from public.tenant_members m
   where m.tenant_id = check_schedule_access.tenant_id and m.user_id = check_schedule_access.user_id;
  if v_role is null then
    raise exception 'tenant not found' using errcode = 'QJ002';
  end if;
  if need_admin and v_role <> 'admin' then
    raise exception 'managing schedules needs the tenant admin role' using errcode = 'QJ010';
  end if;
end
$$;
revoke all on function supaqueue.check_schedule_access(uuid, uuid, boolean) from public, anon, authenticated;
grant execute on function supaqueue.check_schedule_access(uuid, uuid, boolean) to service_role;

/** Locks a schedule the caller may manage; QJ003 when missing or invisible to the caller, QJ010 as above. */
create function supaqueue.lock_schedule_for_caller(schedule_id uuid, user_id uuid) returns public.job_schedules
language plpgsql volatile set search_path = ''
as $$
declare
  v_row public.job_schedules;
begin
  select * into v_row from public.job_schedules s where s.id = schedule_id for update;
  if v_row.id is null then
    raise exception 'schedule not found' using errcode = 'QJ003';
  end if;
  begin
    perform supaqueue.check_schedule_access(v_row.tenant_id, user_id, true);
  exception when sqlstate 'QJ002' then
    -- Another tenant's schedule: the same answer as a missing one.
    raise exception 'schedule not found' using errcode = 'QJ003';
  end;
  return v_row;
end
$$;
revoke all on function supaqueue.lock_schedule_for_caller(uuid, uuid) from public, anon, authenticated;
grant execute on function supaqueue.lock_schedule_for_caller(uuid, uuid) to service_role;

-- ---------------------------------------------------------------------------------------------------
-- Create, update, delete, run now. user_id null = service caller.
-- ---------------------------------------------------------------------------------------------------

create function supaqueue.create_schedule(spec jsonb, user_id uuid) returns public.job_schedules
language plpgsql volatile set search_path = ''
as $$
declare
  v_new public.job_schedules;
begin
  perform supaqueue.check_schedule_spec(spec, true);
  v_new := jsonb_populate_record(null::public.job_schedules, spec);
  perform supaqueue.check_schedule_access(v_new.tenant_id, user_id, true);
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
revoke all on function supaqueue.create_schedule(jsonb, uuid) from public, anon, authenticated;
grant execute on function supaqueue.create_schedule(jsonb, uuid) to service_role;

/** Applies a patch; fields absent from `changes` keep their value (see the trigger for next_run_at). */
create function supaqueue.update_schedule(schedule_id uuid, changes jsonb, user_id uuid) returns public.job_schedules
language plpgsql volatile set search_path = ''
as $$
declare
  v_old public.job_schedules := supaqueue.lock_schedule_for_caller(schedule_id, user_id);
  v_new public.job_schedules;
begin
  perform supaqueue.check_schedule_spec(changes, false);
  v_new := jsonb_populate_record(v_old, changes);
  begin
    update public.job_schedules s
       set name = v_new.name, cron = v_new.cron, time_zone = v_new.time_zone, job_type = v_new.job_type,
           payload = v_new.payload, priority = v_new.priority, max_attempts = v_new.max_attempts,
           enabled = v_new.enabled,
           -- Re-enabling restarts from now: no catch-up of slots missed while disabled.
           next_run_at = case when changes ? 'next_run_at' then v_new.next_run_at
                              when not v_old.enabled then null
                              else v_old.next_run_at end
     where s.id = v_old.id
    returning * into v_new;
  exception when unique_violation then
    raise exception 'the tenant already has a schedule with this name' using errcode = 'QJ004';
  end;
  return v_new;
end
$$;
revoke all on function supaqueue.update_schedule(uuid, jsonb, uuid) from public, anon, authenticated;
grant execute on function supaqueue.update_schedule(uuid, jsonb, uuid) to service_role;

create function supaqueue.delete_schedule(schedule_id uuid, user_id uuid) returns public.job_schedules
language plpgsql volatile set search_path = ''
as $$
declare
  v_old public.job_schedules := supaqueue.lock_schedule_for_caller(schedule_id, user_id);
begin
  delete from public.job_schedules s where s.id = v_old.id;
  return v_old;
end
$$;
revoke all on function supaqueue.delete_schedule(uuid, uuid) from public, anon, authenticated;
grant execute on function supaqueue.delete_schedule(uuid, uuid) to service_role;

/** Enqueues one job from the schedule now, outside its cron slots (schedule state is unchanged). */
create function supaqueue.run_schedule_now(schedule_id uuid, user_id uuid) returns uuid
language plpgsql volatile set search_path = ''
as $$
declare
  v_row public.job_schedules := supaqueue.lock_schedule_for_caller(schedule_id, user_id);
  v_job uuid;
begin
  select i.job_id into v_job from supaqueue.insert_jobs(jsonb_build_array(jsonb_build_object(
    'tenant_id', v_row.tenant_id, 'type', v_row.job_type, 'payload', v_row.payload, 'priority', v_row.priority,
    'max_attempts', v_row.max_attempts, 'actor_id', 'schedule:' || v_row.id))) i;
  return v_job;
end
$$;
revoke all on function supaqueue.run_schedule_now(uuid, uuid) from public, anon, authenticated;
grant execute on function supaqueue.run_schedule_now(uuid, uuid) to service_role;

/**
 * Member path of the schedule functions: the caller is auth.uid(), never a parameter. Returns the
 * schedule row as JSON (create, update, delete) or {job_id} (run).
 */
create function supaqueue.schedule_action_as_member(action text, schedule_id uuid, spec jsonb) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: signed-in users have only SELECT on job_schedules (and no INSERT on job_queue);
-- every branch checks tenant membership and the admin role for auth.uid() before writing.
declare
  v_user uuid := (select auth.uid());
begin
  if v_user is null then
    raise exception 'sign in required' using errcode = 'QJ008';
  end if;
  case action
    when 'create' then return to_jsonb(supaqueue.create_schedule(spec, v_user));
    when 'update' then return to_jsonb(supaqueue.update_schedule(schedule_id, spec, v_user));
    when 'delete' then return to_jsonb(supaqueue.delete_schedule(schedule_id, v_user));
    when 'run' then return jsonb_build_object('job_id', supaqueue.run_schedule_now(schedule_id, v_user));
    else perform supaqueue.invalid('unknown action');
  end case;
  return null;
end
$$;
revoke all on function supaqueue.schedule_action_as_member(text, uuid, jsonb) from public, anon, service_role;
grant execute on function supaqueue.schedule_action_as_member(text, uuid, jsonb) to authenticated;

/** Routes a schedule action to the member path (signed-in users) or the service path; anon gets QJ008. */
create function supaqueue.schedule_action(action text, schedule_id uuid, spec jsonb) returns jsonb
language plpgsql volatile set search_path = ''
as $$
begin
  if current_user = 'anon' then
    raise exception 'sign in required' using errcode = 'QJ008';
  elsif supaqueue.caller_kind() = 'user' then
    return supaqueue.schedule_action_as_member(action, schedule_id, spec);
  end if;
  case action
    when 'create' then return to_jsonb(supaqueue.create_schedule(spec, null));
    when 'update' then return to_jsonb(supaqueue.update_schedule(schedule_id, spec, null));
    when 'delete' then return to_jsonb(supaqueue.delete_schedule(schedule_id, null));
    when 'run' then return jsonb_build_object('job_id', supaqueue.run_schedule_now(schedule_id, null));
    else perform supaqueue.invalid('unknown action');
  end case;
  return null;
end
$$;
-- Its own checks (anon, user, service) decide; the user branch goes through the definer helper.
revoke all on function supaqueue.schedule_action(text, uuid, jsonb) from public, anon;
grant execute on function supaqueue.schedule_action(text, uuid, jsonb) to authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------
-- Public API (security invoker): tenant admins, super admins, service_role
-- ---------------------------------------------------------------------------------------------------

/**
 * Creates a schedule. Spec: tenant_id, name, cron, job_type (required); time_zone (default UTC),
 * payload, priority, max_attempts, enabled, next_run_at (the first slot; the edge API computes it,
 * omitted = from now on). Errors: QJ001, QJ002, QJ004, QJ007, QJ008, QJ010.
 */
create function public.create_job_schedule(schedule jsonb) returns public.job_schedules
language sql volatile set search_path = ''
as $$ select * from jsonb_populate_record(null::public.job_schedules, supaqueue.schedule_action('create', null, schedule)) $$;
revoke all on function public.create_job_schedule(jsonb) from public, anon;
grant execute on function public.create_job_schedule(jsonb) to authenticated, service_role;

/**
 * Changes the given fields of a schedule (same fields as create, minus tenant_id). Changing cron or
 * time_zone without next_run_at restarts from now. Errors: QJ001, QJ003, QJ004, QJ007, QJ008, QJ010.
 */
create function public.update_job_schedule(id uuid, changes jsonb) returns public.job_schedules
language sql volatile set search_path = ''
as $$ select * from jsonb_populate_record(null::public.job_schedules, supaqueue.schedule_action('update', update_job_schedule.id, changes)) $$;
revoke all on function public.update_job_schedule(uuid, jsonb) from public, anon;
grant execute on function public.update_job_schedule(uuid, jsonb) to authenticated, service_role;

/** Deletes a schedule and returns it (its jobs stay). Errors: QJ003, QJ008, QJ010. */
create function public.delete_job_schedule(id uuid) returns public.job_schedules
language sql volatile set search_path = ''
as $$ select * from jsonb_populate_record(null::public.job_schedules, supaqueue.schedule_action('delete', delete_job_schedule.id, null)) $$;
revoke all on function public.delete_job_schedule(uuid) from public, anon;
grant execute on function public.delete_job_schedule(uuid) to authenticated, service_role;

/** Enqueues one job from the schedule now; returns its id. Errors: QJ003, QJ006, QJ008, QJ010. */
create function public.run_job_schedule(id uuid) returns uuid
language sql volatile set search_path = ''
as $$ select (supaqueue.schedule_action('run', run_job_schedule.id, null) ->> 'job_id')::uuid $$;
revoke all on function public.run_job_schedule(uuid) from public, anon;
grant execute on function public.run_job_schedule(uuid) to authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------
-- The scheduler's side (service_role): lock a batch of due schedules, then fire them, in ONE short
-- transaction per batch. Slots are computed in between by the edge function (cron-parser).
-- ---------------------------------------------------------------------------------------------------

/**
 * Locks up to max_schedules due, enabled schedules, oldest due first. SKIP LOCKED: an overlapping
 * scheduler run takes other rows (or none) instead of waiting; a schedule fired meanwhile is re-checked
 * against next_run_at <= now() on its new version and drops out. Meaningful only inside a transaction
 * that then calls fire_schedules.
 */
create function supaqueue.lock_due_schedules(max_schedules integer default 25) returns setof public.job_schedules
language plpgsql volatile set search_path = ''
as $$
begin
  if max_schedules is null or max_schedules not between 1 and 50 then
    perform supaqueue.invalid('max_schedules must be between 1 and 50');
  end if;
  return query
  select * from public.job_schedules s
   where s.enabled and s.next_run_at <= now()
   order by s.next_run_at
   limit max_schedules
   for update skip locked;
end
$$;
revoke all on function supaqueue.lock_due_schedules(integer) from public, anon, authenticated;
grant execute on function supaqueue.lock_due_schedules(integer) to service_role;

/** Enqueues one schedule's slot; returns the job id, or raises what enqueue raised. */
create function supaqueue.enqueue_schedule_slot(schedule public.job_schedules, slot timestamptz) returns uuid
language sql volatile set search_path = ''
as $$
  select i.job_id from supaqueue.insert_jobs(jsonb_build_array(jsonb_build_object(
    'tenant_id', schedule.tenant_id, 'type', schedule.job_type, 'payload', schedule.payload,
    'priority', schedule.priority, 'max_attempts', schedule.max_attempts, 'actor_id', 'schedule:' || schedule.id,
    'idempotency_key', 'schedule:' || schedule.id || ':' || to_char(slot at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))) i
$$;
revoke all on function supaqueue.enqueue_schedule_slot(public.job_schedules, timestamptz) from public, anon, authenticated;
grant execute on function supaqueue.enqueue_schedule_slot(public.job_schedules, timestamptz) to service_role;

/**
 * Applies the scheduler's decisions, one entry per locked schedule:
 *   {id, slot, next_run_at}  enqueue the slot (when later than last_run_at), then move to next_run_at;
 *   {id, slot: null, next_run_at}  nothing due yet after all (e.g. next_run_at was "from now on"): move;
 *   {id, error}  the cron or time zone cannot be evaluated: disable the schedule with last_error.
 * A slot that cannot be enqueued (quota full, tenant limits) is skipped with last_error set, so one
 * tenant's problem never blocks the others. Each entry is its own subtransaction; batches stay under
 * 50 entries so a transaction never overflows the subtransaction cache.
 * Returns {fired, moved, failed, disabled}.
 */
create function supaqueue.fire_schedules(fires jsonb) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_fire record;
  v_row public.job_schedules;
  v_job uuid;
  v_fired integer := 0;
  v_moved integer := 0;
  v_failed integer := 0;
  v_disabled integer := 0;
begin
  if fires is null or jsonb_typeof(fires) <> 'array' or jsonb_array_length(fires) > 50 then
    perform supaqueue.invalid('fires must be a JSON array of at most 50 entries');
  end if;
  -- In (tenant, id) order: enqueue takes a per-tenant advisory lock (quota) held to commit, so two
  -- overlapping passes must take tenants in the same order or they could deadlock.
  for v_fire in
    select f.* from jsonb_to_recordset(fires) as f(id uuid, slot timestamptz, next_run_at timestamptz, error text)
    left join public.job_schedules s on s.id = f.id
    order by s.tenant_id, f.id
  loop
    -- Normally locked already by lock_due_schedules in this transaction; the lock makes a direct call
    -- safe too (a concurrent fire of the same slot waits, then sees last_run_at and only moves).
    select * into v_row from public.job_schedules s where s.id = v_fire.id and s.enabled for update;
    continue when v_row.id is null;
    if v_fire.error is not null then
      update public.job_schedules s set enabled = false, last_error = left(v_fire.error, 1000) where s.id = v_row.id;
      v_disabled := v_disabled + 1;
      continue;
    end if;
    if v_fire.next_run_at is null or v_fire.next_run_at <= now() then
      perform supaqueue.invalid('next_run_at must be later than now()');
    end if;
    if v_fire.slot is null or v_fire.slot > now() or v_fire.slot <= coalesce(v_row.last_run_at, '-infinity') then
      update public.job_schedules s set next_run_at = v_fire.next_run_at where s.id = v_row.id;
      v_moved := v_moved + 1;
      continue;
    end if;
    begin
      v_job := supaqueue.enqueue_schedule_slot(v_row, v_fire.slot);
      update public.job_schedules s
         set last_run_at = v_fire.slot, last_job_id = v_job, last_error = null, next_run_at = v_fire.next_run_at
       where s.id = v_row.id;
      v_fired := v_fired + 1;
    exception when sqlstate 'QJ001' or sqlstate 'QJ006' or sqlstate 'QJ007' then
      -- The tenant's quota is full or the stored job spec is refused: skip this slot, keep the rest going.
      update public.job_schedules s
         set last_error = left(format('slot %s not enqueued: %s (%s)', v_fire.slot, sqlerrm, sqlstate), 1000),
             next_run_at = v_fire.next_run_at
       where s.id = v_row.id;
      v_failed := v_failed + 1;
    end;
  end loop;
  return jsonb_build_object('fired', v_fired, 'moved', v_moved, 'failed', v_failed, 'disabled', v_disabled);
end
$$;
revoke all on function supaqueue.fire_schedules(jsonb) from public, anon, authenticated;
grant execute on function supaqueue.fire_schedules(jsonb) to service_role;

