-- supaqueue: tenant and access management.
--
-- Tenants, memberships and super admins used to be rows one inserted by hand (supabase/seed.sql). These
-- functions are the documented way, from SQL, supabase.rpc or supaqueue/server:
--
--   function                                         service_role  super admin  tenant admin*  member*
--   create_tenant(name, limits = '{}', id = null)    yes           yes          QJ010          QJ010
--   rename_tenant(tenant_id, name)                   yes           yes          QJ010          QJ010
--   set_tenant_limits(tenant_id, limits)             yes           yes          QJ010          QJ010
--   delete_tenant(tenant_id, force = false)          yes           yes          QJ010          QJ010
--   add_tenant_member(tenant_id, user_id, role)      yes           yes          yes            QJ010
--   remove_tenant_member(tenant_id, user_id)         yes           yes          yes            QJ010
--   grant_super_admin(user_id), revoke_super_admin   yes           yes          QJ010          QJ010
--   * of that tenant. A tenant the user does not belong to answers QJ002, exactly like a missing one.
--
-- Limits stay with the operator (service role, super admins): a tenant admin who could raise their own
-- quota would have no quota. Tenant admins manage their own tenant's members, with one guard: they
-- cannot remove or demote the tenant's last admin (QJ004), so a tenant cannot lock itself out. The
-- service role and super admins may (they can always add an admin back).
--
-- Same shape as the engine: public functions are security invoker and route to the service path
-- (caller null) or, for signed-in users, through ONE security definer helper in this private schema that
-- takes the caller from auth.uid(), never from an argument. Errors: QJ001 bad input (also unknown users
-- and values the tables' constraints refuse), QJ002 tenant not found, QJ004 state (last admin, active
-- jobs, id taken), QJ008 not signed in, QJ010 needs a higher role.

-- ---------------------------------------------------------------------------------------------------
-- Access
-- ---------------------------------------------------------------------------------------------------

/** QJ010 unless the caller is the service (null) or a super admin: for actions on no particular tenant. */
create function supaqueue.check_operator(caller uuid) returns void
language plpgsql stable set search_path = ''
as $$
begin
  if caller is not null and not exists (select 1 from supaqueue.super_admins s where s.user_id = caller) then
    raise exception 'this needs a super admin' using errcode = 'QJ010';
  end if;
end
$$;
revoke all on function supaqueue.check_operator(uuid) from public, anon, authenticated;
grant execute on function supaqueue.check_operator(uuid) to service_role;

/**
 * The one tenant access rule. Raises unless the caller may act on the tenant at level `need`: 'member'
 * (any member), 'admin' (tenant admins and super admins) or 'operator' (super admins only). QJ002 when
 * the tenant does not exist or the user is neither a member nor a super admin (one answer: ids do not
 * leak); QJ010 for a member without the role. caller null = service. Returns the caller's standing:
 * 'service', 'super_admin', 'admin' or 'member'.
 */
create function supaqueue.check_tenant_admin(tenant_id uuid, caller uuid, need text) returns text
language plpgsql stable set search_path = ''
as $$
declare
  v_role text;
begin
  if check_tenant_admin.tenant_id is null then
    perform supaqueue.invalid('tenant_id is required');
  end if;
  if not exists (select 1 from public.tenants t where t.id = check_tenant_admin.tenant_id) then
    raise exception 'tenant not found' using errcode = 'QJ002';
  end if;
  if caller is null then
    return 'service';
  end if;
  if exists (select 1 from supaqueue.super_admins s where s.user_id = caller) then
    return 'super_admin';
  end if;
  select m.role into v_role from public.tenant_members m
   where m.tenant_id = check_tenant_admin.tenant_id and m.user_id = caller;
  if v_role is null then
    raise exception 'tenant not found' using errcode = 'QJ002';
  end if;
  if need = 'member' then
    return v_role;
  end if;
  if need = 'operator' or v_role <> 'admin' then
    raise exception 'this needs %', case when need = 'operator' then 'a super admin' else 'the tenant admin role' end
      using errcode = 'QJ010';
  end if;
  return 'admin';
end
$$;
revoke all on function supaqueue.check_tenant_admin(uuid, uuid, text) from public, anon, authenticated;
grant execute on function supaqueue.check_tenant_admin(uuid, uuid, text) to service_role;

/** The schedules' access check (members read; tenant admins and super admins manage): the rule above. */
create or replace function supaqueue.check_schedule_access(tenant_id uuid, user_id uuid, need_admin boolean) returns void
language plpgsql stable set search_path = ''
as $$
begin
  perform supaqueue.check_tenant_admin(tenant_id, user_id, case when need_admin then 'admin' else 'member' end);
end
$$;

-- ---------------------------------------------------------------------------------------------------
-- Tenants. caller null = service.
-- ---------------------------------------------------------------------------------------------------

/**
 * Sets the given limits of a tenant (no access check: callers check first). The limits are the
 * tenants columns named max_* (null removes the tenant's own limit; what that means is the column's
 * rule), so a limit a later migration adds is settable here too; absent keys keep their value. The
 * columns' own constraints decide what is valid (QJ001).
 */
create function supaqueue.write_tenant_limits(tenant_id uuid, limits jsonb) returns public.tenants
language plpgsql volatile set search_path = ''
as $$
declare
  v_bad text;
  v_set text;
  v_row public.tenants;
begin
  if limits is null or jsonb_typeof(limits) <> 'object' then
    perform supaqueue.invalid('limits must be a JSON object, e.g. {"max_queued_jobs": 1000}');
  end if;
  select min(k) into v_bad from jsonb_object_keys(limits) k
   where k not like 'max\_%' or not exists (
     select 1 from pg_catalog.pg_attribute a
      where a.attrelid = 'public.tenants'::regclass and a.attname = k and a.attnum > 0 and not a.attisdropped);
  if v_bad is not null then
    perform supaqueue.invalid('unknown limit: ' || v_bad);
  end if;
  select string_agg(format('%I = r.%I', k, k), ', ') into v_set from jsonb_object_keys(limits) k;
  if v_set is null then
    select * into v_row from public.tenants t where t.id = write_tenant_limits.tenant_id;
    return v_row;
  end if;
  begin
    -- Column names are real columns (checked above) and quoted by %I; values are bound, never spliced.
    execute format('update public.tenants t set %s from jsonb_populate_record(null::public.tenants, $1) r
                    where t.id = $2 returning t.*', v_set)
       into v_row using limits, write_tenant_limits.tenant_id;
  exception when check_violation or data_exception then
    perform supaqueue.invalid('invalid limit: ' || sqlerrm);
  end;
  return v_row;
end
$$;
revoke all on function supaqueue.write_tenant_limits(uuid, jsonb) from public, anon, authenticated;
grant execute on function supaqueue.write_tenant_limits(uuid, jsonb) to service_role;

create function supaqueue.create_tenant(name text, limits jsonb, id uuid, caller uuid) returns public.tenants
language plpgsql volatile set search_path = ''
as $$
declare
  v_id uuid;
begin
  perform supaqueue.check_operator(caller);
  begin
    insert into public.tenants as t (id, name) values (coalesce(create_tenant.id, gen_random_uuid()), create_tenant.name)
    returning t.id into v_id;
  exception
    when unique_violation then
      raise exception 'a tenant with this id already exists' using errcode = 'QJ004';
    when check_violation or not_null_violation then
      perform supaqueue.invalid('invalid tenant: ' || sqlerrm);
  end;
  return supaqueue.write_tenant_limits(v_id, coalesce(limits, '{}'::jsonb));
end
$$;
revoke all on function supaqueue.create_tenant(text, jsonb, uuid, uuid) from public, anon, authenticated;
grant execute on function supaqueue.create_tenant(text, jsonb, uuid, uuid) to service_role;

create function supaqueue.rename_tenant(tenant_id uuid, name text, caller uuid) returns public.tenants
language plpgsql volatile set search_path = ''
as $$
declare
  v_row public.tenants;
begin
  perform supaqueue.check_tenant_admin(tenant_id, caller, 'operator');
  begin
    update public.tenants t set name = rename_tenant.name where t.id = rename_tenant.tenant_id returning * into v_row;
  exception when check_violation or not_null_violation then
    perform supaqueue.invalid('invalid tenant: ' || sqlerrm);
  end;
  return v_row;
end
$$;
revoke all on function supaqueue.rename_tenant(uuid, text, uuid) from public, anon, authenticated;
grant execute on function supaqueue.rename_tenant(uuid, text, uuid) to service_role;

create function supaqueue.set_tenant_limits(tenant_id uuid, limits jsonb, caller uuid) returns public.tenants
language plpgsql volatile set search_path = ''
as $$
begin
  perform supaqueue.check_tenant_admin(tenant_id, caller, 'operator');
  return supaqueue.write_tenant_limits(tenant_id, limits);
end
$$;
revoke all on function supaqueue.set_tenant_limits(uuid, jsonb, uuid) from public, anon, authenticated;
grant execute on function supaqueue.set_tenant_limits(uuid, jsonb, uuid) to service_role;

/**
 * Deletes a tenant with its members, schedules and every job (history included; the foreign keys
 * cascade). Refused with QJ004 while it has pending or processing jobs, unless force: then running
 * jobs vanish under their workers, whose heartbeats report the lease lost and whose settles do nothing.
 * Returns the deleted row.
 */
create function supaqueue.delete_tenant(tenant_id uuid, force boolean, caller uuid) returns public.tenants
language plpgsql volatile set search_path = ''
as $$
declare
  v_row public.tenants;
begin
  perform supaqueue.check_tenant_admin(tenant_id, caller, 'operator');
  -- FOR UPDATE waits for enqueues in flight (their foreign-key check holds KEY SHARE on this row) and
  -- holds new ones off until commit, so the active-job check below (a fresh snapshot) is exact.
  select * into v_row from public.tenants t where t.id = delete_tenant.tenant_id for update;
  if v_row.id is null then
    raise exception 'tenant not found' using errcode = 'QJ002';
  end if;
  if not coalesce(force, false) and exists (
       select 1 from public.job_queue j where j.tenant_id = v_row.id and j.status in ('pending', 'processing')) then
    raise exception 'the tenant has pending or processing jobs; cancel them first or pass force => true'
      using errcode = 'QJ004';
  end if;
  delete from public.tenants t where t.id = v_row.id;
  return v_row;
end
$$;
revoke all on function supaqueue.delete_tenant(uuid, boolean, uuid) from public, anon, authenticated;
grant execute on function supaqueue.delete_tenant(uuid, boolean, uuid) to service_role;

-- ---------------------------------------------------------------------------------------------------
-- Members and super admins. caller null = service.
-- ---------------------------------------------------------------------------------------------------

/**
 * Locks the tenant's membership for a change and checks the caller may make it; returns the caller's
 * standing (see check_tenant_admin). NO KEY UPDATE: serialises membership changes of one tenant
 * (so two admins demoting each other cannot both succeed) without blocking its enqueues.
 */
create function supaqueue.lock_members_for_change(tenant_id uuid, user_id uuid, caller uuid) returns text
language plpgsql volatile set search_path = ''
as $$
begin
  perform 1 from public.tenants t where t.id = lock_members_for_change.tenant_id for no key update;
  if lock_members_for_change.user_id is null then
    perform supaqueue.invalid('user_id is required');
  end if;
  return supaqueue.check_tenant_admin(tenant_id, caller, 'admin');
end
$$;
revoke all on function supaqueue.lock_members_for_change(uuid, uuid, uuid) from public, anon, authenticated;
grant execute on function supaqueue.lock_members_for_change(uuid, uuid, uuid) to service_role;

/** QJ004 when user_id is the tenant's only admin and new_role (null = removed) is not admin. */
create function supaqueue.guard_last_admin(tenant_id uuid, user_id uuid, new_role text) returns void
language plpgsql stable set search_path = ''
as $$
begin
  if new_role is distinct from 'admin'
     and exists (select 1 from public.tenant_members m
                  where m.tenant_id = guard_last_admin.tenant_id and m.user_id = guard_last_admin.user_id and m.role = 'admin')
     and not exists (select 1 from public.tenant_members m
                      where m.tenant_id = guard_last_admin.tenant_id and m.user_id <> guard_last_admin.user_id and m.role = 'admin') then
    raise exception 'the tenant''s last admin cannot be removed or demoted; make someone else admin first'
      using errcode = 'QJ004';
  end if;
end
$$;
revoke all on function supaqueue.guard_last_admin(uuid, uuid, text) from public, anon, authenticated;
grant execute on function supaqueue.guard_last_admin(uuid, uuid, text) to service_role;

/** Adds the user to the tenant with the role, or changes the role of a member. Returns the membership. */
create function supaqueue.add_tenant_member(tenant_id uuid, user_id uuid, role text, caller uuid) returns public.tenant_members
language plpgsql volatile set search_path = ''
as $$
declare
  v_row public.tenant_members;
begin
  if supaqueue.lock_members_for_change(tenant_id, user_id, caller) = 'admin' then
    perform supaqueue.guard_last_admin(tenant_id, user_id, role);
  end if;
  begin
    insert into public.tenant_members as m (tenant_id, user_id, role)
    values (add_tenant_member.tenant_id, add_tenant_member.user_id, add_tenant_member.role)
    on conflict on constraint tenant_members_pkey do update set role = excluded.role
    returning * into v_row;
  exception
    when foreign_key_violation then
      perform supaqueue.invalid('user not found');
    when check_violation or not_null_violation then
      perform supaqueue.invalid('invalid membership: ' || sqlerrm);
  end;
  return v_row;
end
$$;
revoke all on function supaqueue.add_tenant_member(uuid, uuid, text, uuid) from public, anon, authenticated;
grant execute on function supaqueue.add_tenant_member(uuid, uuid, text, uuid) to service_role;

/** Removes the user from the tenant; false when they were not a member. Takes effect at once (RLS reads it). */
create function supaqueue.remove_tenant_member(tenant_id uuid, user_id uuid, caller uuid) returns boolean
language plpgsql volatile set search_path = ''
as $$
declare
  v_found boolean;
begin
  if supaqueue.lock_members_for_change(tenant_id, user_id, caller) = 'admin' then
    perform supaqueue.guard_last_admin(tenant_id, user_id, null);
  end if;
  delete from public.tenant_members m
   where m.tenant_id = remove_tenant_member.tenant_id and m.user_id = remove_tenant_member.user_id;
  get diagnostics v_found = row_count;
  return v_found;
end
$$;
revoke all on function supaqueue.remove_tenant_member(uuid, uuid, uuid) from public, anon, authenticated;
grant execute on function supaqueue.remove_tenant_member(uuid, uuid, uuid) to service_role;

/** Grants (make) or revokes super admin; true when that changed something. */
create function supaqueue.set_super_admin(user_id uuid, make boolean, caller uuid) returns boolean
language plpgsql volatile set search_path = ''
as $$
declare
  v_changed boolean;
begin
  perform supaqueue.check_operator(caller);
  if set_super_admin.user_id is null then
    perform supaqueue.invalid('user_id is required');
  end if;
  if make then
    begin
      insert into supaqueue.super_admins (user_id) values (set_super_admin.user_id) on conflict do nothing;
    exception when foreign_key_violation then
      perform supaqueue.invalid('user not found');
    end;
  else
    delete from supaqueue.super_admins s where s.user_id = set_super_admin.user_id;
  end if;
  get diagnostics v_changed = row_count;
  return v_changed;
end
$$;
revoke all on function supaqueue.set_super_admin(uuid, boolean, uuid) from public, anon, authenticated;
grant execute on function supaqueue.set_super_admin(uuid, boolean, uuid) to service_role;

-- ---------------------------------------------------------------------------------------------------
-- Routing: service path, member path (the one definer helper), and the router the public API calls
-- ---------------------------------------------------------------------------------------------------

/** Runs one management action for caller (null = service); arguments in args. Returns the result as JSON. */
create function supaqueue.tenant_admin_run(action text, args jsonb, caller uuid) returns jsonb
language plpgsql volatile set search_path = ''
as $$
declare
  v_tenant uuid := (args ->> 'tenant_id')::uuid;
  v_user uuid := (args ->> 'user_id')::uuid;
  v_limits jsonb := nullif(args -> 'limits', 'null'::jsonb);
begin
  case action
    when 'create_tenant' then
      return to_jsonb(supaqueue.create_tenant(args ->> 'name', v_limits, (args ->> 'id')::uuid, caller));
    when 'rename_tenant' then return to_jsonb(supaqueue.rename_tenant(v_tenant, args ->> 'name', caller));
    when 'set_tenant_limits' then return to_jsonb(supaqueue.set_tenant_limits(v_tenant, v_limits, caller));
    when 'delete_tenant' then return to_jsonb(supaqueue.delete_tenant(v_tenant, (args ->> 'force')::boolean, caller));
    when 'add_tenant_member' then return to_jsonb(supaqueue.add_tenant_member(v_tenant, v_user, args ->> 'role', caller));
    when 'remove_tenant_member' then return to_jsonb(supaqueue.remove_tenant_member(v_tenant, v_user, caller));
    when 'grant_super_admin' then return to_jsonb(supaqueue.set_super_admin(v_user, true, caller));
    when 'revoke_super_admin' then return to_jsonb(supaqueue.set_super_admin(v_user, false, caller));
    else perform supaqueue.invalid('unknown action');
  end case;
  return null;
end
$$;
revoke all on function supaqueue.tenant_admin_run(text, jsonb, uuid) from public, anon, authenticated;
grant execute on function supaqueue.tenant_admin_run(text, jsonb, uuid) to service_role;

/** Member path: the caller is auth.uid(), never an argument. */
create function supaqueue.tenant_admin_as_member(action text, args jsonb) returns jsonb
language plpgsql volatile security definer set search_path = ''
as $$
-- security definer: signed-in users cannot write tenants, tenant_members or super_admins; every
-- action checks the caller's standing (super admin, or admin of that very tenant) before it writes.
declare
  v_user uuid := (select auth.uid());
begin
  if v_user is null then
    raise exception 'sign in required' using errcode = 'QJ008';
  end if;
  return supaqueue.tenant_admin_run(action, args, v_user);
end
$$;
revoke all on function supaqueue.tenant_admin_as_member(text, jsonb) from public, anon, service_role;
grant execute on function supaqueue.tenant_admin_as_member(text, jsonb) to authenticated;

/** Routes to the member path (signed-in users) or the service path; anon gets QJ008. */
create function supaqueue.tenant_admin(action text, args jsonb) returns jsonb
language plpgsql volatile set search_path = ''
as $$
begin
  if current_user = 'anon' then
    raise exception 'sign in required' using errcode = 'QJ008';
  elsif supaqueue.caller_kind() = 'user' then
    return supaqueue.tenant_admin_as_member(action, args);
  end if;
  return supaqueue.tenant_admin_run(action, args, null);
end
$$;
revoke all on function supaqueue.tenant_admin(text, jsonb) from public, anon;
grant execute on function supaqueue.tenant_admin(text, jsonb) to authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------
-- Public API (security invoker)
-- ---------------------------------------------------------------------------------------------------

/**
 * Creates a tenant; limits: {"max_concurrent_jobs": n, "max_queued_jobs": n, ...} (any max_* column of
 * public.tenants; left out = the column's default); id: your own id for it (default random). Service
 * role, super admins.
 * Errors: QJ001, QJ004 (id taken), QJ008, QJ010.
 */
create function public.create_tenant(name text, limits jsonb default '{}'::jsonb, id uuid default null) returns public.tenants
language sql volatile set search_path = ''
as $$
  select * from jsonb_populate_record(null::public.tenants, supaqueue.tenant_admin('create_tenant',
    jsonb_build_object('name', create_tenant.name, 'limits', create_tenant.limits, 'id', create_tenant.id)))
$$;
revoke all on function public.create_tenant(text, jsonb, uuid) from public, anon;
grant execute on function public.create_tenant(text, jsonb, uuid) to authenticated, service_role;

/** Renames a tenant. Service role, super admins. Errors: QJ001, QJ002, QJ008, QJ010. */
create function public.rename_tenant(tenant_id uuid, name text) returns public.tenants
language sql volatile set search_path = ''
as $$
  select * from jsonb_populate_record(null::public.tenants, supaqueue.tenant_admin('rename_tenant',
    jsonb_build_object('tenant_id', rename_tenant.tenant_id, 'name', rename_tenant.name)))
$$;
revoke all on function public.rename_tenant(uuid, text) from public, anon;
grant execute on function public.rename_tenant(uuid, text) to authenticated, service_role;

/**
 * Sets the given limits, any max_* column of public.tenants ({"max_queued_jobs": 1000,
 * "max_concurrent_jobs": null}: null removes that limit; absent keys keep their value). Service role,
 * super admins (a tenant admin raising their own quota would have none). Errors: QJ001, QJ002, QJ008, QJ010.
 */
create function public.set_tenant_limits(tenant_id uuid, limits jsonb) returns public.tenants
language sql volatile set search_path = ''
as $$
  select * from jsonb_populate_record(null::public.tenants, supaqueue.tenant_admin('set_tenant_limits',
    jsonb_build_object('tenant_id', set_tenant_limits.tenant_id, 'limits', set_tenant_limits.limits)))
$$;
revoke all on function public.set_tenant_limits(uuid, jsonb) from public, anon;
grant execute on function public.set_tenant_limits(uuid, jsonb) to authenticated, service_role;

/**
 * Deletes a tenant with its members, schedules and jobs; refused while it has pending or processing
 * jobs unless force. Returns the deleted row. Service role, super admins.
 * Errors: QJ002, QJ004 (active jobs), QJ008, QJ010.
 */
create function public.delete_tenant(tenant_id uuid, force boolean default false) returns public.tenants
language sql volatile set search_path = ''
as $$
  select * from jsonb_populate_record(null::public.tenants, supaqueue.tenant_admin('delete_tenant',
    jsonb_build_object('tenant_id', delete_tenant.tenant_id, 'force', delete_tenant.force)))
$$;
revoke all on function public.delete_tenant(uuid, boolean) from public, anon;
grant execute on function public.delete_tenant(uuid, boolean) to authenticated, service_role;

/**
 * Adds a user to a tenant as 'member' or 'admin', or changes a member's role. Service role, super
 * admins, the tenant's admins. Errors: QJ001 (unknown user, bad role), QJ002, QJ004 (demoting the last
 * admin, for tenant admins), QJ008, QJ010.
 */
create function public.add_tenant_member(tenant_id uuid, user_id uuid, role text default 'member') returns public.tenant_members
language sql volatile set search_path = ''
as $$
  select * from jsonb_populate_record(null::public.tenant_members, supaqueue.tenant_admin('add_tenant_member',
    jsonb_build_object('tenant_id', add_tenant_member.tenant_id, 'user_id', add_tenant_member.user_id, 'role', add_tenant_member.role)))
$$;
revoke all on function public.add_tenant_member(uuid, uuid, text) from public, anon;
grant execute on function public.add_tenant_member(uuid, uuid, text) to authenticated, service_role;

/**
 * Removes a user from a tenant (at once: membership is read at query time); false when they were not
 * a member. Service role, super admins, the tenant's admins. Errors: QJ001, QJ002, QJ004 (the last
 * admin, for tenant admins), QJ008, QJ010.
 */
create function public.remove_tenant_member(tenant_id uuid, user_id uuid) returns boolean
language sql volatile set search_path = ''
as $$
  select (supaqueue.tenant_admin('remove_tenant_member',
    jsonb_build_object('tenant_id', remove_tenant_member.tenant_id, 'user_id', remove_tenant_member.user_id)))::boolean
$$;
revoke all on function public.remove_tenant_member(uuid, uuid) from public, anon;
grant execute on function public.remove_tenant_member(uuid, uuid) to authenticated, service_role;

/** Makes a user super admin; false when they already were. Service role, super admins. Errors: QJ001, QJ008, QJ010. */
create function public.grant_super_admin(user_id uuid) returns boolean
language sql volatile set search_path = ''
as $$
  select (supaqueue.tenant_admin('grant_super_admin', jsonb_build_object('user_id', grant_super_admin.user_id)))::boolean
$$;
revoke all on function public.grant_super_admin(uuid) from public, anon;
grant execute on function public.grant_super_admin(uuid) to authenticated, service_role;

/** Takes super admin away; false when the user was not one. Service role, super admins. Errors: QJ001, QJ008, QJ010. */
create function public.revoke_super_admin(user_id uuid) returns boolean
language sql volatile set search_path = ''
as $$
  select (supaqueue.tenant_admin('revoke_super_admin', jsonb_build_object('user_id', revoke_super_admin.user_id)))::boolean
$$;
revoke all on function public.revoke_super_admin(uuid) from public, anon;
grant execute on function public.revoke_super_admin(uuid) to authenticated, service_role;
