/**
 * Per-user rate limit shared by all instances of all functions, kept in Postgres
 * (supaqueue.rate_limit_hit, migration 20261123000300). Checked before the request's transaction, on
 * the connection's own role: the function is not executable by API roles, so users can neither call
 * nor reset it. One short INSERT ... ON CONFLICT per request.
 */
import type { MiddlewareHandler } from 'hono';
import type { Sql } from './db.ts';
import { ApiError, type AppEnv } from './http.ts';

const WINDOW_SECONDS = 60;

export interface RateLimitResult {
  allowed: boolean;
  retryAfterSeconds: number;
}

/** Counts one request for key against perMinute. */
export async function hitRateLimit(sql: Sql, key: string, perMinute: number): Promise<RateLimitResult> {
  const [row] = await sql`select allowed, retry_after_seconds from supaqueue.rate_limit_hit(${key}, ${perMinute}, ${WINDOW_SECONDS})`;
  return { allowed: row.allowed as boolean, retryAfterSeconds: row.retry_after_seconds as number };
}

/** Middleware (after auth): 429 RATE_LIMITED with Retry-After once the user's budget is spent. 0 = off. */
export function rateLimit(sql: Sql, perMinute: number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (perMinute > 0) {
      const { allowed, retryAfterSeconds } = await hitRateLimit(sql, `api:${c.get('user').id}`, perMinute);
      if (!allowed) {
        throw new ApiError('RATE_LIMITED', `more than ${perMinute} requests per minute; retry later`, {
          'Retry-After': String(retryAfterSeconds),
        });
      }
    }
    await next();
  };
}
