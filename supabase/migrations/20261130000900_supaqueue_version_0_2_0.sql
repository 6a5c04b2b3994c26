-- supaqueue 0.2.0: the release whose migrations built this schema (see 20261123000600_supaqueue_version.sql).
-- Kept the last migration of each release, so the version is right once every migration before it ran.
create or replace function supaqueue.version() returns text
language sql immutable parallel safe set search_path = ''
as $$ select '0.2.0' $$;
