/**
 * HTTP plumbing shared by the edge functions: the error type, the response envelope
 * (`{ data, meta }` / `{ error: { code, message }, meta }`, both with meta.trace_id), the mapping of
 * database errors to HTTP (through the one SQLSTATE table in errors.ts), and bounded JSON body reading.
 */
import type { Context } from 'hono';
import type { JWTPayload } from 'jose';
import { ERROR_CODES, errorDetails, isTransientDbError, lookupSqlState, type ErrorName } from './errors.ts';
import { MAX_JSON_DEPTH } from './limits.ts';

/** The signed-in caller, as auth.ts verified it (defined here, where AppEnv needs it: no import cycle). */
export interface AuthUser {
  /** auth.users.id (the `sub` claim). */
  id: string;
  /** The verified claims, given to Postgres as request.jwt.claims exactly as PostgREST does. */
  claims: JWTPayload;
}

/** Hono environment of every request: set by the app's first middleware, then by auth. */
export type AppEnv = {
  Variables: {
    traceId: string;
    requestId: string | null;
    user: AuthUser;
  };
};

/** Codes that exist only at the HTTP layer (no SQLSTATE raises them). */
export const HTTP_ONLY_ERRORS = {
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  UNSUPPORTED_MEDIA_TYPE: 415,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;

export type ApiErrorCode = ErrorName | keyof typeof HTTP_ONLY_ERRORS;

const STATUS_BY_NAME: Record<string, number> = Object.fromEntries([
  ...Object.values(ERROR_CODES).map((e) => [e.name, e.http] as const),
  ...Object.entries(HTTP_ONLY_ERRORS),
]);

/** Seconds after a transient database failure (failover, pooler saturation). */
const UNAVAILABLE_RETRY_AFTER_S = 2;

/** An error with its HTTP status and stable code; its message is shown to the caller. */
export class ApiError extends Error {
  readonly status: number;
  /** Machine-readable facts for the caller (e.g. CONCURRENT_JOB_LIMIT: limit and active count), sent as error.details. */
  details?: Record<string, unknown>;
  constructor(readonly code: ApiErrorCode, message: string, readonly headers: Record<string, string> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ApiError';
    this.status = STATUS_BY_NAME[code] ?? 500;
  }
}

/** Fixed messages where the engine's own text could differ between "absent" and "not yours". */
const FIXED_MESSAGES: Partial<Record<ApiErrorCode, string>> = {
  JOB_NOT_FOUND: 'job not found',
  SCHEDULE_NOT_FOUND: 'schedule not found',
  TENANT_NOT_FOUND: 'tenant not found',
  NOT_AUTHENTICATED: 'sign in required',
};

/**
 * The ApiError for a thrown value, or undefined when it is unexpected (then: 500 INTERNAL, logged).
 * Engine errors (QJxxx) carry user-facing messages by design; any other database error's text may
 * hold internals (table names, values), so it is never passed through.
 */
export function toApiError(e: unknown): ApiError | undefined {
  if (e instanceof ApiError) return e;
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : undefined;
  if (!code) return undefined;
  const ours = lookupSqlState(code);
  if (ours) {
    // Retry-After and caller-facing details come from the one table (errors.ts).
    const headers: Record<string, string> = ours.retryAfter ? { 'Retry-After': String(ours.retryAfter) } : {};
    const err = new ApiError(ours.name, FIXED_MESSAGES[ours.name] ?? (e as Error).message, headers);
    err.details = errorDetails(ours, e);
    return err;
  }
  if (isTransientDbError(e)) {
    return new ApiError('UNAVAILABLE', 'the database is busy or unavailable; retry shortly', { 'Retry-After': String(UNAVAILABLE_RETRY_AFTER_S) }, e);
  }
  // Class 22 (data exception: bad timestamp, number out of range, ...) can only come from input that
  // passed our validation but not Postgres's (e.g. 2026-02-30 in a cursor): the caller's fault.
  if (code.startsWith('22')) return new ApiError('INVALID_ARGUMENT', 'a value is out of range or malformed');
  return undefined;
}

function baseHeaders(c: Context<AppEnv>): Record<string, string> {
  return {
    'Content-Type': 'application/json; charset=utf-8',
    // Responses hold tenant data for one user: never cache them in shared caches or the browser.
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'x-trace-id': c.get('traceId'),
  };
}

/** `{ data, meta: { trace_id, ...meta } }` with the given status. */
export function jsonOk(c: Context<AppEnv>, data: unknown, status = 200, meta: Record<string, unknown> = {}): Response {
  const body = JSON.stringify({ data, meta: { trace_id: c.get('traceId'), ...meta } });
  return new Response(body, { status, headers: baseHeaders(c) });
}

/**
 * The same envelope around data that is already JSON text (rows Postgres serialised with ::text): no
 * parse and no stringify in this isolate, so a stored value however deep is passed through unharmed.
 */
export function jsonOkText(c: Context<AppEnv>, dataJson: string, status = 200, meta: Record<string, unknown> = {}): Response {
  const body = `{"data":${dataJson},"meta":${JSON.stringify({ trace_id: c.get('traceId'), ...meta })}}`;
  return new Response(body, { status, headers: baseHeaders(c) });
}

/** A JSON array of rows' JSON text. */
export function jsonArrayText(rows: readonly { json: string }[]): string {
  return `[${rows.map((r) => r.json).join(',')}]`;
}

/** `{ error: { code, message, details? }, meta: { trace_id } }` with the error's status and headers. */
export function jsonError(c: Context<AppEnv>, err: ApiError): Response {
  const error = { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) };
  const body = JSON.stringify({ error, meta: { trace_id: c.get('traceId') } });
  return new Response(body, { status: err.status, headers: { ...baseHeaders(c), ...err.headers } });
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i;

/**
 * Reads the request body as JSON, at most maxBytes (413 beyond, without buffering the rest).
 * Returns undefined for an empty body when not required. 415 when a body (or a required one) is not
 * declared application/json; 400 for invalid JSON or JSON nested deeper than MAX_JSON_DEPTH.
 */
export async function readJsonBody(c: Context<AppEnv>, opts: { required: boolean; maxBytes: number }): Promise<unknown> {
  const req = c.req.raw;
  const type = req.headers.get('content-type');
  const length = req.headers.get('content-length');
  const declaredEmpty = length !== null && /^\s*0\s*$/.test(length);
  const mayHaveBody = req.body !== null && !declaredEmpty;
  if (!mayHaveBody && !opts.required) return undefined;
  if (!type || !JSON_TYPE.test(type.trim())) {
    throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
  }
  if (length !== null && (!/^\s*\d+\s*$/.test(length) || Number(length) > opts.maxBytes)) {
    throw new ApiError('PAYLOAD_TOO_LARGE', `the body is larger than ${opts.maxBytes} bytes`);
  }
  const text = await readTextCapped(req, opts.maxBytes);
  if (text.trim() === '') {
    if (opts.required) throw new ApiError('INVALID_ARGUMENT', 'a JSON body is required');
    return undefined;
  }
  // Before parsing: nothing downstream (zod, the driver's serialisation) then meets a deep value.
  if (jsonNestingExceeds(text, BODY_MAX_DEPTH)) {
    throw new ApiError('INVALID_ARGUMENT', `JSON nested deeper than ${MAX_JSON_DEPTH} levels is not accepted`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError('INVALID_ARGUMENT', 'the body is not valid JSON');
  }
}

/** A body's own object is one level; a payload inside it may nest MAX_JSON_DEPTH levels. */
const BODY_MAX_DEPTH = MAX_JSON_DEPTH + 1;

/**
 * True when JSON text nests arrays and objects deeper than `max`. One linear scan with a counter (no
 * recursion, no parse); brackets inside strings do not count. Invalid JSON is left to JSON.parse.
 */
export function jsonNestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c /* \ */) i++;
      else if (ch === 0x22 /* " */) inString = false;
    } else if (ch === 0x22) {
      inString = true;
    } else if (ch === 0x5b /* [ */ || ch === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (ch === 0x5d /* ] */ || ch === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

/** The body as UTF-8 text, failing with 413 as soon as it exceeds maxBytes (chunked bodies too). */
async function readTextCapped(req: Request, maxBytes: number): Promise<string> {
  if (!req.body) return '';
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new ApiError('PAYLOAD_TOO_LARGE', `the body is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(all);
  } catch {
    throw new ApiError('INVALID_ARGUMENT', 'the body is not valid UTF-8');
  }
}
