-- supaqueue 0003: state for the edge API (supabase/functions/jobs).
--
-- Per-user rate limiting shared by every function instance: isolates come and go and several run at
-- once, so an in-memory counter would let a user multiply their budget by the number of isolates.
-- The edge function calls supaqueue.rate_limit_hit once per request, before the request's own
-- transaction, on its own connection role (postgres via SUPABASE_DB_URL). No API role can call it or
-- read the counters: a user must not be able to reset their own budget or learn other users' ids.

-- Unlogged: counters are worth nothing after a crash (losing them only resets budgets) and need no WAL
-- or replication, which keeps this one-row-per-request write cheap.
create unlogged table supaqueue.rate_limits (
  key text primary key,
  window_start timestamptz not null,
  hits integer not null,
  constraint rate_limit_key_length check (char_length(key) between 1 and 200),
  constraint rate_limit_hits_positive check (hits > 0)
);
comment on table supaqueue.rate_limits is 'Edge API rate-limit windows, one row per key (api:<user id>). Written only by supaqueue.rate_limit_hit.';

alter table supaqueue.rate_limits enable row level security;
-- No policies: only the owner (postgres) and bypassrls roles touch it, through the function below.
revoke all on supaqueue.rate_limits from public, anon, authenticated, service_role;

/**
 * Counts one request for `key` and says whether it is within max_hits per window_seconds.
 *
 * A fixed window anchored at the key's first request (not at clock boundaries): the window starts at
 * the first hit and lasts window_seconds; the next hit after it starts a new one. So "61 requests
 * within a minute of the first" is always refused at the 61st, whatever the wall clock says. Worst
 * case a client gets 2 * max_hits across the end of one window and the start of the next.
 *
 * One INSERT ... ON CONFLICT statement: the row lock serialises concurrent requests of the same key
 * (instances never race a read-then-write), and different keys never wait on each other. Refused
 * hits are still counted (capped at max_hits + 1) but never move the window, so hammering does not
 * extend a ban. retry_after_seconds is 0 when allowed, otherwise the seconds until the window ends.
 */
create function supaqueue.rate_limit_hit(key text, max_hits integer, window_seconds integer)
returns table (allowed boolean, hits integer, retry_after_seconds integer)
language sql volatile set search_path = ''
as $$
  insert into supaqueue.rate_limits as r (key, window_start, hits)
  values (rate_limit_hit.key, now(), 1)
  on conflict on constraint rate_limits_pkey do update
    set window_start = case when r.window_start + make_interval(secs => rate_limit_hit.window_seconds) <= now()
                            then now() else r.window_start end,
        hits = case when r.window_start + make_interval(secs => rate_limit_hit.window_seconds) <= now()
                    then 1 else least(r.hits + 1, rate_limit_hit.max_hits + 1) end
  returning r.hits <= rate_limit_hit.max_hits,
            r.hits,
            case when r.hits <= rate_limit_hit.max_hits then 0
                 else greatest(1, ceil(extract(epoch from
                        r.window_start + make_interval(secs => rate_limit_hit.window_seconds) - now()))::integer)
            end
$$;
comment on function supaqueue.rate_limit_hit(text, integer, integer) is 'Edge API rate limiter: counts a hit for key; (allowed, hits, retry_after_seconds). Owner only.';
revoke all on function supaqueue.rate_limit_hit(text, integer, integer) from public, anon, authenticated, service_role;
