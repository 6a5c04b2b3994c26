/**
 * Input validation for the jobs API. Strict objects (unknown fields are a 400, so a typo such as
 * `max_attempt` is not silently ignored), and the same bounds the engine enforces, so most bad input
 * is refused before it costs a transaction. The engine re-checks everything (it is the authority).
 * The envelope fields trace_id, actor_id and request_id are not accepted from the body: the API sets
 * them from the request, so a user cannot attribute a job to someone else.
 */
import { z } from 'zod';
import {
  EXTRA_ATTEMPTS, JOB_STATUSES, JOB_TYPE_PATTERN, JOB_TYPE_RE, MAX_ATTEMPTS, PRIORITY,
} from '../_supaqueue/contract.ts';
import { ApiError } from '../_supaqueue/http.ts';

// Any hex UUID (Postgres's uuid type accepts every version, so must we).
export const Uuid = z.guid();
const JobType = z.string().regex(JOB_TYPE_RE, `type must match ${JOB_TYPE_PATTERN}`);
const JobStatus = z.enum(JOB_STATUSES);
const MAX_DELAY_MS = 365 * 24 * 3600 * 1000;

export const EnqueueBody = z.strictObject({
  type: JobType,
  payload: z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional(),
  priority: z.number().int().min(PRIORITY.min).max(PRIORITY.max).optional(),
  run_at: z.iso.datetime({ offset: true }).optional(),
  delay_ms: z.number().int().min(0).max(MAX_DELAY_MS).optional(),
  max_attempts: z.number().int().min(MAX_ATTEMPTS.min).max(MAX_ATTEMPTS.max).optional(),
  idempotency_key: z.string().min(1).max(255).optional(),
  tenant_id: Uuid.optional(),
}).refine((b) => b.run_at === undefined || b.delay_ms === undefined, { message: 'give run_at or delay_ms, not both' });
export type EnqueueBody = z.infer<typeof EnqueueBody>;

export const RetryBody = z.strictObject({
  extra_attempts: z.number().int().min(EXTRA_ATTEMPTS.min).max(EXTRA_ATTEMPTS.max).optional(),
});

/** Cancel takes no options; a body, if sent, must be an empty JSON object. */
export const CancelBody = z.strictObject({});

/** GET /jobs/limits: the tenant (optional when the caller belongs to one). */
export const LimitsQuery = z.strictObject({
  tenant_id: Uuid.optional(),
  forceFunctionRegion: z.string().optional(),
});

const Limit = z.string().regex(/^\d{1,3}$/, 'limit must be a whole number').transform(Number).pipe(z.number().int().min(1).max(100));

/** A JSON object the payload must contain (`payload @> filter`), e.g. {"customer":{"id":42}}. */
const PayloadFilter = z.string().max(1000).transform((text, ctx) => {
  try {
    const v = JSON.parse(text);
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) return JSON.stringify(v);
  } catch { /* reported below */ }
  ctx.addIssue({ code: 'custom', message: 'payload must be a non-empty JSON object' });
  return z.NEVER;
});

/** The filters shared by the listing and bulk actions (one home: queries.ts jobFilter). */
export const JobFilter = z.strictObject({
  status: JobStatus.optional(),
  type: JobType.optional(),
  tenant_id: Uuid.optional(),
  created_after: z.iso.datetime({ offset: true }).optional(),
  created_before: z.iso.datetime({ offset: true }).optional(),
  payload: PayloadFilter.optional(),
  // A job id, or an idempotency key (exact).
  search: z.string().min(1).max(255).optional(),
});
export type JobFilter = z.infer<typeof JobFilter>;

export const ListQuery = JobFilter.extend({
  // true: only the jobs the caller submitted (job_queue.submitted_by; its own index).
  mine: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
  limit: Limit.optional(),
  cursor: z.string().max(200).optional(),
  // Added by supabase-js when a region is forced; meaningless here but must not be refused.
  forceFunctionRegion: z.string().optional(),
});
export type ListQuery = z.infer<typeof ListQuery>;

/** Bulk retry/cancel of the jobs matching a filter (bounded by the engine's max_bulk_jobs). */
export const BulkBody = z.strictObject({
  action: z.enum(['retry', 'cancel']),
  filter: JobFilter.omit({ payload: true }).extend({ payload: z.record(z.string(), z.unknown()).optional() }),
  extra_attempts: RetryBody.shape.extra_attempts,
  dry_run: z.boolean().optional(),
});
export type BulkBody = z.infer<typeof BulkBody>;

/** The statuses each bulk action starts from (the engine re-checks every job). */
export const BULK_SOURCE_STATUSES = { retry: ['failed', 'cancelled'], cancel: ['pending', 'processing'] } as const;

/** Parses with a schema or throws 400 INVALID_ARGUMENT naming the first problem. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
  throw new ApiError('INVALID_ARGUMENT', `${where}${issue.message}`.slice(0, 300));
}

/** A job id from the path, or 400 (never a database round trip for `abc` or `../x`). */
export function parseJobId(raw: string | undefined): string {
  const r = Uuid.safeParse(raw ?? '');
  if (!r.success) throw new ApiError('INVALID_ARGUMENT', 'the job id must be a UUID');
  return r.data.toLowerCase();
}

// Keyset cursor: the last row's (created_at, id), as Postgres printed created_at (microseconds kept;
// a JS Date would round to milliseconds and skip or repeat rows). Opaque to clients, not secret: a
// forged cursor only moves the window over rows RLS already lets the caller see. Decoding is strict:
// only what encodeCursor produces for a real timestamp is accepted (30 February, month 13 or hour 25
// would otherwise reach the driver, whose timestamp serialiser throws, or be read by Postgres loosely).
const CursorTs = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|([+-])(\d{2})(?::(\d{2}))?)$/;
const Cursor = z.tuple([z.string(), Uuid]);

/** True when the timestamp text names an instant that exists on the calendar (and an offset Postgres takes). */
function isRealTimestamp(text: string): boolean {
  const m = CursorTs.exec(text);
  if (!m) return false;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s);
  const sameFields = date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d
    && date.getUTCHours() === h && date.getUTCMinutes() === mi && date.getUTCSeconds() === s;
  const offsetOk = m[8] === 'Z' || (Number(m[10]) <= 15 && Number(m[11] ?? 0) <= 59);
  return y >= 1 && sameFields && offsetOk;
}

export function encodeCursor(createdAt: string, id: string): string {
  const bytes = new TextEncoder().encode(JSON.stringify([createdAt, id]));
  return btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/** The cursor's (created_at, id), or 400 INVALID_ARGUMENT unless it is exactly what encodeCursor made. */
export function decodeCursor(cursor: string): { createdAt: string; id: string } {
  let decoded: [string, string];
  try {
    const bytes = Uint8Array.from(atob(cursor.replaceAll('-', '+').replaceAll('_', '/')), (ch) => ch.charCodeAt(0));
    decoded = Cursor.parse(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)));
  } catch {
    throw new ApiError('INVALID_ARGUMENT', 'invalid cursor');
  }
  const [createdAt, id] = decoded;
  // Round trip: a canonical cursor re-encodes to itself (no other spelling of the same position).
  if (!isRealTimestamp(createdAt) || encodeCursor(createdAt, id) !== cursor) {
    throw new ApiError('INVALID_ARGUMENT', 'invalid cursor');
  }
  return { createdAt, id };
}
