/**
 * Live job status: Supabase Realtime Broadcast on the private topics the database sends to
 * (supabase/migrations/…_supaqueue_realtime.sql), with the jobs API as snapshot and fallback.
 *
 *   const watch = watchJob(supabase, jobId, (job) => render(job.status, job.progress));
 *   await watch.stop();
 *
 * - Joins the private channel after `supabase.realtime.setAuth()`, so the join carries the user's JWT
 *   and the RLS policies on realtime.messages decide (the tenant's members and super admins).
 * - Reads a snapshot through the API at start and after every (re)subscription, and every
 *   `resyncIntervalMs` while live (Realtime drops messages over the project's rate limit), so nothing
 *   is missed. Updates are delivered in order: an update older than the last one delivered for that
 *   job (by updated_at) or identical to it is dropped.
 * - Polls the API while Realtime is unavailable: no WebSocket transport (Node 20 without one passed
 *   in), or the channel reports CHANNEL_ERROR or TIMED_OUT (realtime-js keeps retrying the join; the
 *   watch goes live again when it succeeds) or CLOSED (joined again after `resubscribeMs`).
 */
import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import { clientError, getJob, listJobs } from './api.ts';
import {
  TERMINAL_STATUSES, type Job, type JobState, type JobUpdateSource, type JobWatch, type JobsError, type JobsErrorCode,
  type JobsResult, type WaitForJobOptions, type WatchJobsParams, type WatchMode, type WatchOptions,
} from './types.ts';

/** What the helpers use of a supabase-js client. */
export type WatchClient = Pick<SupabaseClient, 'functions' | 'channel' | 'removeChannel' | 'realtime'>;

/** The private topic the database broadcasts a job's changes to. */
export const jobTopic = (jobId: string): string => `supaqueue:job:${jobId.toLowerCase()}`;
/** The private topic the database broadcasts all of a tenant's job changes to. */
export const tenantJobsTopic = (tenantId: string): string => `supaqueue:tenant:${tenantId.toLowerCase()}:jobs`;
/** The broadcast event; its payload is `{ job: JobState }`. */
export const JOB_EVENT = 'job';

const DEFAULTS = { pollIntervalMs: 1000, resyncIntervalMs: 30_000, resubscribeMs: 15_000 };
const TRANSIENT: ReadonlySet<JobsErrorCode> = new Set<JobsErrorCode>(['RATE_LIMITED', 'UNAVAILABLE', 'NETWORK_ERROR']);

/** Microseconds since the epoch of a timestamp as Postgres writes it in JSON (any offset). */
function micros(ts: string): number {
  const m = /^([^.]*?)(?:\.(\d+))?([Zz]|[+-]\d\d(?::?\d\d)?)?$/.exec(ts);
  if (!m) return Date.parse(ts) * 1000;
  return Date.parse(`${m[1]}${m[3] ?? ''}`) * 1000 + Number((m[2] ?? '').padEnd(6, '0').slice(0, 6));
}

const fingerprint = (j: JobState): string => JSON.stringify([j.status, j.attempts, j.max_attempts, j.progress,
  j.cancel_requested_at, j.started_at, j.completed_at, j.scheduled_at, j.last_error]);

/** A full job from the API reduced to what a broadcast carries, so every update has one shape. */
function toState(j: Job): JobState {
  const { id, tenant_id, type, status, progress, attempts, max_attempts, last_error, scheduled_at, started_at,
    completed_at, created_at, updated_at, cancel_requested_at } = j;
  return { id, tenant_id, type, status, progress, attempts, max_attempts, last_error, scheduled_at, started_at,
    completed_at, created_at, updated_at, cancel_requested_at };
}

interface Source {
  topic: string;
  /** The current state through the API: one job, or the tenant's newest jobs. */
  read(signal: AbortSignal): Promise<{ jobs: Job[]; error: null } | { jobs: null; error: JobsError }>;
  accepts(job: JobState): boolean;
}

type Deliver = (job: JobState, source: JobUpdateSource, full: Job | null) => void;

function startWatch(supabase: WatchClient, src: Source, deliver: Deliver, opts: WatchOptions): JobWatch {
  const o = { ...DEFAULTS, ...opts };
  const seen = new Map<string, { at: number; print: string }>();
  const abort = new AbortController();
  let mode: WatchMode = 'connecting';
  let channel: RealtimeChannel | null = null;
  let loop: ReturnType<typeof setTimeout> | undefined;
  let resub: ReturnType<typeof setTimeout> | undefined;
  let gen = 0; // bumped on every mode change: a tick of an older mode ends quietly

  const stopped = () => mode === 'stopped';
  const setMode = (m: WatchMode, reason: string) => {
    if (mode === m || stopped()) return false;
    mode = m;
    gen += 1;
    clearTimeout(loop);
    o.onMode?.(m, reason);
    return true;
  };

  const offer = (job: JobState, source: JobUpdateSource, full: Job | null) => {
    if (stopped() || !job?.id || !src.accepts(job)) return;
    const at = micros(job.updated_at);
    const print = fingerprint(job);
    const prev = seen.get(job.id);
    if (prev && (at < prev.at || (at === prev.at && print === prev.print))) return;
    seen.set(job.id, { at, print });
    deliver(job, source, full);
  };

  /** Reads through the API; returns the delay before the next read (Retry-After on transient errors). */
  const read = async (source: JobUpdateSource, interval: number): Promise<number | null> => {
    const r = await src.read(abort.signal);
    if (stopped()) return null;
    if (r.error) {
      if (TRANSIENT.has(r.error.code)) return r.error.retryAfterSeconds ? r.error.retryAfterSeconds * 1000 : interval;
      o.onError?.(r.error);
      void stop();
      return null;
    }
    const jobs = [...r.jobs].sort((a, b) => micros(a.updated_at) - micros(b.updated_at));
    for (const job of jobs) offer(toState(job), source, job);
    return interval;
  };

  /** Polls while polling, resyncs while live; ends when the mode it started in ends. */
  const tick = async (source: JobUpdateSource, interval: number) => {
    const mine = gen;
    const next = await read(source, interval);
    if (next !== null && gen === mine) loop = setTimeout(() => void tick(source, interval), next);
  };

  const goLive = () => { if (setMode('live', 'SUBSCRIBED')) void tick('snapshot', o.resyncIntervalMs); };
  const goPolling = (reason: string) => { if (setMode('polling', reason)) void tick('poll', o.pollIntervalMs); };

  const drop = async (ch: RealtimeChannel | null) => {
    if (channel === ch) channel = null;
    if (ch) await supabase.removeChannel(ch).catch(() => undefined);
  };

  const subscribe = async () => {
    if (stopped()) return;
    let ch: RealtimeChannel | null = null;
    try {
      await supabase.realtime.setAuth();
      if (stopped()) return;
      ch = supabase.channel(src.topic, { config: { private: true } });
      channel = ch;
      const mine = ch;
      ch.on('broadcast', { event: JOB_EVENT }, (msg) => {
        if (channel === mine) offer((msg.payload as { job: JobState })?.job, 'realtime', null);
      });
      ch.subscribe((status) => {
        if (stopped() || channel !== mine) return;
        if (status === 'SUBSCRIBED') return goLive();
        goPolling(status);
        if (status === 'CLOSED') {
          void drop(mine);
          resub = setTimeout(() => void subscribe(), o.resubscribeMs);
        }
      });
    } catch {
      // No WebSocket transport (or the client refused the channel): poll.
      await drop(ch);
      goPolling('NO_TRANSPORT');
    }
  };

  const stop = async () => {
    if (stopped()) return;
    setMode('stopped', 'STOPPED');
    clearTimeout(resub);
    abort.abort();
    await drop(channel);
  };

  if (opts.signal?.aborted) void stop();
  opts.signal?.addEventListener('abort', () => void stop(), { once: true });
  void read('snapshot', 0); // the state now, while the channel joins
  void subscribe();
  return { get mode() { return mode; }, stop };
}

/**
 * Calls onChange with the job's state at start and on each change after (status, attempts,
 * progress, cancellation), in order, until stop(). Non-transient API errors (JOB_NOT_FOUND, also for
 * another tenant's job) go to opts.onError and end the watch.
 */
export function watchJob(supabase: WatchClient, id: string, onChange: (job: JobState, source: JobUpdateSource) => void,
  opts: WatchOptions = {}): JobWatch {
  return startWatch(supabase, jobSource(supabase, id, opts), (job, source) => onChange(job, source), opts);
}

/**
 * Calls onChange for each change of any job of the tenant (the caller must be a member or a super
 * admin). Snapshots and polls read the tenant's 100 newest jobs.
 */
export function watchJobs(supabase: WatchClient, params: WatchJobsParams, onChange: (job: JobState, source: JobUpdateSource) => void,
  opts: WatchOptions = {}): JobWatch {
  const tenantId = params.tenantId.toLowerCase();
  return startWatch(supabase, {
    topic: tenantJobsTopic(tenantId),
    read: async (signal) => {
      const r = await listJobs(supabase, { tenant_id: tenantId, limit: 100 }, { ...opts, signal });
      return r.error ? { jobs: null, error: r.error } : { jobs: r.data, error: null };
    },
    accepts: (job) => job.tenant_id?.toLowerCase() === tenantId,
  }, (job, source) => onChange(job, source), opts);
}

function jobSource(supabase: WatchClient, id: string, opts: WatchOptions): Source {
  return {
    topic: jobTopic(id),
    read: async (signal) => {
      const r = await getJob(supabase, id, { ...opts, signal });
      return r.error ? { jobs: null, error: r.error } : { jobs: [r.data], error: null };
    },
    accepts: (job) => job.id?.toLowerCase() === id.toLowerCase(),
  };
}

/**
 * Resolves with the job (result included) once it is completed, failed or cancelled: live through
 * Realtime where it is available, else by polling every intervalMs. Ends with code TIMEOUT after
 * timeoutMs, ABORTED when opts.signal aborts, or the first non-transient error (e.g. JOB_NOT_FOUND).
 */
export function waitForJob(supabase: WatchClient, id: string, opts: WaitForJobOptions = {}): Promise<JobsResult<Job>> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const own = new AbortController();
  return new Promise((resolve) => {
    let watch: JobWatch | undefined;
    const finish = (r: JobsResult<Job>) => {
      if (own.signal.aborted) return;
      own.abort();
      clearTimeout(timer);
      void watch?.stop();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ data: null, error: clientError('TIMEOUT', `job did not finish within ${timeoutMs} ms`) }), timeoutMs);
    const aborted = () => finish({ data: null, error: clientError('ABORTED', 'waitForJob was aborted') });
    if (opts.signal?.aborted) return aborted();
    opts.signal?.addEventListener('abort', aborted, { once: true });
    own.signal.addEventListener('abort', () => opts.signal?.removeEventListener('abort', aborted));
    const onTerminal: Deliver = (job, _source, full) => {
      if (!TERMINAL_STATUSES.includes(job.status)) return;
      if (full) return finish({ data: full, error: null });
      // A broadcast has no result: read the job once.
      void getJob(supabase, id, { ...opts, signal: own.signal }).then((r) => {
        if (r.data && TERMINAL_STATUSES.includes(r.data.status)) finish(r);
        else if (r.error && !TRANSIENT.has(r.error.code) && r.error.code !== 'ABORTED') finish(r);
      });
    };
    watch = startWatch(supabase, jobSource(supabase, id, opts), onTerminal, {
      ...opts, signal: own.signal, pollIntervalMs: opts.intervalMs ?? DEFAULTS.pollIntervalMs,
      onError: (error) => finish({ data: null, error }),
    });
  });
}
