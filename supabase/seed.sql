-- Local demo data (applied by `supabase db reset`; never by a migration). The ids are fixed so the local
-- stack can print a ready-to-use access token for the demo user.

insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, email_confirmed_at)
values
  ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'authenticated', 'authenticated', 'demo@acme.test', '{"provider":"email","providers":["email"]}', '{}', now()),
  ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'authenticated', 'authenticated', 'demo@globex.test', '{"provider":"email","providers":["email"]}', '{}', now()),
  ('cccccccc-cccc-4ccc-8ccc-cccccccccccc', 'authenticated', 'authenticated', 'ops@supaqueue.test', '{"provider":"email","providers":["email"]}', '{}', now())
on conflict (id) do nothing;

insert into public.tenants (id, name, max_concurrent_jobs, max_queued_jobs)
values
  ('11111111-1111-4111-8111-111111111111', 'Acme', null, null),
  ('22222222-2222-4222-8222-222222222222', 'Globex', 2, 1000)
on conflict (id) do nothing;

insert into public.tenant_members (tenant_id, user_id, role)
values
  ('11111111-1111-4111-8111-111111111111', 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'admin'),
  ('22222222-2222-4222-8222-222222222222', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'member')
on conflict do nothing;

insert into supaqueue.super_admins (user_id) values ('cccccccc-cccc-4ccc-8ccc-cccccccccccc') on conflict do nothing;

-- A few jobs of each demo type; the local stack's worker (worker/examples/demo-handlers.ts) runs them.
select public.enqueue_jobs(jsonb_build_array(
  jsonb_build_object('tenant_id', '11111111-1111-4111-8111-111111111111', 'type', 'demo.echo', 'payload', jsonb_build_object('hello', 'world'), 'idempotency_key', 'seed-echo'),
  jsonb_build_object('tenant_id', '11111111-1111-4111-8111-111111111111', 'type', 'demo.report', 'payload', jsonb_build_object('report', 'monthly'), 'idempotency_key', 'seed-report'),
  jsonb_build_object('tenant_id', '11111111-1111-4111-8111-111111111111', 'type', 'demo.flaky', 'payload', '{}'::jsonb, 'idempotency_key', 'seed-flaky', 'backoff_base_ms', 500),
  jsonb_build_object('tenant_id', '11111111-1111-4111-8111-111111111111', 'type', 'demo.email', 'payload', jsonb_build_object('subject', 'no recipient'), 'idempotency_key', 'seed-email-bad'),
  jsonb_build_object('tenant_id', '22222222-2222-4222-8222-222222222222', 'type', 'demo.email', 'payload', jsonb_build_object('to', 'ceo@globex.test', 'subject', 'Welcome'), 'idempotency_key', 'seed-email')
));

-- Demo recurring jobs (next_run_at left out = "from now on"); `npm start` calls the jobs-scheduler
-- function every minute, as pg_cron does on a hosted project.
insert into public.job_schedules (tenant_id, name, cron, time_zone, job_type, payload) values
  ('11111111-1111-4111-8111-111111111111', 'demo-echo-every-minute', '* * * * *', 'UTC', 'demo.echo', '{"hello":"from a schedule"}'),
  ('11111111-1111-4111-8111-111111111111', 'demo-daily-report', '0 9 * * *', 'Europe/Berlin', 'demo.report', '{"report":"daily"}')
on conflict (tenant_id, name) do nothing;
