/**
 * Batches settles: complete, fail and release calls queue here and go out together, one RPC per kind,
 * `intervalMs` after the first one queued or as soon as `batchSize` are waiting. Under load this turns
 * hundreds of one-row calls a second into a few array calls.
 *
 * The server decides every outcome (the lease fences each settle): an id missing from the answer means
 * our lease was lost, so the job belongs to someone else now, and that settle is never repeated.
 * Only transport failures are retried (same lease: the SQL makes a repeat harmless). A batch the server
 * rejects outright (e.g. one result over 1 MiB) is split, so one bad job cannot block the others.
 */
import type { Logger } from 'pino';
import type { CompleteItem, Deadlines, FailItem, Lease } from './source.ts';
import { backoffMs, describeError, isTransientDbError } from './errors.ts';
import type { JobStatus } from './types.ts';
import { pause } from './wakeup.ts';

export type SettleOutcome =
  | { settled: true; status: JobStatus }
  /** stale: the lease was no longer ours; abandoned: the worker stopped before it could be sent. */
  | { settled: false; reason: 'stale' | 'abandoned' | 'rejected'; error?: string };

type Kind = 'complete' | 'fail' | 'release';
type ItemOf<K extends Kind> = K extends 'complete' ? CompleteItem : K extends 'fail' ? FailItem : Lease;
interface Pending<K extends Kind> { item: ItemOf<K>; resolve: (o: SettleOutcome) => void }

const KINDS: Kind[] = ['complete', 'fail', 'release'];

export class Settler {
  private readonly queues: { [K in Kind]: Pending<K>[] } = { complete: [], fail: [], release: [] };
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private failures = 0;
  private readonly abandon = new AbortController();

  constructor(private readonly db: Pick<Deadlines, 'complete' | 'fail' | 'release'>, private readonly logger: Logger,
    private readonly opts: { intervalMs: number; batchSize: number }) {}

  complete(item: CompleteItem): Promise<SettleOutcome> { return this.push('complete', item); }
  fail(item: FailItem): Promise<SettleOutcome> { return this.push('fail', item); }
  release(item: Lease): Promise<SettleOutcome> { return this.push('release', item); }

  /** Sends everything queued; after timeoutMs, gives up on what is left (its leases simply expire). */
  async drain(timeoutMs: number): Promise<void> {
    const flushed = this.flush().then(() => true, (err) => { this.logger.error({ err }, 'settle flush failed unexpectedly'); return false; });
    if (await Promise.race([flushed, pause(timeoutMs).then(() => false)])) return;
    this.abandon.abort();
    const left: Pending<Kind>[] = KINDS.flatMap((k) => (this.queues[k] as Pending<Kind>[]).splice(0));
    if (left.length) this.logger.warn({ jobs: left.length }, 'could not settle before stopping; their leases will expire and they run again');
    for (const p of left) p.resolve({ settled: false, reason: 'abandoned' });
  }

  private push<K extends Kind>(kind: K, item: ItemOf<K>): Promise<SettleOutcome> {
    return new Promise((resolve) => {
      if (this.abandon.signal.aborted) return resolve({ settled: false, reason: 'abandoned' });
      (this.queues[kind] as Pending<K>[]).push({ item, resolve });
      this.schedule();
    });
  }

  private size(): number {
    return this.queues.complete.length + this.queues.fail.length + this.queues.release.length;
  }

  private schedule(): void {
    if (this.flushing) return; // the running flush loops until every queue is empty
    if (this.size() >= this.opts.batchSize) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.flushSafely();
    } else if (!this.timer) {
      this.timer = setTimeout(() => { this.timer = null; this.flushSafely(); }, this.opts.intervalMs);
    }
  }

  private flushSafely(): void {
    this.flush().catch((err) => this.logger.error({ err }, 'settle flush failed unexpectedly'));
  }

  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.flushing = (async () => {
      try {
        while (this.size() > 0 && !this.abandon.signal.aborted) await this.flushOnce();
      } finally {
        this.flushing = null;
      }
    })();
    return this.flushing;
  }

  /** One round: up to batchSize of each kind, the kinds in parallel; waits before a retry. */
  private async flushOnce(): Promise<void> {
    const rounds = KINDS.map((k) => [k, this.queues[k].splice(0, this.opts.batchSize)] as const).filter(([, b]) => b.length > 0);
    const retry = await Promise.all(rounds.map(([k, b]) => this.send(k, b as Pending<Kind>[])));
    if (!retry.some(Boolean)) {
      this.failures = 0;
      return;
    }
    this.failures += 1;
    await pause(backoffMs(this.failures), this.abandon.signal);
  }

  /** Sends one batch; returns true when it was put back for a retry (transport failure). */
  private async send(kind: Kind, batch: Pending<Kind>[]): Promise<boolean> {
    try {
      const items = batch.map((p) => p.item);
      if (kind === 'fail') {
        const settled = await this.db.fail(items as FailItem[]);
        for (const p of batch) {
          const status = settled.get(p.item.id);
          p.resolve(status ? { settled: true, status } : { settled: false, reason: 'stale' });
        }
      } else {
        const settled = kind === 'complete' ? await this.db.complete(items as CompleteItem[]) : await this.db.release(items);
        const status: JobStatus = kind === 'complete' ? 'completed' : 'pending';
        for (const p of batch) p.resolve(settled.has(p.item.id) ? { settled: true, status } : { settled: false, reason: 'stale' });
      }
      return false;
    } catch (err) {
      if (isTransientDbError(err)) {
        if (this.abandon.signal.aborted) {
          for (const p of batch) p.resolve({ settled: false, reason: 'abandoned' });
          return false;
        }
        if (this.failures === 0) this.logger.warn({ err, kind, jobs: batch.length }, 'settle failed; retrying with the same leases');
        (this.queues[kind] as Pending<Kind>[]).unshift(...batch);
        return true;
      }
      return this.isolate(kind, batch, err);
    }
  }

  /** The server rejected the batch: retry each job alone, so only the offending one is affected. */
  private async isolate(kind: Kind, batch: Pending<Kind>[], err: unknown): Promise<boolean> {
    if (batch.length > 1) {
      let retry = false;
      for (const p of batch) retry = (await this.send(kind, [p])) || retry;
      return retry;
    }
    const [p] = batch;
    if (kind === 'complete') {
      // The result itself was refused (too large, invalid JSON for jsonb): fail the job for good instead
      // of holding it until its lease expires and running it again to the same end.
      this.logger.error({ err, jobId: p.item.id }, 'result refused by the database; failing the job');
      this.queues.fail.push({ item: { id: p.item.id, lease_id: p.item.lease_id, error: `result could not be stored: ${describeError(err)}`, retryable: false }, resolve: p.resolve });
      return false;
    }
    this.logger.error({ err, kind, jobId: p.item.id }, 'settle refused by the database');
    p.resolve({ settled: false, reason: 'rejected', error: describeError(err) });
    return false;
  }
}
