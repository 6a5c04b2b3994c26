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
import type { Db } from './db.ts';
import { backoffMs, isTransientDbError } from './errors.ts';

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

  constructor(private readonly db: Db, private readonly logger: Logger, private readonly onWake: () => void) {}

  /** True while a LISTEN is registered on a live connection. */
  get active(): boolean {
    return this.listening;
  }

  start(): void {
    this.client = this.db.listenerClient({ onnotify: () => this.onWake(), onclose: () => this.lost() });
    void this.subscribe();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.client?.end({ timeout: 1 }).catch(() => {});
  }

  private async subscribe(): Promise<void> {
    if (this.stopped || this.subscribing || !this.client) return;
    this.subscribing = true;
    try {
      await this.client.unsafe(`listen ${CHANNEL}`);
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
