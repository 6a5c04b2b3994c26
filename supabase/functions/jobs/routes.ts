/**
 * The /jobs router (mounted at /jobs; auth and rate limiting already ran). Each handler validates its
 * input, then does its work in one transaction as the caller.
 *
 *   GET  /jobs              list the caller's tenants' jobs (status, type, tenant_id, created_after/before,
 *                           payload (JSON containment), search (id or idempotency key), mine, limit, cursor)
 *   POST /jobs              enqueue                          201, or 200 for an idempotent repeat
 *   GET  /jobs/:id          one job                          404 JOB_NOT_FOUND if absent or not visible
 *   POST /jobs/:id/retry    retry a failed/cancelled job     body { extra_attempts? }
 *   POST /jobs/:id/cancel   cancel (DELETE /jobs/:id is the same)
 *   GET  /jobs/limits       the caller's tier limits and active jobs in a tenant (tenant_id optional)
 *   POST /jobs/bulk         retry/cancel the jobs matching a filter (tenant admins; bounded; dry_run counts)
 *
 * `:id{[^/]*}` also matches an empty segment (`/jobs//cancel`), so it gets the same 400 as `abc`.
 */
import { Hono, type Context } from 'hono';
import type { Db } from '../_supaqueue/db.ts';
import { ApiError, jsonArrayText, jsonOk, jsonOkText, readJsonBody, type AppEnv } from '../_supaqueue/http.ts';
import { bulkAct, cancelJob, enqueueJob, getJob, listJobs, myLimits, resolveTenant, retryJob } from './queries.ts';
import {
  BulkBody, CancelBody, decodeCursor, encodeCursor, EnqueueBody, LimitsQuery, ListQuery, parseInput, parseJobId, RetryBody,
} from './schemas.ts';

export interface JobsRouterDeps {
  db: Db;
  maxBodyBytes: number;
}

const ID = ':id{[^/]*}';

/** 405 with Allow, for a known path called with another method. */
function methodNotAllowed(allow: string) {
  return (_c: Context<AppEnv>): never => {
    throw new ApiError('METHOD_NOT_ALLOWED', `use ${allow}`, { Allow: allow });
  };
}

export function createJobsRouter({ db, maxBodyBytes }: JobsRouterDeps): Hono<AppEnv> {
  const r = new Hono<AppEnv>();

  r.get('/', async (c) => {
    const q = parseInput(ListQuery, c.req.query());
    const after = q.cursor ? decodeCursor(q.cursor) : undefined;
    const user = c.get('user');
    const { jobs, more } = await db.asUser(user, (tx) => listJobs(tx, { ...q, after, userId: user.id }));
    const last = jobs.at(-1);
    const nextCursor = more && last ? encodeCursor(last.created_at, last.id) : null;
    return jsonOkText(c, jsonArrayText(jobs), 200, { next_cursor: nextCursor });
  });

  r.post('/', async (c) => {
    const body = parseInput(EnqueueBody, await readJsonBody(c, { required: true, maxBytes: maxBodyBytes }));
    const user = c.get('user');
    const envelope = { traceId: c.get('traceId'), requestId: c.get('requestId'), actorId: user.id };
    const { job, created } = await db.asUser(user, async (tx) => {
      const tenantId = await resolveTenant(tx, body.tenant_id);
      return enqueueJob(tx, body, tenantId, envelope);
    });
    return jsonOkText(c, job.json, created ? 201 : 200);
  });

  // Before /:id, which would take `bulk` for a (malformed) job id.
  r.post('/bulk', async (c) => {
    const body = parseInput(BulkBody, await readJsonBody(c, { required: true, maxBytes: maxBodyBytes }));
    const result = await db.asUser(c.get('user'), (tx) => bulkAct(tx, body));
    return jsonOk(c, { action: body.action, dry_run: body.dry_run ?? false, count: result.jobs.length, more: result.more,
      limit: result.limit, jobs: result.jobs });
  });
  r.all('/bulk', methodNotAllowed('POST'));

  // Before /:id too.
  r.get('/limits', async (c) => {
    const q = parseInput(LimitsQuery, c.req.query());
    const json = await db.asUser(c.get('user'), async (tx) => myLimits(tx, await resolveTenant(tx, q.tenant_id)));
    return jsonOkText(c, json);
  });
  r.all('/limits', methodNotAllowed('GET'));

  r.get(`/${ID}`, async (c) => {
    const id = parseJobId(c.req.param('id'));
    const job = await db.asUser(c.get('user'), (tx) => getJob(tx, id));
    if (!job) throw new ApiError('JOB_NOT_FOUND', 'job not found');
    return jsonOkText(c, job.json);
  });

  r.post(`/${ID}/retry`, async (c) => {
    const id = parseJobId(c.req.param('id'));
    const body = parseInput(RetryBody, (await readJsonBody(c, { required: false, maxBytes: maxBodyBytes })) ?? {});
    const job = await db.asUser(c.get('user'), (tx) => retryJob(tx, id, body.extra_attempts ?? 0));
    return jsonOkText(c, job.json);
  });

  // POST /jobs/:id/cancel and DELETE /jobs/:id: one handler, the same answers.
  const cancel = async (c: Context<AppEnv>) => {
    const id = parseJobId(c.req.param('id'));
    // No body is needed; one that is sent must still be well-formed JSON (and an empty object). Without
    // Content-Length and Transfer-Encoding a request has no body (RFC 9112), though Deno gives a DELETE
    // an empty stream (fetch sends Content-Length: 0 only for POST).
    const framed = c.req.header('content-length') !== undefined || c.req.header('transfer-encoding') !== undefined;
    if (framed) parseInput(CancelBody, (await readJsonBody(c, { required: false, maxBytes: maxBodyBytes })) ?? {});
    const job = await db.asUser(c.get('user'), (tx) => cancelJob(tx, id));
    return jsonOkText(c, job.json);
  };
  r.post(`/${ID}/cancel`, cancel);
  r.delete(`/${ID}`, cancel);

  r.all('/', methodNotAllowed('GET, POST'));
  r.all(`/${ID}`, methodNotAllowed('GET, DELETE'));
  r.all(`/${ID}/retry`, methodNotAllowed('POST'));
  r.all(`/${ID}/cancel`, methodNotAllowed('POST'));
  return r;
}
