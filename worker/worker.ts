/**
 * createWorker: the claim loop, after pg-boss's worker. One loop claims up to the free slots, hands jobs
 * to the runner, and waits on a delay that a NOTIFY or a freed slot cuts short; polling every
 * pollIntervalMs is the correctness path. Two side loops heartbeat held leases and run maintenance.
 *
 * Failure policy: transient database trouble (a dropped connection, a restart, a call past its deadline)
 * never ends a loop: the call is retried after a backoff. Anything else escaping a loop is a bug or a
 * broken setup (e.g. EXECUTE revoked): the worker stops at once (no more claims, no more heartbeats,
 * running handlers aborted and their jobs released as far as possible) and `done` rejects with the
 * error, so the process can exit and be restarted instead of lingering half alive.
 */
import type { Logger } from 'pino';
import { resolveOptions, WorkerConfigError, type ResolvedOptions, type WorkerOptions } from './config.ts';
import { openDb } from './db.ts';
import { backoffMs, isServerError, isTransientDbError, UNCLASSIFIED_RETRIES } from './errors.ts';
import { JobRunner } from './runner.ts';
import { Settler } from './settler.ts';
import { Deadlines, monotonicNow } from './source.ts';
import type { Job } from './types.ts';
import { pause, Wakeup } from './wakeup.ts';

/** How long stop() keeps trying to land the last settles (e.g. while Postgres is down) before giving up. */
const SETTLE_DRAIN_MS = 5000;

export interface Worker {
  /** The worker id recorded on claimed jobs (job_queue.worker_id). */
  readonly id: string;
  /**
   * Settles when the worker has stopped: resolves after stop(), rejects with the error when an internal
   * loop crashed (the worker then stopped by itself) or start() failed. Rejections are not reported as
   * unhandled: await it (or .catch it) to learn of a crash.
   */
  readonly done: Promise<void>;
  /** Connects, checks the role, and starts claiming. Rejects only on configuration/permission errors. */
  start(): Promise<void>;
  /** Stops claiming at once, lets running jobs finish within shutdownGraceMs, releases the rest. */
  stop(): Promise<void>;
}

/** Validates the options (throws WorkerConfigError) and returns a worker ready to start(). */
export function createWorker(options: WorkerOptions): Worker {
  return new QueueWorker(resolveOptions(options));
}

class QueueWorker implements Worker {
  readonly id: string;
  readonly done: Promise<void>;
  private settleDone!: (err?: unknown) => void;
  private readonly logger: Logger;
  private readonly wakeup = new Wakeup();
  private readonly stopping = new AbortController(); // no more claims, no more polling
  private readonly sideLoops = new AbortController(); // heartbeats and maintenance outlive the claim loop
  private readonly crashed = new AbortController(); // a loop crashed: no grace, no more heartbeats
  private state: 'created' | 'started' | 'stopped' = 'created';
  // True while the queue probably has more ready work (the last claim came back full, or a NOTIFY):
  // then a freed slot claims at once instead of waiting for the next poll.
  private backlog = true;
  private readonly calls: Deadlines;
  private readonly settler: Settler;
  private readonly runner: JobRunner;
  private subscription: { stop(): Promise<void> } | null = null;
  private claimLoopDone: Promise<void> = Promise.resolve();
  private sideLoopsDone: Promise<unknown> = Promise.resolve();
  private startPromise: Promise<void> | null = null;
  private stopPromise: Promise<void> | null = null;

  constructor(private readonly o: ResolvedOptions) {
    this.id = o.workerId;
    this.logger = o.logger.child({ workerId: o.workerId });
    this.done = new Promise<void>((resolve, reject) => { this.settleDone = (err) => (err === undefined ? resolve() : reject(err)); });
    this.done.catch(() => {}); // surfaced to whoever awaits it; never an unhandled rejection
    const source = o.dataSource ?? openDb(o, this.logger);
    this.calls = new Deadlines(source, o.deadlineMs, this.logger);
    this.settler = new Settler(this.calls, this.logger, { intervalMs: o.settleIntervalMs, batchSize: o.settleBatchSize });
    this.runner = new JobRunner(o, this.calls, this.settler, this.logger, () => { if (this.backlog) this.wakeup.wake(); });
  }

  start(): Promise<void> {
    if (this.state !== 'created') return Promise.reject(new Error('worker already started'));
    this.state = 'started';
    this.startPromise = this.boot();
    return this.startPromise;
  }

  stop(): Promise<void> {
    if (this.state === 'created') {
      this.state = 'stopped';
      this.settleDone();
    }
    this.stopPromise ??= this.state === 'stopped' ? Promise.resolve() : this.shutdown();
    return this.stopPromise;
  }

  private async boot(): Promise<void> {
    const { o } = this;
    const role = await this.probe();
    this.logger.info({ role, concurrency: o.concurrency, leaseSeconds: o.leaseSeconds, pooler: o.pooler, listen: o.listen, types: o.types }, 'worker started');
    if (o.listen) this.subscription = this.calls.subscribe(() => { this.backlog = true; this.wakeup.wake(); });
    this.claimLoopDone = this.guard('claim', this.claimLoop());
    const side = [this.guard('heartbeat', this.heartbeatLoop())];
    if (o.maintenanceIntervalMs !== false && this.calls.canMaintain) side.push(this.guard('maintenance', this.maintenanceLoop(o.maintenanceIntervalMs)));
    this.sideLoopsDone = Promise.all(side);
  }

  /** current_user after the role switch; throws on permission/config errors, tolerates an unreachable database. */
  private async probe(): Promise<string | undefined> {
    try {
      const p = await this.calls.probe();
      if (p && !p.canClaim) throw new WorkerConfigError(`role "${p.user}" may not execute public.claim_jobs: connect as a login role that is a member of ${this.o.role ?? 'service_role'} (see worker/README.md)`);
      return p?.user;
    } catch (err) {
      if (!isTransientDbError(err)) {
        this.state = 'stopped';
        await this.calls.end().catch(() => {});
        this.settleDone(err);
        throw err;
      }
      // Not fatal: an orchestrator may start workers before the database; the loops keep trying.
      this.logger.warn({ err }, 'database unreachable at start; will keep trying');
      return undefined;
    }
  }

  private async claimLoop(): Promise<void> {
    const { o } = this;
    let failures = 0;
    let unclassified = 0;
    while (!this.stopping.signal.aborted) {
      const want = Math.min(o.concurrency - this.runner.running, o.batchSize);
      let full = false;
      if (want > 0) {
        let jobs: Job[];
        const sentAt = monotonicNow();
        try {
          jobs = await this.calls.claim({ workerId: o.workerId, types: o.types, count: want, leaseSeconds: o.leaseSeconds });
        } catch (err) {
          if (!isTransientDbError(err)) {
            if (isServerError(err) || ++unclassified > UNCLASSIFIED_RETRIES) throw err;
            this.logger.error({ err, unclassified }, 'claim failed with an unexpected error; retrying before giving up');
          }
          failures += 1;
          // The first failure of a streak, then about every 5 s (the backoff cap), so an outage is visible but quiet.
          if (failures === 1 || backoffMs(failures) >= 2500) this.logger.warn({ err, failures }, 'claim failed; backing off');
          await pause(backoffMs(failures), this.stopping.signal);
          continue;
        }
        if (failures > 0) this.logger.info({ failures }, 'claims working again');
        failures = 0;
        unclassified = 0;
        if (this.stopping.signal.aborted || monotonicNow() >= this.runner.fenceAt(sentAt)) {
          this.handBack(jobs, this.stopping.signal.aborted ? 'stopping' : 'lease-ended');
          if (this.stopping.signal.aborted) break;
          continue;
        }
        for (const job of jobs) this.runner.start(job, sentAt);
        full = jobs.length === want;
        this.backlog = full;
      }
      if (full && this.runner.running < o.concurrency) continue;
      await this.wakeup.wait(o.pollIntervalMs);
    }
  }

  /**
   * Claimed jobs that will not run: stop() came while the claim was in flight, or the answer came so late
   * that the lease has (nearly) ended. Released, attempt not used; not awaited: the settler bounds it.
   */
  private handBack(jobs: Job[], why: 'stopping' | 'lease-ended'): void {
    if (jobs.length === 0) return;
    if (why === 'lease-ended') this.logger.warn({ jobs: jobs.length }, 'claim answered after the lease (nearly) ended; jobs released, not started');
    for (const j of jobs) void this.settler.release({ id: j.id, lease_id: j.lease_id });
  }

  private async heartbeatLoop(): Promise<void> {
    const interval = this.o.heartbeatIntervalMs;
    let next = Date.now() + interval;
    while (!this.sideLoops.signal.aborted) {
      await pause(Math.max(0, next - Date.now()), this.sideLoops.signal);
      if (this.sideLoops.signal.aborted) break;
      await this.runner.heartbeat();
      // A fixed cadence (not interval + call time): a slow or abandoned heartbeat must not push the next
      // one towards expiry. Past the next slot already: beat again at once, but never in a burst.
      next = Math.max(next + interval, Date.now());
    }
  }

  private async maintenanceLoop(interval: number): Promise<void> {
    // A random first delay spreads the workers of a fleet over the interval.
    await pause(Math.random() * interval, this.sideLoops.signal);
    while (!this.sideLoops.signal.aborted) {
      try {
        const counts = (await this.calls.maintenance())!;
        const busy = Object.values(counts).some((n) => n > 0);
        this.logger[busy ? 'info' : 'debug']({ maintenance: counts }, 'maintenance pass');
      } catch (err) {
        this.logger.warn({ err }, 'maintenance failed; next pass at the next interval');
      }
      await pause(interval, this.sideLoops.signal);
    }
  }

  /** A loop that rejects crashed: the worker stops itself and `done` rejects with the error. */
  private guard(name: string, p: Promise<void>): Promise<void> {
    return p.catch((err) => {
      if (this.crashed.signal.aborted) return;
      this.logger.fatal({ err, loop: name }, 'worker loop crashed; stopping the worker');
      this.crashed.abort(err);
      this.sideLoops.abort(); // a zombie must not keep leases alive with heartbeats
      void this.stop();
    });
  }

  private async shutdown(): Promise<void> {
    await this.startPromise?.catch(() => {}); // a stop() during start() waits for the loops to exist
    if (this.state === 'stopped') return; // start() failed and cleaned up
    const crash = this.crashed.signal;
    this.logger.info({ running: this.runner.running, graceMs: crash.aborted ? 0 : this.o.shutdownGraceMs }, 'stopping: no more claims');
    this.stopping.abort();
    this.wakeup.wake();
    await this.claimLoopDone;
    await this.subscription?.stop().catch(() => {});
    if (!(await this.idleWithinGrace())) {
      this.logger.warn({ running: this.runner.running }, crash.aborted ? 'aborting and releasing the running jobs' : 'shutdown grace ran out; aborting and releasing the jobs still running');
      this.runner.abortRunning('shutdown', 'worker shutting down: job released, it will run again');
    }
    // Heartbeats go on until the last settle (unless a loop crashed): a held job must not expire while its release is queued.
    const settled = await this.runner.waitFor('settled', SETTLE_DRAIN_MS);
    await this.settler.drain(settled ? SETTLE_DRAIN_MS : 0);
    this.sideLoops.abort();
    await this.sideLoopsDone;
    await this.calls.end().catch((err) => this.logger.warn({ err }, 'closing the database connection failed'));
    this.state = 'stopped';
    this.logger[crash.aborted ? 'error' : 'info']('worker stopped');
    this.settleDone(crash.aborted ? crash.reason : undefined);
  }

  /** True once no handler runs, within shutdownGraceMs; at once false when a loop crashed. */
  private async idleWithinGrace(): Promise<boolean> {
    const crash = this.crashed.signal;
    if (crash.aborted) return this.runner.running === 0;
    const cut = new Promise<boolean>((resolve) => crash.addEventListener('abort', () => resolve(false), { once: true }));
    return Promise.race([this.runner.waitFor('idle', this.o.shutdownGraceMs), cut]);
  }
}
