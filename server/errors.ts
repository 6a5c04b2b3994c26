/**
 * Errors of supaqueue/server. The engine's SQLSTATEs are mapped through the one table of codes
 * (supabase/functions/_supaqueue/errors.ts), so a backend sees the same codes as the HTTP API and the
 * client helpers: `err.code === 'QUEUE_QUOTA_EXCEEDED'`. Anything else (connection loss, a bug) is
 * rethrown as it came from the driver.
 */
import { errorDetails, lookupSqlState, type ErrorName } from '../supabase/functions/_supaqueue/errors.ts';

export type { ErrorName };

const INVALID = lookupSqlState('QJ001')!;

/** An error of the queue's rules: a stable code, the SQLSTATE it came from and its HTTP status. */
export class SupaqueueError extends Error {
  constructor(
    readonly code: ErrorName,
    message: string,
    /** QJ001..QJ010, or the Postgres data-exception code (class 22) mapped to INVALID_ARGUMENT. */
    readonly sqlstate: string,
    /** The HTTP status the jobs API answers with for this code, handy when a backend forwards it. */
    readonly status: number,
    options?: { cause?: unknown },
    /** Facts of the error when the engine gives them: CONCURRENT_JOB_LIMIT has { limit, active, adding, tier }. */
    readonly details: Record<string, unknown> | null = null,
  ) {
    super(message, options);
    this.name = 'SupaqueueError';
  }
}

/** Thrown by createQueue for invalid options; the message lists every problem. */
export class QueueConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueConfigError';
  }
}

/** The SupaqueueError for a driver error, or the error itself when it is not one of the queue's. */
export function toQueueError(e: unknown): unknown {
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : undefined;
  const ours = lookupSqlState(code);
  if (ours) return new SupaqueueError(ours.name, (e as Error).message, ours.sqlstate, ours.http, { cause: e }, errorDetails(ours, e) ?? null);
  // Class 22 (a malformed uuid, a number out of range) can only come from the caller's arguments.
  if (code?.startsWith('22') && (e as { severity?: unknown }).severity !== undefined) {
    return new SupaqueueError(INVALID.name, (e as Error).message, code, INVALID.http, { cause: e });
  }
  return e;
}

/** Runs fn, turning the engine's errors into SupaqueueError. */
export async function mapErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toQueueError(e);
  }
}

/** A SupaqueueError raised on this side, before any SQL (e.g. a malformed cursor). */
export function invalidArgument(message: string): SupaqueueError {
  return new SupaqueueError(INVALID.name, message, INVALID.sqlstate, INVALID.http);
}
