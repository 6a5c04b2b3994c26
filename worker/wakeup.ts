/** The two waits of the worker loop: an idle delay others can cut short, and a plain abortable pause. */

/**
 * wait(ms) resolves after ms, or as soon as wake() is called. A wake() that comes while nobody waits
 * (a NOTIFY during a claim, say) is remembered, so the next wait() returns at once: without it, work
 * announced mid-claim would sit until the next poll.
 */
export class Wakeup {
  private pending = false;
  private release: (() => void) | null = null;

  wake(): void {
    if (this.release) this.release();
    else this.pending = true;
  }

  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.release = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.release = done;
    });
  }
}

/** Resolves after ms, or at once when signal aborts; never rejects. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
