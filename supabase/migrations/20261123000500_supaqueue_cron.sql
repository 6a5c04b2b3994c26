-- supaqueue 0005: call the `jobs-scheduler` edge function every minute with pg_cron + pg_net.
--
-- The scheduler (reclaim expired leases, enqueue due recurring jobs, purge old jobs) is an edge function
-- because cron expressions are evaluated in TypeScript; pg_cron is only its clock. Where pg_cron and
-- pg_net are available (hosted Supabase, `supabase start`) this migration enables them and schedules
-- the job 'supaqueue-scheduler'; re-running it replaces that job. Where they are not (the embedded
-- Postgres of `npm start` / `npm test`) it only raises a NOTICE: run the function another way there.
--
-- The project URL and the service key are read from Vault at every run, never written in SQL. Create
-- both secrets once per project (SQL editor or psql as postgres), e.g.:
--
--   select vault.create_secret('https://<project-ref>.supabase.co', 'supaqueue_project_url');
--   select vault.create_secret('<service_role key>', 'supaqueue_service_role_key');
--
-- The key must be what jobs-scheduler accepts: the project's service_role key (the value the function
-- sees as SUPABASE_SERVICE_ROLE_KEY), or a service_role JWT signed with the project's JWT secret.
-- To rotate it later:
--
--   select vault.update_secret((select id from vault.secrets where name = 'supaqueue_service_role_key'),
--                              '<new key>');
--
-- Until both exist, each run logs a WARNING and sends nothing. Check runs with
--   select * from cron.job_run_details order by start_time desc limit 10;
--   select * from net._http_response order by created desc limit 10;

/**
 * POSTs to <project url>/functions/v1/jobs-scheduler with the service key from Vault; returns pg_net's
 * request id (null when a secret is missing). pg_net sends asynchronously, so a pg_cron run never waits
 * for the function. The timeout stays under the one-minute period, so runs cannot pile up in pg_net.
 */
create or replace function supaqueue.invoke_scheduler() returns bigint
language plpgsql volatile set search_path = ''
as $$
declare
  v_url text;
  v_key text;
begin
  select max(s.decrypted_secret) filter (where s.name = 'supaqueue_project_url'),
         max(s.decrypted_secret) filter (where s.name = 'supaqueue_service_role_key')
    into v_url, v_key
  from vault.decrypted_secrets s
  where s.name in ('supaqueue_project_url', 'supaqueue_service_role_key');
  if v_url is null or v_key is null then
    raise warning 'supaqueue: Vault secrets supaqueue_project_url and supaqueue_service_role_key are required to run jobs-scheduler';
    return null;
  end if;
  return net.http_post(
    url := rtrim(v_url, '/') || '/functions/v1/jobs-scheduler',
    body := '{}'::jsonb,
    headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || v_key),
    timeout_milliseconds := 50000
  );
end
$$;
-- Only the owner (postgres, which pg_cron runs the job as) may call it: it reads the service key.
-- (create or replace: the whole file may be re-run, e.g. after enabling pg_cron on a project.)
revoke all on function supaqueue.invoke_scheduler() from public, anon, authenticated, service_role;

do $$
begin
  -- pg_cron runs jobs only from the database named in cron.database_name (postgres on Supabase); any
  -- other database (e.g. the test templates cloned on a `supabase start` server) is skipped too.
  if (select count(*) from pg_catalog.pg_available_extensions e where e.name in ('pg_cron', 'pg_net')) < 2
     or coalesce(current_setting('cron.database_name', true), 'postgres') <> current_database() then
    raise notice 'supaqueue: pg_cron/pg_net are not available in this database; jobs-scheduler is not scheduled here (call it from another scheduler)';
    return;
  end if;
  -- As Supabase's Cron module installs them.
  create extension if not exists pg_cron with schema pg_catalog;
  create extension if not exists pg_net with schema extensions;
  -- Replace, not duplicate, on re-run (older pg_cron versions add a second job with the same name).
  perform cron.unschedule(j.jobid) from cron.job j where j.jobname = 'supaqueue-scheduler';
  perform cron.schedule('supaqueue-scheduler', '* * * * *', 'select supaqueue.invoke_scheduler()');
end
$$;
