/**
 * The dashboard's only backend: the `jobs` edge function, called with the signed-in user's access token
 * (never a service key). Answers are the API's envelope; errors carry the API's code (JOB_NOT_FOUND,
 * INVALID_STATE, MAX_ATTEMPTS_REACHED, FORBIDDEN, ...), shown to the user as they are.
 */
import type { Job } from '../../client/types.ts';

export interface Config {
  /** Base of the functions, e.g. https://<ref>.supabase.co/functions/v1, or /functions/v1 behind the local server. */
  functionsUrl: string;
  /** Supabase project URL and anon key: sign-in through Supabase Auth. Null locally (no GoTrue). */
  supabaseUrl: string | null;
  anonKey: string | null;
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly traceId?: string) {
    super(message);
  }
}

let config: Config;
let token: () => Promise<string | null>;
let onUnauthenticated: (e: ApiError) => void = () => {};

export function configureApi(cfg: Config, getToken: () => Promise<string | null>, unauthenticated: (e: ApiError) => void): void {
  config = cfg;
  token = getToken;
  onUnauthenticated = unauthenticated;
}

export interface Envelope<T> {
  data: T;
  meta: { trace_id: string; next_cursor?: string | null };
}

type Query = Record<string, string | number | undefined | null>;

function queryString(q: Query = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** Calls /jobs<path>; resolves to the envelope, or rejects with ApiError. */
export async function api<T>(path: string, opts: { method?: string; query?: Query; body?: unknown } = {}): Promise<Envelope<T>> {
  const access = await token();
  const headers: Record<string, string> = {};
  if (access) headers.Authorization = `Bearer ${access}`;
  if (config.anonKey) headers.apikey = config.anonKey;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${config.functionsUrl}/jobs${path}${queryString(opts.query)}`, {
      method: opts.method ?? 'GET',
      headers,
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    });
  } catch (e) {
    throw new ApiError(0, 'NETWORK', `the jobs API is not reachable (${(e as Error).message})`);
  }
  const text = await res.text();
  let body: any = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const err = new ApiError(res.status, body?.error?.code ?? `HTTP_${res.status}`, body?.error?.message ?? text.slice(0, 200),
      res.headers.get('x-trace-id') ?? undefined);
    if (res.status === 401) onUnauthenticated(err);
    throw err;
  }
  return body as Envelope<T>;
}

/** The job as the API answers it: the client's type, the one home of that shape. */
export type { Job };

export interface Viewer {
  user_id: string;
  email: string | null;
  super_admin: boolean;
  tenants: { id: string; name: string; role: 'admin' | 'member' | null }[];
  more_tenants: boolean;
}

export interface Stats {
  scope: 'all' | 'tenants';
  counts: { by_status: Record<Job['status'], number>; by_type: ({ type: string } & Partial<Record<Job['status'], number>>)[] };
  running: { id: string; tenant_id: string; type: string; started_at: string; attempts: number; progress: Job['progress'] }[];
  oldest_waiting: { job_id: string | null; tenant_id: string | null; since: string | null; age_seconds: number | null; partial: boolean };
  history: { step_seconds: number; points: [number, number, number][] };
  limits: null | {
    max_concurrent_jobs: number | null; max_queued_jobs: number | null; max_user_priority: number | null;
    max_schedules: number | null; default_max_queued_jobs: number; running: number; queued: number; schedules: number;
  };
  at: string;
}

export interface Schedule {
  id: string;
  tenant_id: string;
  name: string;
  cron: string;
  time_zone: string;
  job_type: string;
  enabled: boolean;
  next_run_at: string | null;
  last_run_at: string | null;
  payload: unknown;
}
