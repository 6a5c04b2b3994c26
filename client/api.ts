/**
 * Typed helpers for the jobs API, over the supabase-js client your frontend already has:
 *
 *   const { data: job, error } = await enqueueJob(supabase, { type: 'email.send', payload: { to } });
 *   if (error?.code === 'QUEUE_QUOTA_EXCEEDED' || error?.code === 'CONCURRENT_JOB_LIMIT') retryLater(error.retryAfterSeconds);
 *
 * Requests go through `supabase.functions.invoke`, so they carry the signed-in user's access token and
 * the project's publishable/anon key, and run under the user's row-level security. There is no service
 * key here and none is needed: never ship one to a browser. Every helper resolves (never rejects) to
 * `{ data, error }`, with `error.code` a stable code from the API (see JobsErrorCode).
 */
import type { SupabaseClient } from '@supabase/supabase-js';
import type {
  EnqueueJobInput, EnqueueResult, Job, JobsError, JobsErrorCode, JobsResult, ListJobsParams, ListJobsResult,
  RequestOptions, UserLimits,
} from './types.ts';

type Reply = { ok: true; status: number; body: { data: unknown; meta?: { next_cursor?: string | null } } } | { ok: false; error: JobsError };

export const clientError = (code: JobsErrorCode, message: string): JobsError =>
  ({ code, message, status: null, traceId: null, retryAfterSeconds: null, details: null });

/** The API's error body from a FunctionsHttpError's response; a generic code if it is not ours. */
async function errorFromResponse(res: Response): Promise<JobsError> {
  let body: { error?: { code?: string; message?: string; details?: Record<string, unknown> }; meta?: { trace_id?: string } } | null = null;
  try {
    body = await res.clone().json();
  } catch {
    // Not JSON: a gateway or proxy error page.
  }
  const retryAfter = Number(res.headers.get('retry-after'));
  return {
    code: (body?.error?.code ?? (res.status >= 500 ? 'UNAVAILABLE' : 'INTERNAL')) as JobsErrorCode,
    message: body?.error?.message ?? `HTTP ${res.status}`,
    status: res.status,
    traceId: res.headers.get('x-trace-id') ?? body?.meta?.trace_id ?? null,
    retryAfterSeconds: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null,
    details: body?.error?.details ?? null,
  };
}

async function call(supabase: Pick<SupabaseClient, 'functions'>, path: string, method: 'GET' | 'POST', body: unknown, opts: RequestOptions): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (opts.traceId) headers['x-trace-id'] = opts.traceId;
  if (opts.requestId) headers['x-request-id'] = opts.requestId;
  const { data, error, response } = await supabase.functions.invoke(`${opts.functionName ?? 'jobs'}${path}`, {
    method, headers, signal: opts.signal, ...(body === undefined ? {} : { body: body as Record<string, unknown> }),
  });
  if (!error) return { ok: true, status: response?.status ?? 200, body: data };
  const context = (error as { context?: unknown }).context;
  if (context instanceof Response) return { ok: false, error: await errorFromResponse(context) };
  if (opts.signal?.aborted) return { ok: false, error: clientError('ABORTED', 'the request was aborted') };
  return { ok: false, error: clientError('NETWORK_ERROR', (error as Error).message ?? 'network error') };
}

const jobPath = (id: string, action = '') => `/${encodeURIComponent(id)}${action}`;

function asJob(reply: Reply): JobsResult<Job> {
  return reply.ok ? { data: reply.body.data as Job, error: null } : { data: null, error: reply.error };
}

/** GET /jobs/:id. A job of another tenant is JOB_NOT_FOUND, exactly like a missing one. */
export async function getJob(supabase: Pick<SupabaseClient, 'functions'>, id: string, opts: RequestOptions = {}): Promise<JobsResult<Job>> {
  return asJob(await call(supabase, jobPath(id), 'GET', undefined, opts));
}

/** GET /jobs: the caller's tenants' jobs, newest first; pass nextCursor back as `cursor` for the next page. */
export async function listJobs(supabase: Pick<SupabaseClient, 'functions'>, params: ListJobsParams = {}, opts: RequestOptions = {}): Promise<ListJobsResult> {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null) query.set(key, String(value));
  const qs = query.toString();
  const reply = await call(supabase, qs ? `?${qs}` : '', 'GET', undefined, opts);
  if (!reply.ok) return { data: null, nextCursor: null, error: reply.error };
  return { data: reply.body.data as Job[], nextCursor: reply.body.meta?.next_cursor ?? null, error: null };
}

/** POST /jobs. created is false when idempotency_key matched an existing job (which is returned). */
export async function enqueueJob(supabase: Pick<SupabaseClient, 'functions'>, input: EnqueueJobInput, opts: RequestOptions = {}): Promise<EnqueueResult> {
  const reply = await call(supabase, '', 'POST', input, opts);
  if (!reply.ok) return { data: null, created: null, error: reply.error };
  return { data: reply.body.data as Job, created: reply.status === 201, error: null };
}

/** POST /jobs/:id/retry (failed or cancelled jobs). extraAttempts grants more attempts to an exhausted job. */
export async function retryJob(supabase: Pick<SupabaseClient, 'functions'>, id: string, options: { extraAttempts?: number } & RequestOptions = {}): Promise<JobsResult<Job>> {
  const body = options.extraAttempts === undefined ? undefined : { extra_attempts: options.extraAttempts };
  return asJob(await call(supabase, jobPath(id, '/retry'), 'POST', body, options));
}

/** POST /jobs/:id/cancel. A running job gets cancel_requested_at and ends cancelled when its worker stops. */
export async function cancelJob(supabase: Pick<SupabaseClient, 'functions'>, id: string, opts: RequestOptions = {}): Promise<JobsResult<Job>> {
  return asJob(await call(supabase, jobPath(id, '/cancel'), 'POST', undefined, opts));
}

/** GET /jobs/limits: your tier's limits in the tenant and your active jobs (tenantId: needed only with several tenants). */
export async function getLimits(supabase: Pick<SupabaseClient, 'functions'>, params: { tenantId?: string } = {}, opts: RequestOptions = {}): Promise<JobsResult<UserLimits>> {
  const reply = await call(supabase, params.tenantId ? `/limits?tenant_id=${encodeURIComponent(params.tenantId)}` : '/limits', 'GET', undefined, opts);
  return reply.ok ? { data: reply.body.data as UserLimits, error: null } : { data: null, error: reply.error };
}
