/**
 * The `jobs-scheduler` function as a Hono app: POST /jobs-scheduler runs one scheduler pass
 * (../_supaqueue/schedules.ts) and answers its summary. Service role only (auth.ts). Called every minute
 * by pg_cron through pg_net (migration 20261123000500), and safe to call more often, twice at once,
 * or again after a timeout: every step is bounded and idempotent.
 */
import { Hono } from 'hono';
import type { Sql } from '../_supaqueue/db.ts';
import { ApiError, jsonError, jsonOk, toApiError, type AppEnv } from '../_supaqueue/http.ts';
import { describeError, log } from '../_supaqueue/log.ts';
import { runScheduler, type SchedulerLimits } from '../_supaqueue/schedules.ts';
import { traceIdFrom } from '../_supaqueue/trace.ts';
import type { ServiceAuthorizer } from './auth.ts';

export interface SchedulerDeps {
  sql: Sql;
  authorize: ServiceAuthorizer;
  limits: SchedulerLimits;
}

// On Supabase the function sees its own name as the first path segment.
const PATH = '/jobs-scheduler';

export function createSchedulerApp(deps: SchedulerDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use('*', async (c, next) => {
    c.set('traceId', traceIdFrom(c.req.raw.headers));
    c.set('requestId', null);
    await next();
  });

  app.post(PATH, async (c) => {
    await deps.authorize({ authorization: c.req.header('authorization') ?? null, apikey: c.req.header('apikey') ?? null });
    const summary = await runScheduler(deps.sql, deps.limits);
    log(summary.errors.length ? 'error' : 'info', 'scheduler pass', { trace_id: c.get('traceId'), ...summary });
    if (summary.errors.length) {
      // A non-2xx shows up in pg_net's responses and cron monitoring; the steps that worked are done.
      const failed = summary.errors.map((e) => `${e.step} (${e.code})`).join(', ');
      return jsonError(c, new ApiError('INTERNAL', `scheduler steps failed: ${failed}; the other steps ran`));
    }
    return jsonOk(c, summary);
  });
  app.all(PATH, () => {
    throw new ApiError('METHOD_NOT_ALLOWED', 'use POST', { Allow: 'POST' });
  });

  app.notFound((c) => jsonError(c, new ApiError('NOT_FOUND', 'no such endpoint')));
  app.onError((e, c) => {
    const known = toApiError(e);
    if (known && known.status < 500) return jsonError(c, known);
    log('error', 'scheduler request failed', { trace_id: c.get('traceId'), ...describeError(e) });
    return jsonError(c, known ?? new ApiError('INTERNAL', 'internal error; quote the trace id when reporting it'));
  });
  return app;
}
