/**
 * The one table of supaqueue error codes: SQLSTATE raised by the SQL engine -> stable name -> HTTP status.
 * Pure TypeScript with no runtime imports, shared by the Deno edge functions and the Node worker.
 * Tests assert these codes, never message text; a test checks the table matches the migrations.
 * retryAfter: seconds the API sends as Retry-After (a guess at how soon workers drain some jobs).
 * details: the SQL error's DETAIL is JSON meant for callers (the API answers it as error.details).
 */
export const ERROR_CODES = {
  QJ001: { name: 'INVALID_ARGUMENT', http: 400 },
  QJ002: { name: 'TENANT_NOT_FOUND', http: 404 },
  QJ003: { name: 'JOB_NOT_FOUND', http: 404 },
  QJ004: { name: 'INVALID_STATE', http: 409 },
  QJ005: { name: 'MAX_ATTEMPTS_REACHED', http: 400 },
  QJ006: { name: 'QUEUE_QUOTA_EXCEEDED', http: 429, retryAfter: 30 },
  QJ007: { name: 'PAYLOAD_TOO_LARGE', http: 413 },
  QJ008: { name: 'NOT_AUTHENTICATED', http: 401 },
  QJ009: { name: 'RATE_LIMITED', http: 429 },
  QJ010: { name: 'FORBIDDEN', http: 403 },
  QJ011: { name: 'SCHEDULE_NOT_FOUND', http: 404 },
  // The submitting user's active-job limit (their quota tier); details: { limit, active, adding, tier }.
  QJ012: { name: 'CONCURRENT_JOB_LIMIT', http: 429, retryAfter: 30, details: true },
} as const satisfies Record<string, { name: string; http: number; retryAfter?: number; details?: boolean }>;

export type SqlState = keyof typeof ERROR_CODES;
export type ErrorName = (typeof ERROR_CODES)[SqlState]['name'];

/** Postgres SQLSTATEs worth retrying the same call for (connection loss, failover, serialization). */
export const RETRYABLE_PG_CODES: ReadonlySet<string> = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up / recovery)
  '08000', '08003', '08006', '08001', '08004', // connection exceptions
  '53300', // too_many_connections
]);

/**
 * Codes the postgres driver (postgres.js) and the runtime's sockets give when the database is out of
 * reach, plus CALL_TIMEOUT (the worker abandoned a call at its deadline, worker/source.ts).
 */
export const CONNECTION_ERROR_CODES: ReadonlySet<string> = new Set([
  'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT', 'CALL_TIMEOUT',
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENOTFOUND', 'EAI_AGAIN', 'ENOENT',
]);

/**
 * The one classification of transient database trouble, for the edge (503 + Retry-After) and the worker
 * (repeat the call after a pause): the connection dropped or never came up, Postgres is restarting or
 * shutting down (57P0x), out of resources or connections (53xxx), a connection exception (08xxx),
 * serialization/deadlock, or a statement timeout or cancel (57014): the same call may pass next time.
 */
export function isTransientDbError(err: unknown): boolean {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : '';
  return CONNECTION_ERROR_CODES.has(code) || RETRYABLE_PG_CODES.has(code) || code === '57014'
    || code.startsWith('08') || code.startsWith('57P') || code.startsWith('53');
}

export interface SqlStateInfo {
  sqlstate: SqlState;
  name: ErrorName;
  http: number;
  /** Seconds for Retry-After, when the code has one. */
  retryAfter?: number;
  /** True when the SQL error's DETAIL is JSON for the caller (see errorDetails). */
  details?: boolean;
}

/** The name, HTTP status and extras for a SQLSTATE of ours, or undefined for anything else. */
export function lookupSqlState(code: string | undefined): SqlStateInfo | undefined {
  if (!code || !(code in ERROR_CODES)) return undefined;
  const entry: { name: ErrorName; http: number; retryAfter?: number; details?: boolean } = ERROR_CODES[code as SqlState];
  return { sqlstate: code as SqlState, name: entry.name, http: entry.http, retryAfter: entry.retryAfter, details: entry.details };
}

/**
 * The caller-facing details of a database error of ours (its DETAIL parsed as a JSON object), for codes
 * whose table entry says so; undefined otherwise (other codes' DETAIL may hold internals).
 */
export function errorDetails(info: SqlStateInfo | undefined, err: unknown): Record<string, unknown> | undefined {
  const detail = (err as { detail?: unknown })?.detail;
  if (!info?.details || typeof detail !== 'string') return undefined;
  try {
    const v = JSON.parse(detail);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
