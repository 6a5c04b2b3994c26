-- supaqueue: where a waiting job stands in the line (issue 12), over the ready line of the hot-path
-- migration (supaqueue.job_ready, supaqueue.job_delayed).
--
-- A ready job's position is the number of ready jobs that the claim would take before it if no more
-- work arrived: the entries before it in job_ready_claim_idx (priority desc, fair tag), the index the
-- claim walks. Those are always a prefix of that index, so the count comes from walking at most its
-- first position_cap() + 1 entries, never a predicate walk: cost does not grow with the backlog. Past
-- the cap the answer is "at least position_cap()" (capped = true). Ties are the norm under fairness
-- (every tenant's k-th waiting job has about the same tag); the index orders tied entries, and the
-- claim's index walk takes them in that order. What the number does not say:
--   * fairness: a job enqueued later by a tenant with no backlog is tagged at the front of the line and
--     can be claimed before this one, so the number can grow; that is the fairness guarantee at work;
--   * type filters: it counts ready jobs of every type, while a worker started with a type list claims
--     only those; tenants at their concurrency limit are skipped by claims but counted here;
--   * the count is global (every tenant's ready jobs): members learn one number, never which jobs.
-- latency_seconds: how long the job at the head of the line (the next one claimed) has been ready: one
-- index probe. The exact oldest ready job would need an index on ready time over every tenant's line,
-- which job_ready does not have (and job_queue must not: no index may cover status there).

/** The most ready jobs a position walk looks at; positions beyond are "at least this many". */
create function supaqueue.position_cap() returns integer
language sql immutable parallel safe set search_path = ''
as $$ select 1000 $$;

/**
 * Where a job waits, as JSON: ready -> {state 'ready', ahead, capped, latency_seconds}; delayed or
 * retrying -> {state 'delayed', due_at}; running or finished (or absent) -> null. No access check:
 * callers check first.
 */
create function supaqueue.job_position(job_id uuid) returns jsonb
language plpgsql stable set search_path = ''
as $$
declare
  v_job supaqueue.job_ready;
  v_cap constant integer := supaqueue.position_cap();
  v_line uuid[];
  v_ahead integer;
  v_head_since timestamptz;
  v_due timestamptz;
begin
  select * into v_job from supaqueue.job_ready r where r.job_id = job_position.job_id;
  if v_job.job_id is null then
    select d.due_at into v_due from supaqueue.job_delayed d where d.job_id = job_position.job_id;
    return case when v_due is null then null else jsonb_build_object('state', 'delayed', 'due_at', v_due) end;
  end if;
  -- The first cap + 1 entries in claim order: the jobs ahead are the ones before it there.
  v_line := array(select r.job_id from supaqueue.job_ready r order by r.priority desc, r.fair_key limit v_cap + 1);
  v_ahead := array_position(v_line, job_position.job_id) - 1;
  if v_ahead is null and not exists (select 1 from supaqueue.job_ready r where r.job_id = job_position.job_id) then
    return null; -- claimed or cancelled meanwhile
  end if;
  -- The head of the line (the next claim) and how long it has been ready.
  select j.scheduled_at into v_head_since from public.job_queue j where j.id = v_line[1];
  return jsonb_build_object('state', 'ready', 'ahead', coalesce(v_ahead, v_cap), 'capped', v_ahead is null,
    'latency_seconds', round(greatest(0, extract(epoch from now() - v_head_since))::numeric, 3));
end
$$;

/** Member path: only jobs of the caller's tenants (others answer QJ003, like a missing job). */
create function supaqueue.job_position_as_member(job_id uuid) returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
-- security definer: the ready line is private; this answers only for a job the caller may read, and
-- only with a count (never which jobs are ahead).
begin
  if (select auth.uid()) is null then
    raise exception 'sign in required' using errcode = 'QJ008';
  end if;
  if not exists (select 1 from public.job_queue j
                 where j.id = job_position_as_member.job_id
                   and j.tenant_id = any (array(select supaqueue.visible_tenant_ids()))) then
    raise exception 'job not found' using errcode = 'QJ003';
  end if;
  return supaqueue.job_position(job_position_as_member.job_id);
end
$$;

/**
 * Where a waiting job stands: {state 'ready', ahead, capped, latency_seconds} or {state 'delayed',
 * due_at}; null when it is running or finished. ahead = ready jobs the claim takes first if no more work
 * arrives (at most position_cap(); capped = at least that many). Members of the job's tenant, super
 * admins, service_role. Errors: QJ003, QJ008.
 */
create function public.job_position(job_id uuid) returns jsonb
language plpgsql stable set search_path = ''
as $$
begin
  if current_user = 'anon' then
    raise exception 'sign in required' using errcode = 'QJ008';
  elsif supaqueue.caller_kind() = 'user' then
    return supaqueue.job_position_as_member(job_id);
  elsif not exists (select 1 from public.job_queue j where j.id = job_position.job_id) then
    raise exception 'job not found' using errcode = 'QJ003';
  end if;
  return supaqueue.job_position(job_id);
end
$$;

revoke all on function supaqueue.position_cap(), supaqueue.job_position(uuid), supaqueue.job_position_as_member(uuid)
  from public, anon, authenticated;
revoke all on function supaqueue.job_position_as_member(uuid) from service_role;
grant execute on function supaqueue.position_cap(), supaqueue.job_position(uuid) to service_role;
grant execute on function supaqueue.job_position_as_member(uuid) to authenticated;
revoke all on function public.job_position(uuid) from public, anon;
grant execute on function public.job_position(uuid) to authenticated, service_role;
