/**
 * Typed helpers for the jobs API, over the supabase-js client your frontend already has:
 *
 *   const { data: job, error } = await enqueueJob(supabase, { type: 'email.send', payload: { to } });
 *   if (error?.code === 'QUEUE_QUOTA_EXCEEDED') retryLater(error.retryAfterSeconds);
 *
 * Requests go through `supabase.functions.invoke`, so they carry the signed-in user's access token and
 * the project's publishable/anon key, and run under the user's row-level security. There is no service
 * key here and none is needed: never ship one to a browser. Every helper resolves (never rejects) to
 * `{ data, error }`, with `error.code` a stable code from the API (see JobsErrorCode).
 */
import type { SupabaseClient } from '@supabase/supabase-js';
import {
  TERMINAL_STATUSES, type EnqueueJobInput, type EnqueueResult, type Job, type JobsError, type JobsErrorCode,
  type JobsResult, type ListJobsParams, type ListJobsResult, type RequestOptions, type WaitForJobOptions,
} from './types.ts';

export * from './types.ts';

type Reply = { ok: true; status: number; body: { data: unknown; meta?: { next_cursor?: string | null } } } | { ok: false; error: JobsError };

const clientError = (code: JobsErrorCode, message: string): JobsError =>
  ({ code, message, status: null, traceId: null, retryAfterSeconds: null });

/** The API's error body from a FunctionsHttpError's response; a generic code if it is not ours. */
async function errorFromResponse(res: Response): Promise<JobsError> {
  let body: { error?: { code?: string; message?: string }; meta?: { trace_id?: string } } | null = null;
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
  };
}

async function call(supabase: SupabaseClient, path: string, method: 'GET' | 'POST', body: unknown, opts: RequestOptions): Promise<Reply> {
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
export async function getJob(supabase: SupabaseClient, id: string, opts: RequestOptions = {}): Promise<JobsResult<Job>> {
  return asJob(await call(supabase, jobPath(id), 'GET', undefined, opts));
}

/** GET /jobs: the caller's tenants' jobs, newest first; pass nextCursor back as `cursor` for the next page. */
export async function listJobs(supabase: SupabaseClient, params: ListJobsParams = {}, opts: RequestOptions = {}): Promise<ListJobsResult> {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null) query.set(key, String(value));
  const qs = query.toString();
  const reply = await call(supabase, qs ? `?${qs}` : '', 'GET', undefined, opts);
  if (!reply.ok) return { data: null, nextCursor: null, error: reply.error };
  return { data: reply.body.data as Job[], nextCursor: reply.body.meta?.next_cursor ?? null, error: null };
}

/** POST /jobs. created is false when idempotency_key matched an existing job (which is returned). */
export async function enqueueJob(supabase: SupabaseClient, input: EnqueueJobInput, opts: RequestOptions = {}): Promise<EnqueueResult> {
  const reply = await call(supabase, '', 'POST', input, opts);
  if (!reply.ok) return { data: null, created: null, error: reply.error };
  return { data: reply.body.data as Job, created: reply.status === 201, error: null };
}

/** POST /jobs/:id/retry (failed or cancelled jobs). extraAttempts grants more attempts to an exhausted job. */
export async function retryJob(supabase: SupabaseClient, id: string, options: { extraAttempts?: number } & RequestOptions = {}): Promise<JobsResult<Job>> {
  const body = options.extraAttempts === undefined ? undefined : { extra_attempts: options.extraAttempts };
  return asJob(await call(supabase, jobPath(id, '/retry'), 'POST', body, options));
}

/** POST /jobs/:id/cancel. A running job gets cancel_requested_at and ends cancelled when its worker stops. */
export async function cancelJob(supabase: SupabaseClient, id: string, opts: RequestOptions = {}): Promise<JobsResult<Job>> {
  return asJob(await call(supabase, jobPath(id, '/cancel'), 'POST', undefined, opts));
}

/** Resolves true after ms, or false as soon as the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const done = (ok: boolean) => { clearTimeout(timer); signal.removeEventListener('abort', onAbort); resolve(ok); };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), Math.max(0, ms));
    signal.addEventListener('abort', onAbort);
  });
}

/** Transient failures worth polling through; anything else (e.g. JOB_NOT_FOUND) is returned at once. */
const TRANSIENT: ReadonlySet<JobsErrorCode> = new Set<JobsErrorCode>(['RATE_LIMITED', 'UNAVAILABLE', 'NETWORK_ERROR']);

/**
 * Polls GET /jobs/:id until the job is completed, failed or cancelled, and returns it. Honours
 * Retry-After on RATE_LIMITED/UNAVAILABLE. Ends with code TIMEOUT after timeoutMs, ABORTED when
 * opts.signal aborts, or the first non-transient error.
 */
export async function waitForJob(supabase: SupabaseClient, id: string, opts: WaitForJobOptions = {}): Promise<JobsResult<Job>> {
  const intervalMs = opts.intervalMs ?? 1000;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const stopped = (): JobsResult<Job> => ({
    data: null,
    error: opts.signal?.aborted ? clientError('ABORTED', 'waitForJob was aborted') : clientError('TIMEOUT', `job did not finish within ${timeoutMs} ms`),
  });
  for (;;) {
    const r = await getJob(supabase, id, { ...opts, signal });
    if (signal.aborted) return stopped();
    if (r.error && !TRANSIENT.has(r.error.code)) return r;
    if (r.data && TERMINAL_STATUSES.includes(r.data.status)) return r;
    const waitMs = r.error?.retryAfterSeconds ? r.error.retryAfterSeconds * 1000 : intervalMs;
    if (!(await sleep(waitMs, signal))) return stopped();
  }
}
