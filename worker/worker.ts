/**
 * createWorker: the claim loop, after pg-boss's worker. One loop claims up to the free slots, hands jobs
 * to the runner, and waits on a delay that a NOTIFY or a freed slot cuts short; polling every
 * pollIntervalMs is the correctness path. Two side loops heartbeat held leases and run maintenance.
 * Database trouble never ends a loop: each call is retried after a backoff, and postgres.js reconnects.
 */
import type { Logger } from 'pino';
import { resolveOptions, WorkerConfigError, type ResolvedOptions, type WorkerOptions } from './config.ts';
import { openDb, type Db } from './db.ts';
import { backoffMs, isTransientDbError } from './errors.ts';
import { Listener } from './listener.ts';
import { JobRunner } from './runner.ts';
import { Settler } from './settler.ts';
import type { Job } from './types.ts';
import { pause, Wakeup } from './wakeup.ts';

/** How long stop() keeps trying to land the last settles (e.g. while Postgres is down) before giving up. */
const SETTLE_DRAIN_MS = 5000;

export interface Worker {
  /** The worker id recorded on claimed jobs (job_queue.worker_id). */
  readonly id: string;
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
  private readonly logger: Logger;
  private readonly wakeup = new Wakeup();
  private readonly stopping = new AbortController(); // no more claims, no more polling
  private readonly sideLoops = new AbortController(); // heartbeats and maintenance outlive the claim loop
  private state: 'created' | 'started' | 'stopped' = 'created';
  // True while the queue probably has more ready work (the last claim came back full, or a NOTIFY):
  // then a freed slot claims at once instead of waiting for the next poll.
  private backlog = true;
  private db!: Db;
  private settler!: Settler;
  private runner!: JobRunner;
  private listener: Listener | null = null;
  private claimLoopDone: Promise<void> = Promise.resolve();
  private sideLoopsDone: Promise<unknown> = Promise.resolve();
  private startPromise: Promise<void> | null = null;
  private stopPromise: Promise<void> | null = null;

  constructor(private readonly o: ResolvedOptions) {
    this.id = o.workerId;
    this.logger = o.logger.child({ workerId: o.workerId });
  }

  start(): Promise<void> {
    if (this.state !== 'created') return Promise.reject(new Error('worker already started'));
    this.state = 'started';
    this.startPromise = this.boot();
    return this.startPromise;
  }

  stop(): Promise<void> {
    if (this.state === 'created') this.state = 'stopped';
    this.stopPromise ??= this.state === 'stopped' ? Promise.resolve() : this.shutdown();
    return this.stopPromise;
  }

  private async boot(): Promise<void> {
    const { o } = this;
    this.db = openDb(o, this.logger);
    this.settler = new Settler(this.db, this.logger, { intervalMs: o.settleIntervalMs, batchSize: o.settleBatchSize });
    this.runner = new JobRunner(o, this.db, this.settler, this.logger, () => { if (this.backlog) this.wakeup.wake(); });
    const role = await this.probe();
    this.logger.info({ role, concurrency: o.concurrency, leaseSeconds: o.leaseSeconds, pooler: o.pooler, listen: o.listen, types: o.types }, 'worker started');
    if (o.listen) {
      this.listener = new Listener(this.db, this.logger, () => { this.backlog = true; this.wakeup.wake(); });
      this.listener.start();
    }
    this.claimLoopDone = this.guard('claim', this.claimLoop());
    const side = [this.guard('heartbeat', this.heartbeatLoop())];
    if (o.maintenanceIntervalMs !== false) side.push(this.guard('maintenance', this.maintenanceLoop(o.maintenanceIntervalMs)));
    this.sideLoopsDone = Promise.all(side);
  }

  /** current_user after the role switch; throws on permission/config errors, tolerates an unreachable database. */
  private async probe(): Promise<string | undefined> {
    try {
      const p = await this.db.probe();
      if (!p.canClaim) throw new WorkerConfigError(`role "${p.user}" may not execute public.claim_jobs: connect as a login role that is a member of ${this.o.role ?? 'service_role'} (see worker/README.md)`);
      return p.user;
    } catch (err) {
      if (!isTransientDbError(err)) {
        this.state = 'stopped';
        await this.db.end().catch(() => {});
        throw err;
      }
      // Not fatal: an orchestrator may start workers before the database; the loops keep trying.
      this.logger.warn({ err }, 'database unreachable at start; will keep trying');
      return undefined;
    }
  }

  private async claimLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      const want = Math.min(this.o.concurrency - this.runner.running, this.o.batchSize);
      let full = false;
      if (want > 0) {
        let jobs: Job[];
        try {
          jobs = await this.db.claim(want);
        } catch (err) {
          failures += 1;
          // The first failure of a streak, then about every 5 s (the backoff cap), so an outage is visible but quiet.
          if (failures === 1 || backoffMs(failures) >= 2500) this.logger.warn({ err, failures }, 'claim failed; backing off');
          await pause(backoffMs(failures), this.stopping.signal);
          continue;
        }
        if (failures > 0) this.logger.info({ failures }, 'claims working again');
        failures = 0;
        if (this.stopping.signal.aborted) {
          // stop() came while this claim was in flight: hand the jobs straight back, attempt not used.
          // Not awaited: shutdown's settler.drain() bounds the wait if the database is gone meanwhile.
          for (const j of jobs) void this.settler.release({ id: j.id, lease_id: j.lease_id });
          break;
        }
        for (const job of jobs) this.runner.start(job);
        full = jobs.length === want;
        this.backlog = full;
      }
      if (full && this.runner.running < this.o.concurrency) continue;
      await this.wakeup.wait(this.o.pollIntervalMs);
    }
  }

  private async heartbeatLoop(): Promise<void> {
    let next = Date.now();
    while (!this.sideLoops.signal.aborted) {
      // A fixed cadence (not interval + call time): a slow heartbeat must not push the next one towards expiry.
      next += this.o.heartbeatIntervalMs;
      await pause(Math.max(0, next - Date.now()), this.sideLoops.signal);
      if (this.sideLoops.signal.aborted) break;
      await this.runner.heartbeat();
      if (Date.now() > next + this.o.heartbeatIntervalMs) next = Date.now(); // fell behind: do not burst
    }
  }

  private async maintenanceLoop(interval: number): Promise<void> {
    // A random first delay spreads the workers of a fleet over the interval.
    await pause(Math.random() * interval, this.sideLoops.signal);
    while (!this.sideLoops.signal.aborted) {
      try {
        const counts = await this.db.maintenance();
        const busy = Object.values(counts).some((n) => n > 0);
        this.logger[busy ? 'info' : 'debug']({ maintenance: counts }, 'maintenance pass');
      } catch (err) {
        this.logger.warn({ err }, 'maintenance failed; next pass at the next interval');
      }
      await pause(interval, this.sideLoops.signal);
    }
  }

  /** A loop must never reject: log it and keep the process up (the leases keep the jobs safe). */
  private guard(name: string, p: Promise<void>): Promise<void> {
    return p.catch((err) => this.logger.fatal({ err, loop: name }, 'worker loop crashed'));
  }

  private async shutdown(): Promise<void> {
    await this.startPromise?.catch(() => {}); // a stop() during start() waits for the loops to exist
    if (this.state === 'stopped') return; // start() failed and cleaned up
    this.logger.info({ running: this.runner.running, graceMs: this.o.shutdownGraceMs }, 'stopping: no more claims');
    this.stopping.abort();
    this.wakeup.wake();
    await this.claimLoopDone;
    await this.listener?.stop();
    if (!(await this.runner.waitFor('idle', this.o.shutdownGraceMs))) {
      this.logger.warn({ running: this.runner.running }, 'shutdown grace ran out; aborting and releasing the jobs still running');
      this.runner.abortRunning('shutdown', 'worker shutting down: job released, it will run again');
    }
    // Heartbeats go on until the last settle: a held job must not expire while its release is queued.
    const settled = await this.runner.waitFor('settled', SETTLE_DRAIN_MS);
    await this.settler.drain(settled ? SETTLE_DRAIN_MS : 0);
    this.sideLoops.abort();
    await this.sideLoopsDone;
    await this.db.end().catch((err) => this.logger.warn({ err }, 'closing the database connection failed'));
    this.state = 'stopped';
    this.logger.info('worker stopped');
  }
}
