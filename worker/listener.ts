/**
 * LISTEN supaqueue_jobs on a dedicated connection, as a wake-up hint only: polling stays the correctness
 * path, so anything that goes wrong here costs latency, never jobs.
 *
 * Failure modes handled: the connection drops (Postgres restart, network, idle kill) -> onclose, and we
 * LISTEN again with backoff, waking the loop once back (notifications sent meanwhile were lost);
 * LISTEN refused for good (a pooler that does not support it) -> we stop trying and poll only.
 */
import type { Logger } from 'pino';
import type { Sql } from 'postgres';
import { backoffMs, isTransientDbError } from './errors.ts';
import { DeadlineError } from './source.ts';

/** Opens the one-connection client LISTEN runs on, reporting notifications and connection loss. */
export type ListenClientFactory = (handlers: { onnotify: () => void; onclose: () => void }) => Sql;

export const CHANNEL = 'supaqueue_jobs';

export class Listener {
  private client: Sql | null = null;
  private listening = false;
  private subscribing = false;
  private stopped = false;
  /** LISTEN was refused for good: do not try again. */
  private disabled = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | null = null;

  /** deadlineMs: a LISTEN unanswered by then is abandoned with its connection, and tried again later. */
  constructor(private readonly open: ListenClientFactory, private readonly logger: Logger,
    private readonly onWake: () => void, private readonly deadlineMs: number) {}

  /** True while a LISTEN is registered on a live connection. */
  get active(): boolean {
    return this.listening;
  }

  start(): void {
    this.client = this.newClient();
    void this.subscribe();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.client?.end({ timeout: 1 }).catch(() => {});
  }

  private newClient(): Sql {
    // Only the current client's closing matters: a replaced one is closed on purpose.
    const client: Sql = this.open({ onnotify: () => this.onWake(), onclose: () => { if (this.client === client) this.lost(); } });
    return client;
  }

  /** LISTEN within the deadline; past it the connection is dropped for a new one (a hung socket never answers). */
  private async listen(client: Sql): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const attempt = client.unsafe(`listen ${CHANNEL}`);
    attempt.catch(() => {});
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineError('listen', this.deadlineMs)), this.deadlineMs);
    });
    try {
      await Promise.race([attempt, deadline]);
    } catch (err) {
      if (err instanceof DeadlineError && this.client === client) {
        this.client = this.newClient();
        void client.end({ timeout: 0 }).catch(() => {});
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private async subscribe(): Promise<void> {
    if (this.stopped || this.subscribing || !this.client) return;
    this.subscribing = true;
    try {
      await this.listen(this.client);
      this.listening = true;
      if (this.failures > 0) this.logger.info({ channel: CHANNEL }, 'LISTEN restored');
      else this.logger.debug({ channel: CHANNEL }, 'listening for wake-ups');
      this.failures = 0;
      // Notifications sent while we were not listening are gone: look for work now.
      this.onWake();
    } catch (err) {
      this.listening = false;
      this.failures += 1;
      if (!isTransientDbError(err)) {
        this.logger.warn({ err, channel: CHANNEL }, 'LISTEN not available on this connection; polling only');
        this.disabled = true;
        return;
      }
      if (this.failures === 1) this.logger.warn({ err, channel: CHANNEL }, 'LISTEN failed; polling until it can be restored');
      this.scheduleRetry();
    } finally {
      this.subscribing = false;
    }
  }

  /** The listen connection closed (postgres.js calls this for every closed or failed connection). */
  private lost(): void {
    if (this.stopped || this.disabled) return;
    if (this.listening) this.logger.warn({ channel: CHANNEL }, 'LISTEN connection lost; polling until it is restored');
    this.listening = false;
    if (!this.subscribing) this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stopped || this.disabled || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.subscribe();
    }, backoffMs(Math.max(1, this.failures), 5000));
  }
}
