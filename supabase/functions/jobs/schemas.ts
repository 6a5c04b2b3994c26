/**
 * Input validation for the jobs API. Strict objects (unknown fields are a 400, so a typo such as
 * `max_attempt` is not silently ignored), and the same bounds the engine enforces, so most bad input
 * is refused before it costs a transaction. The engine re-checks everything (it is the authority).
 * The envelope fields trace_id, actor_id and request_id are not accepted from the body: the API sets
 * them from the request, so a user cannot attribute a job to someone else.
 */
import { z } from 'zod';
import { ApiError } from '../_shared/http.ts';

// Any hex UUID (Postgres's uuid type accepts every version, so must we).
export const Uuid = z.guid();
const JobType = z.string().regex(/^[a-z][a-z0-9_.:-]{0,127}$/, 'type must match ^[a-z][a-z0-9_.:-]{0,127}$');
const JobStatus = z.enum(['pending', 'processing', 'completed', 'failed', 'cancelled']);
const MAX_DELAY_MS = 365 * 24 * 3600 * 1000;

export const EnqueueBody = z.strictObject({
  type: JobType,
  payload: z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional(),
  priority: z.number().int().min(-100).max(100).optional(),
  run_at: z.iso.datetime({ offset: true }).optional(),
  delay_ms: z.number().int().min(0).max(MAX_DELAY_MS).optional(),
  max_attempts: z.number().int().min(1).max(100).optional(),
  idempotency_key: z.string().min(1).max(255).optional(),
  tenant_id: Uuid.optional(),
}).refine((b) => b.run_at === undefined || b.delay_ms === undefined, { message: 'give run_at or delay_ms, not both' });
export type EnqueueBody = z.infer<typeof EnqueueBody>;

export const RetryBody = z.strictObject({
  extra_attempts: z.number().int().min(0).max(100).optional(),
});

/** Cancel takes no options; a body, if sent, must be an empty JSON object. */
export const CancelBody = z.strictObject({});

const Limit = z.string().regex(/^\d{1,3}$/, 'limit must be a whole number').transform(Number).pipe(z.number().int().min(1).max(100));

export const ListQuery = z.strictObject({
  status: JobStatus.optional(),
  type: JobType.optional(),
  tenant_id: Uuid.optional(),
  limit: Limit.optional(),
  cursor: z.string().max(200).optional(),
  // Added by supabase-js when a region is forced; meaningless here but must not be refused.
  forceFunctionRegion: z.string().optional(),
});
export type ListQuery = z.infer<typeof ListQuery>;

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
// forged cursor only moves the window over rows RLS already lets the caller see.
const CursorTs = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}(:\d{2})?)$/;
const Cursor = z.tuple([z.string().regex(CursorTs), Uuid]);

export function encodeCursor(createdAt: string, id: string): string {
  const bytes = new TextEncoder().encode(JSON.stringify([createdAt, id]));
  return btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

export function decodeCursor(cursor: string): { createdAt: string; id: string } {
  try {
    const json = atob(cursor.replaceAll('-', '+').replaceAll('_', '/'));
    const [createdAt, id] = Cursor.parse(JSON.parse(json));
    return { createdAt, id };
  } catch {
    throw new ApiError('INVALID_ARGUMENT', 'invalid cursor');
  }
}
