/**
 * Errors the worker gives handlers, and how the worker tells transient database trouble (retry the call
 * after a pause) from everything else (a bug or a rule of the queue: do not repeat it).
 */
import { isTransientDbError as isTransientForEveryone } from '../supabase/functions/_supaqueue/errors.ts';

/**
 * Throw this (or any error with `retryable = false`) from a handler to fail the job for good, whatever
 * attempts it has left: retrying would fail the same way (bad payload, missing resource, ...).
 */
export class PermanentError extends Error {
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

/** Why the worker aborted a handler's ctx.signal; decides what is reported for the job. */
export type AbortCause =
  | 'lease-lost' // another worker holds the job now: the result is dropped, nothing is reported
  | 'cancelled' // cancel_job was called: reported through fail_jobs, which ends it `cancelled`
  | 'timeout' // the handler ran longer than jobTimeoutMs: a retryable failure
  | 'shutdown'; // stop() ran out of grace: released, so it runs again without losing an attempt

/** The reason a handler's ctx.signal carries; `signal.throwIfAborted()` throws it. */
export class JobAbortedError extends Error {
  constructor(readonly kind: AbortCause, message: string) {
    super(message);
    this.name = 'JobAbortedError';
  }
}

/** false when the error says retrying cannot help (PermanentError, or `retryable === false`). */
export function isRetryableHandlerError(err: unknown): boolean {
  return !(typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === false);
}

/** The text stored in last_error / the error history: "Name: message" (plain "message" for Error). */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    return err.name && err.name !== 'Error' ? `${err.name}: ${err.message}` : err.message || err.name;
  }
  try {
    return typeof err === 'string' ? err : JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}

/**
 * True for failures worth repeating the same call for after a pause: the connection dropped, Postgres is
 * restarting or shutting down, too many connections, serialization/deadlock. Every worker call is safe
 * to repeat (the SQL fences settles by lease), so the only risk of a false "true" is a wasted retry;
 * a false "false" would drop a settle, so unknown socket-level errors count as transient.
 */
export function isTransientDbError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  // The one list (supabase/functions/_supaqueue/errors.ts, which the edge functions answer 503 with) ...
  if (isTransientForEveryone(err)) return true;
  // ... plus the worker's own caution: any other socket-level code (E...) raised on our side counts too.
  const e = err as { code?: unknown; severity?: unknown; name?: unknown };
  const fromServer = e.name === 'PostgresError' || typeof e.severity === 'string';
  return !fromServer && typeof e.code === 'string' && e.code.startsWith('E');
}

/** True when the server answered with an error (a PostgresError): its SQLSTATE says what is wrong. */
export function isServerError(err: unknown): boolean {
  const e = err as { name?: unknown; severity?: unknown } | null;
  return typeof e === 'object' && e !== null && (e.name === 'PostgresError' || typeof e.severity === 'string');
}

/**
 * How many times in a row the claim loop retries a client-side error it cannot classify (no SQLSTATE,
 * not a known socket code) before it treats it as a bug and crashes: a bug throws every time, a driver
 * hiccup while Postgres restarts does not. A server error that is not transient crashes at once.
 * (Heartbeats stay strict: a heartbeat that cannot run fences every job, so retrying it helps nothing.)
 */
export const UNCLASSIFIED_RETRIES = 3;

/** Exponential backoff with jitter for repeated database failures: ~100 ms doubling, capped at maxMs. */
export function backoffMs(failures: number, maxMs = 5000): number {
  const base = Math.min(maxMs, 100 * 2 ** Math.max(0, Math.min(failures - 1, 16)));
  return Math.round(base / 2 + Math.random() * (base / 2));
}
