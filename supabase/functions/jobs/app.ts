/**
 * The `jobs` function as a Hono app, separate from index.ts so tests and other entry points can build
 * it with their own configuration.
 *
 * Order of every request: trace/request ids -> CORS (preflights end here, before auth and the DB)
 * -> bearer token verified -> per-user rate limit -> routes. Routers under /jobs are mounted before
 * the jobs router (index.ts mounts the schedules router at /jobs/schedules), because /jobs/:id
 * would otherwise take `schedules` as a (malformed) job id.
 */
import { Hono } from 'hono';
import { createVerifier, requireUser, type Verifier } from '../_supaqueue/auth.ts';
import type { Config } from '../_supaqueue/config.ts';
import { cors } from '../_supaqueue/cors.ts';
import { createDb, type Db } from '../_supaqueue/db.ts';
import { ApiError, jsonError, toApiError, type AppEnv } from '../_supaqueue/http.ts';
import { describeError, log } from '../_supaqueue/log.ts';
import { rateLimit } from '../_supaqueue/rate-limit.ts';
import { requestIdFrom, traceIdFrom } from '../_supaqueue/trace.ts';
import { createJobsRouter } from './routes.ts';

export interface AppDeps {
  db: Db;
  verify: Verifier;
}

/** What every router under /jobs is built from. */
export interface RouterDeps {
  db: Db;
  maxBodyBytes: number;
}

/** A router mounted before the jobs router, e.g. { path: '/jobs/schedules', router: createSchedulesRouter(deps) }. */
export interface Mount {
  /** Absolute path, under /jobs so auth and rate limiting apply. */
  path: string;
  router: Hono<AppEnv>;
}

export function createApp(cfg: Config, deps: AppDeps, mounts: Mount[] = []): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use('*', async (c, next) => {
    c.set('traceId', traceIdFrom(c.req.raw.headers));
    c.set('requestId', requestIdFrom(c.req.raw.headers));
    await next();
    c.res.headers.set('x-trace-id', c.get('traceId'));
  });
  app.use('*', cors(cfg.cors));
  // '/jobs/*' also matches '/jobs' itself (registering both would verify and count twice).
  app.use('/jobs/*', requireUser(deps.verify));
  app.use('/jobs/*', rateLimit(deps.db.sql, cfg.rateLimit.perMinute));

  for (const m of mounts) app.route(m.path, m.router);
  app.route('/jobs', createJobsRouter({ db: deps.db, maxBodyBytes: cfg.maxBodyBytes }));

  app.notFound((c) => jsonError(c, new ApiError('NOT_FOUND', 'no such endpoint')));
  app.onError((e, c) => {
    const known = toApiError(e);
    if (known && known.status < 500) return jsonError(c, known);
    // Unexpected (or an outage): the caller gets a code and the trace id, the details go to the log.
    log('error', 'request failed', {
      trace_id: c.get('traceId'), method: c.req.method, path: c.req.path, code: known?.code ?? 'INTERNAL', ...describeError(e),
    });
    return jsonError(c, known ?? new ApiError('INTERNAL', 'internal error; quote the trace id when reporting it'));
  });
  return app;
}

/**
 * A fetch handler for Deno.serve, with its database pool and token verifier, built from config.
 * `mounts` builds the extra routers from the same dependencies (one pool per isolate).
 */
export function createHandler(cfg: Config, mounts: (deps: RouterDeps) => Mount[] = () => []): (req: Request) => Promise<Response> {
  const db = createDb(cfg);
  const app = createApp(cfg, { db, verify: createVerifier(cfg.jwt) }, mounts({ db, maxBodyBytes: cfg.maxBodyBytes }));
  return async (req) => {
    try {
      return await app.fetch(req);
    } catch (e) {
      // Hono's onError covers handlers and middleware; this only catches a bug in that path itself.
      log('error', 'unhandled error', describeError(e));
      return new Response('{"error":{"code":"INTERNAL","message":"internal error"}}', {
        status: 500, headers: { 'Content-Type': 'application/json' },
      });
    }
  };
}
