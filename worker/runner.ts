/**
 * The jobs this worker holds a lease on: runs their handlers, heartbeats their leases, and turns each
 * outcome into a settle. An abort (lease lost, cancelled, timeout, shutdown) decides the outcome at once,
 * without waiting for the handler: a handler that ignores its signal is abandoned, so a hung job costs
 * one attempt and one slot for jobTimeoutMs, never the whole worker.
 *
 * Fencing: each job's lease is tracked on the local monotonic clock, from when the claim or the last
 * successful heartbeat was SENT (the server's now() comes later, so the real lease ends no earlier). A
 * job whose lease could not be renewed is aborted (lease-lost) leaseMarginMs before that point, so a
 * stalled or cut-off worker stops before another worker can reclaim the job.
 */
import type { Logger } from 'pino';
import type { ResolvedOptions } from './config.ts';
import { describeError, isRetryableHandlerError, isTransientDbError, JobAbortedError, PermanentError, type AbortCause } from './errors.ts';
import type { SettleOutcome, Settler } from './settler.ts';
import { monotonicNow, type Deadlines } from './source.ts';
import type { Job, JobContext } from './types.ts';

interface Entry {
  job: Job;
  controller: AbortController;
  /** running: the handler holds a slot; settling: its outcome is queued with the settler. */
  phase: 'running' | 'settling';
  timer?: NodeJS.Timeout;
  /** Monotonic ms at which the job is fenced: the lease as last renewed, minus the safety margin. */
  fenceAt: number;
  fence?: NodeJS.Timeout;
  /** Aborted by our own fence (the lease may still be ours): released, not dropped. */
  fenced?: boolean;
}

type Outcome =
  | { kind: 'complete'; value: unknown }
  | { kind: 'fail'; error: string; retryable: boolean }
  | { kind: 'release' }
  | { kind: 'drop' };

/** What an abort cause means for the job, whatever the handler does afterwards. */
function outcomeOf(reason: JobAbortedError, fenced: boolean): Outcome {
  switch (reason.kind) {
    // Reported lost: another worker owns it. Fenced by us: maybe still ours, so give it back (the release
    // is fenced by the lease, so it changes nothing if the job was reclaimed meanwhile).
    case 'lease-lost': return fenced ? { kind: 'release' } : { kind: 'drop' };
    case 'shutdown': return { kind: 'release' };
    case 'cancelled': return { kind: 'fail', error: reason.message, retryable: false }; // the SQL ends it `cancelled`
    case 'timeout': return { kind: 'fail', error: reason.message, retryable: true };
  }
}

export class JobRunner {
  private readonly entries = new Map<string, Entry>();
  private runningCount = 0;
  private waiters: Array<() => void> = [];
  private heartbeatFailures = 0;

  constructor(private readonly o: ResolvedOptions, private readonly db: Pick<Deadlines, 'heartbeat' | 'progress'>,
    private readonly settler: Settler, private readonly logger: Logger, private readonly onSlotFreed: () => void) {}

  /** Handlers occupying a slot. */
  get running(): number {
    return this.runningCount;
  }

  /** Monotonic ms at which a lease granted by a request sent at sentAt must be fenced. */
  fenceAt(sentAt: number): number {
    return sentAt + this.o.leaseSeconds * 1000 - this.o.leaseMarginMs;
  }

  /** Runs a claimed job in the background (its claim was sent at sentAt, monotonic ms); never rejects. */
  start(job: Job, sentAt: number): void {
    const entry: Entry = { job, controller: new AbortController(), phase: 'running', fenceAt: this.fenceAt(sentAt) };
    this.entries.set(job.id, entry);
    this.arm(entry);
    this.runningCount += 1;
    if (this.o.jobTimeoutMs !== false) {
      const ms = this.o.jobTimeoutMs;
      entry.timer = setTimeout(() => this.abort(entry, 'timeout', `job timed out after ${ms} ms`), ms);
    }
    this.execute(entry).catch((err) => this.logger.error({ err, jobId: job.id }, 'job execution failed unexpectedly'));
  }

  /** Aborts every running handler with the cause (the first cause of a job wins). */
  abortRunning(cause: AbortCause, message: string): void {
    for (const e of this.entries.values()) this.abort(e, cause, message);
  }

  /** Resolves true once no handler runs (idle) or nothing is held at all (settled); false after ms. */
  async waitFor(what: 'idle' | 'settled', ms: number): Promise<boolean> {
    const done = () => (what === 'idle' ? this.runningCount === 0 : this.entries.size === 0);
    if (done()) return true;
    return new Promise((resolve) => {
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(true);
      };
      const timer = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== check); resolve(false); }, ms);
      this.waiters.push(check);
    });
  }

  /**
   * One heartbeat_jobs call for every held job; renews the local fence of the ones still ours and aborts
   * the ones whose lease is gone or that were cancelled. Transient failures are logged and the next beat
   * tries again (the fence covers the gap); anything else is a bug and rejects.
   */
  async heartbeat(): Promise<void> {
    // Also with nothing held: the beat keeps this worker's session registered and frees dead workers' jobs.
    const held = new Map([...this.entries.values()].map((e) => [e.job.id, e.job.lease_id]));
    const sentAt = monotonicNow();
    let rows;
    try {
      rows = await this.db.heartbeat([...held].map(([id, lease_id]) => ({ id, lease_id })), this.o.leaseSeconds);
    } catch (err) {
      if (!isTransientDbError(err)) throw err;
      // The server stays the judge: when it is back, a job nobody reclaimed is still ours (the heartbeat
      // extends it), and one that was reclaimed answers lease_valid = false then.
      this.heartbeatFailures += 1;
      if (this.heartbeatFailures === 1) this.logger.warn({ err, jobs: held.size }, 'heartbeat failed; will retry');
      return;
    }
    if (this.heartbeatFailures > 0) this.logger.info({ after: this.heartbeatFailures }, 'heartbeats restored');
    this.heartbeatFailures = 0;
    for (const row of rows) {
      const entry = this.entries.get(row.id);
      // Skip jobs settled meanwhile, and a job this worker lost and then claimed again (a new lease).
      if (!entry || entry.job.lease_id !== held.get(row.id)) continue;
      if (!row.lease_valid) this.abort(entry, 'lease-lost', 'lease lost: the job was reclaimed (heartbeats arrived too late)');
      else if (row.cancel_requested) this.abort(entry, 'cancelled', 'cancelled while running');
      else {
        entry.fenceAt = Math.max(entry.fenceAt, this.fenceAt(sentAt));
        this.arm(entry);
      }
    }
  }

  /** (Re)sets the job's fence timer to its fenceAt. */
  private arm(entry: Entry): void {
    clearTimeout(entry.fence);
    if (entry.phase !== 'running') return;
    entry.fence = setTimeout(() => {
      if (monotonicNow() < entry.fenceAt) return this.arm(entry); // renewed meanwhile
      entry.fenced = !entry.controller.signal.aborted;
      this.abort(entry, 'lease-lost', 'lease could not be renewed before it ended (database slow or unreachable); stopped so another worker can take the job');
    }, Math.max(0, entry.fenceAt - monotonicNow()));
  }

  private abort(entry: Entry, cause: AbortCause, message: string): void {
    if (entry.phase !== 'running' || entry.controller.signal.aborted) return;
    entry.controller.abort(new JobAbortedError(cause, message));
  }

  private context(entry: Entry, logger: Logger): JobContext {
    const { job } = entry;
    return {
      signal: entry.controller.signal,
      jobId: job.id, tenantId: job.tenant_id, traceId: job.trace_id, actorId: job.actor_id, requestId: job.request_id,
      attempt: job.attempts, maxAttempts: job.max_attempts, workerId: this.o.workerId, logger,
      progress: async (progress) => {
        if (entry.phase !== 'running' || entry.controller.signal.aborted) return false;
        try {
          return await this.db.progress({ id: job.id, lease_id: job.lease_id }, progress);
        } catch (err) {
          if (!isTransientDbError(err)) throw err; // invalid progress: the handler's bug, tell it
          logger.warn({ err }, 'progress not recorded (database unreachable)');
          return false;
        }
      },
    };
  }

  private async execute(entry: Entry): Promise<void> {
    const { job } = entry;
    const logger = this.logger.child({ jobId: job.id, type: job.type, tenantId: job.tenant_id, attempt: job.attempts, trace_id: job.trace_id ?? undefined });
    const outcome = await this.runHandler(entry, logger);
    clearTimeout(entry.timer);
    clearTimeout(entry.fence);
    entry.phase = 'settling';
    this.runningCount -= 1;
    this.onSlotFreed();
    this.changed();
    try {
      await this.settle(entry, outcome, logger);
    } catch (err) {
      logger.error({ err }, 'settle failed unexpectedly'); // never reached by design; keeps the loop alive
    } finally {
      if (this.entries.get(job.id) === entry) this.entries.delete(job.id);
      this.changed();
    }
  }

  /** Runs the handler until it settles or the signal aborts, whichever comes first. */
  private async runHandler(entry: Entry, logger: Logger): Promise<Outcome> {
    const { job } = entry;
    const signal = entry.controller.signal;
    const handler = Object.hasOwn(this.o.handlers, job.type) ? this.o.handlers[job.type] : undefined;
    const aborted = new Promise<'aborted'>((resolve) => {
      if (signal.aborted) resolve('aborted');
      else signal.addEventListener('abort', () => resolve('aborted'), { once: true });
    });
    const run = Promise.resolve().then(() => {
      if (!handler) throw new PermanentError(`no handler for job type "${job.type}" (this worker handles: ${Object.keys(this.o.handlers).join(', ')})`);
      return handler(job, this.context(entry, logger));
    });
    // An abandoned handler may still settle later; swallow it so it is never an unhandled rejection.
    run.catch(() => {});
    try {
      const value = await Promise.race([run.then((v) => ({ v })), aborted]);
      if (value === 'aborted') return this.abortedOutcome(entry, logger, run);
      return { kind: 'complete', value: value.v };
    } catch (err) {
      if (signal.aborted) return this.abortedOutcome(entry, logger, run);
      return { kind: 'fail', error: describeError(err), retryable: isRetryableHandlerError(err) };
    }
  }

  private abortedOutcome(entry: Entry, logger: Logger, run: Promise<unknown>): Outcome {
    const reason = entry.controller.signal.reason as JobAbortedError;
    logger.warn({ cause: reason.kind }, `job aborted: ${reason.message}`);
    run.then(() => logger.debug('aborted handler returned later; its result was ignored'), () => {});
    return outcomeOf(reason, entry.fenced === true);
  }

  private async settle(entry: Entry, outcome: Outcome, logger: Logger): Promise<void> {
    const lease = { id: entry.job.id, lease_id: entry.job.lease_id };
    let result: SettleOutcome;
    if (outcome.kind === 'drop') return;
    if (outcome.kind === 'release') result = await this.settler.release(lease);
    else if (outcome.kind === 'fail') result = await this.settler.fail({ ...lease, error: outcome.error, retryable: outcome.retryable });
    else {
      let resultJson: string;
      try {
        resultJson = JSON.stringify(outcome.value ?? null) ?? 'null';
      } catch (err) {
        outcome = { kind: 'fail', error: `result is not JSON-serialisable: ${describeError(err)}`, retryable: false };
        return this.settle(entry, outcome, logger);
      }
      result = await this.settler.complete({ ...lease, resultJson });
    }
    if (!result.settled) {
      if (result.reason === 'stale') logger.warn({ outcome: outcome.kind }, 'lease lost before the settle landed; outcome dropped (another worker owns the job now)');
      return;
    }
    if (outcome.kind === 'fail') logger.warn({ status: result.status, error: outcome.error, retryable: outcome.retryable }, 'job failed');
    else logger.debug({ status: result.status }, outcome.kind === 'release' ? 'job released' : 'job completed');
  }

  private changed(): void {
    for (const w of [...this.waiters]) w();
  }
}
