-- supaqueue 0006: the release whose migrations built this schema (for installers, upgrades and support).
-- Every release that changes the SQL ships a new migration that recreates this function with its version.
create or replace function supaqueue.version() returns text
language sql immutable parallel safe set search_path = ''
as $$ select '0.1.0' $$;
comment on function supaqueue.version() is 'supaqueue release of the installed SQL; bumped by each release that changes it.';
revoke all on function supaqueue.version() from public, anon;
grant execute on function supaqueue.version() to authenticated, service_role;
