/**
 * The worker's data source: the five queue calls the claim loop, the runner and the settler make, as an
 * interface (after pg-boss, which injects its fetch). worker/db.ts implements it over postgres.js; the
 * unit tests inject their own, so the loop's backpressure, wake-ups, shutdown and fencing are tested
 * without a database.
 *
 * Every call has a deadline (Deadlines below): a call that does not answer in time is abandoned, its
 * signal aborted (the Postgres source then drops the connection the call was on and opens a new one) and
 * the failure logged. So a worker cut off from its database notices within seconds instead of waiting
 * for TCP to give up, and its loops back off and retry as for any transient error.
 */
import type { Logger } from 'pino';
import type { Job, JobStatus, Progress } from './types.ts';

export interface Lease { id: string; lease_id: string }
export interface CompleteItem extends Lease { /** JSON text of the result ('null' = no result). */ resultJson: string }
export interface FailItem extends Lease { error: string; retryable: boolean }
export interface HeartbeatRow { id: string; lease_valid: boolean; cancel_requested: boolean }
export interface ClaimRequest { workerId: string; types: string[]; count: number; leaseSeconds: number }

/**
 * Each call gets a signal that aborts when the worker abandons the call (its deadline passed): stop
 * waiting, and do not reuse the connection it was on.
 */
export interface DataSource {
  /** claim_jobs: up to `count` jobs of `types`, each leased for `leaseSeconds`. */
  claim(req: ClaimRequest, signal: AbortSignal): Promise<Job[]>;
  /** heartbeat_jobs: one row per lease (lease_valid false = lost). */
  heartbeat(items: Lease[], leaseSeconds: number, signal: AbortSignal): Promise<HeartbeatRow[]>;
  /** complete_jobs; the ids completed (absent = the lease was stale). */
  complete(items: CompleteItem[], signal: AbortSignal): Promise<Set<string>>;
  /** fail_jobs; id -> new status for the jobs settled. */
  fail(items: FailItem[], signal: AbortSignal): Promise<Map<string, JobStatus>>;
  /** release_jobs; the ids given back. */
  release(items: Lease[], signal: AbortSignal): Promise<Set<string>>;
  /** set_job_progress. Without it ctx.progress resolves false. */
  progress?(lease: Lease, progress: Progress, signal: AbortSignal): Promise<boolean>;
  /** run_maintenance. Without it the worker runs no maintenance. */
  maintenance?(signal: AbortSignal): Promise<Record<string, number>>;
  /** Checks the connection and the role at start (current_user, may it claim?). */
  probe?(signal: AbortSignal): Promise<{ user: string; canClaim: boolean }>;
  /** Wake-up hints (LISTEN): onHint when new work may be ready. Polling stays the correctness path. */
  subscribe?(onHint: () => void): { stop(): Promise<void> };
  /** Closes what the source opened. */
  end?(): Promise<void>;
}

/** A call abandoned at its deadline. Transient: the caller backs off and retries, as for a dropped connection. */
export class DeadlineError extends Error {
  readonly code = 'CALL_TIMEOUT';
  constructor(readonly call: string, readonly deadlineMs: number) {
    super(`${call} did not answer within ${deadlineMs} ms; abandoned`);
    this.name = 'DeadlineError';
  }
}

export type CallKind = 'claim' | 'heartbeat' | 'complete' | 'fail' | 'release' | 'progress' | 'maintenance' | 'probe';

/** The local monotonic clock (ms): leases are measured on it, never on the wall clock. */
export const monotonicNow = (): number => performance.now();

/**
 * The data source as the worker uses it: the same calls, each raced against its deadline. Optional calls
 * the source lacks answer neutrally (no progress, no maintenance, no probe).
 */
export class Deadlines {
  constructor(private readonly source: DataSource, private readonly deadlineMs: Record<CallKind, number>,
    private readonly logger: Logger) {}

  claim(req: ClaimRequest): Promise<Job[]> { return this.call('claim', (s) => this.source.claim(req, s)); }
  heartbeat(items: Lease[], leaseSeconds: number): Promise<HeartbeatRow[]> { return this.call('heartbeat', (s) => this.source.heartbeat(items, leaseSeconds, s)); }
  complete(items: CompleteItem[]): Promise<Set<string>> { return this.call('complete', (s) => this.source.complete(items, s)); }
  fail(items: FailItem[]): Promise<Map<string, JobStatus>> { return this.call('fail', (s) => this.source.fail(items, s)); }
  release(items: Lease[]): Promise<Set<string>> { return this.call('release', (s) => this.source.release(items, s)); }

  progress(lease: Lease, progress: Progress): Promise<boolean> {
    const { source } = this;
    return source.progress ? this.call('progress', (s) => source.progress!(lease, progress, s)) : Promise.resolve(false);
  }

  maintenance(): Promise<Record<string, number>> | null {
    const { source } = this;
    return source.maintenance ? this.call('maintenance', (s) => source.maintenance!(s)) : null;
  }

  probe(): Promise<{ user: string; canClaim: boolean }> | null {
    const { source } = this;
    return source.probe ? this.call('probe', (s) => source.probe!(s)) : null;
  }

  get canMaintain(): boolean { return typeof this.source.maintenance === 'function'; }

  subscribe(onHint: () => void): { stop(): Promise<void> } | null {
    return this.source.subscribe ? this.source.subscribe(onHint) : null;
  }

  async end(): Promise<void> { await this.source.end?.(); }

  /**
   * Runs fn; at the deadline aborts its signal, logs, and rejects with DeadlineError. The verdict waits
   * one turn of the event loop (setImmediate runs after pending I/O): when the process itself stalled,
   * the timer and the answer are due together, and an answer already received must win.
   */
  private call<T>(kind: CallKind, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ms = this.deadlineMs[kind];
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let answered = false;
    const attempt = Promise.resolve().then(() => fn(controller.signal));
    attempt.then(() => { answered = true; }, () => { answered = true; }); // also: an abandoned call may reject later
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => setImmediate(() => {
        if (answered) return;
        const err = new DeadlineError(kind, ms);
        this.logger.warn({ call: kind, deadlineMs: ms }, 'database call did not answer in time; abandoned and its connection replaced');
        controller.abort(err);
        reject(err);
      }), ms);
    });
    deadline.catch(() => {});
    return Promise.race([attempt, deadline]).finally(() => clearTimeout(timer));
  }
}
