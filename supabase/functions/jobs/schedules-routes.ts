/**
 * The /jobs/schedules router: recurring jobs per tenant (mounted by app.ts at /jobs/schedules, after
 * auth and rate limiting). Each handler validates its input, computes cron slots (../_supaqueue/cron.ts),
 * then does its work in one transaction as the caller; RLS and the schedule functions of migration
 * 20261123000400 decide who may do what (members read; tenant admins and super admins manage).
 *
 *   GET    /jobs/schedules            list (tenant_id, enabled, limit, cursor)
 *   POST   /jobs/schedules            create                      201
 *   GET    /jobs/schedules/:id        one schedule                404 if absent or not visible
 *   PATCH  /jobs/schedules/:id        change fields               cron/time_zone/re-enable recompute next_run_at
 *   DELETE /jobs/schedules/:id        delete (its jobs stay)      200 with the deleted schedule
 *   POST   /jobs/schedules/:id/run    enqueue one job now         201 with the job
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { JOB_TYPE_PATTERN, JOB_TYPE_RE, MAX_ATTEMPTS, PRIORITY } from '../_supaqueue/contract.ts';
import { checkSchedule, CronError } from '../_supaqueue/cron.ts';
import type { Db, Tx } from '../_supaqueue/db.ts';
import { ApiError, jsonArrayText, jsonOkText, readJsonBody, type AppEnv } from '../_supaqueue/http.ts';
import { getJob, resolveTenant } from './queries.ts';
import { decodeCursor, encodeCursor, parseInput, Uuid } from './schemas.ts';

export interface SchedulesRouterDeps {
  db: Db;
  maxBodyBytes: number;
}

/** A schedule as answered: Postgres's JSON text of the row (passed through, see queries.ts) plus what handlers read. */
interface Schedule {
  id: string;
  created_at: string;
  json: string;
  enabled: boolean;
  cron: string;
  time_zone: string;
}

const Fields = {
  name: z.string().min(1).max(200),
  cron: z.string().min(1).max(200),
  time_zone: z.string().min(1).max(64),
  job_type: z.string().regex(JOB_TYPE_RE, `job_type must match ${JOB_TYPE_PATTERN}`),
  payload: z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]),
  priority: z.number().int().min(PRIORITY.min).max(PRIORITY.max),
  max_attempts: z.number().int().min(MAX_ATTEMPTS.min).max(MAX_ATTEMPTS.max),
  enabled: z.boolean(),
};

const CreateBody = z.strictObject({
  tenant_id: Uuid.optional(),
  name: Fields.name,
  cron: Fields.cron,
  job_type: Fields.job_type,
  time_zone: Fields.time_zone.optional(),
  payload: Fields.payload.optional(),
  priority: Fields.priority.optional(),
  max_attempts: Fields.max_attempts.optional(),
  enabled: Fields.enabled.optional(),
});

const UpdateBody = z.strictObject(Fields).partial()
  .refine((b) => Object.keys(b).length > 0, { message: 'give at least one field to change' });

const Limit = z.string().regex(/^\d{1,3}$/, 'limit must be a whole number').transform(Number).pipe(z.number().int().min(1).max(100));
const ListQuery = z.strictObject({
  tenant_id: Uuid.optional(),
  enabled: z.enum(['true', 'false']).optional(),
  limit: Limit.optional(),
  cursor: z.string().max(200).optional(),
  forceFunctionRegion: z.string().optional(),
});

const ID = ':id{[^/]*}';

function parseScheduleId(raw: string | undefined): string {
  const r = Uuid.safeParse(raw ?? '');
  if (!r.success) throw new ApiError('INVALID_ARGUMENT', 'the schedule id must be a UUID');
  return r.data.toLowerCase();
}

function notFound(): ApiError {
  return new ApiError('SCHEDULE_NOT_FOUND', 'schedule not found');
}

async function mapErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CronError) throw new ApiError('INVALID_ARGUMENT', e.message);
    throw e;
  }
}

/** The first slot after the database's now(): the same clock the scheduler compares against. */
async function firstRun(tx: Tx, cron: string, timeZone: string): Promise<{ cron: string; next_run_at: string }> {
  const [{ now }] = await tx`select now() as now`;
  const checked = checkSchedule(cron, timeZone, now as Date);
  return { cron: checked.cron, next_run_at: checked.nextRunAt.toISOString() };
}

const SCHEDULE_ROW = `s.id, to_jsonb(s.created_at) #>> '{}' as created_at, to_jsonb(s)::text as json, s.enabled, s.cron, s.time_zone`;
const columns = (tx: Tx) => tx.unsafe(SCHEDULE_ROW);

async function visibleSchedule(tx: Tx, id: string): Promise<Schedule | null> {
  const [row] = await tx<Schedule[]>`select ${columns(tx)} from public.job_schedules s where s.id = ${id}`;
  return row ?? null;
}

async function listSchedules(tx: Tx, q: z.infer<typeof ListQuery>): Promise<{ rows: Schedule[]; more: boolean }> {
  const after = q.cursor ? decodeCursor(q.cursor) : undefined;
  const limit = q.limit ?? 50;
  const all = await tx<Schedule[]>`
    select ${columns(tx)} from public.job_schedules s
    where (${q.tenant_id ?? null}::uuid is null or s.tenant_id = ${q.tenant_id ?? null}::uuid)
      and (${q.enabled ?? null}::boolean is null or s.enabled = ${q.enabled ?? null}::boolean)
      and (${after?.createdAt ?? null}::timestamptz is null
           or (s.created_at, s.id) < (${after?.createdAt ?? null}::timestamptz, ${after?.id ?? null}::uuid))
    order by s.created_at desc, s.id desc
    limit ${limit + 1}`;
  return { rows: all.slice(0, limit), more: all.length > limit };
}

/** The patch sent to SQL: next_run_at recomputed when the cron, the zone or re-enabling asks for it. */
async function buildChanges(tx: Tx, current: Schedule, body: z.infer<typeof UpdateBody>): Promise<Record<string, unknown>> {
  const changes: Record<string, unknown> = { ...body };
  const enabled = body.enabled ?? current.enabled;
  const reenabled = body.enabled === true && current.enabled === false;
  if (enabled && (body.cron !== undefined || body.time_zone !== undefined || reenabled)) {
    Object.assign(changes, await firstRun(tx, body.cron ?? current.cron, body.time_zone ?? current.time_zone));
  } else if (body.cron !== undefined) {
    // Disabled (or being disabled): still refuse an expression that could never run.
    changes.cron = (await firstRun(tx, body.cron, body.time_zone ?? current.time_zone)).cron;
  }
  return changes;
}

type CreateInput = z.infer<typeof CreateBody>;

async function createSchedule(tx: Tx, input: CreateInput): Promise<Schedule> {
  const tenantId = await resolveTenant(tx, input.tenant_id);
  const first = await firstRun(tx, input.cron, input.time_zone ?? 'UTC');
  // A schedule created disabled gets no next_run_at; enabling it later computes one.
  const spec = { ...input, tenant_id: tenantId, cron: first.cron, ...(input.enabled === false ? {} : { next_run_at: first.next_run_at }) };
  const [row] = await tx<Schedule[]>`select ${columns(tx)} from public.create_job_schedule(${tx.json(spec as never)}) s`;
  return row;
}

async function updateSchedule(tx: Tx, id: string, input: z.infer<typeof UpdateBody>): Promise<Schedule> {
  const current = await visibleSchedule(tx, id);
  if (!current) throw notFound();
  const changes = await buildChanges(tx, current, input);
  const [row] = await tx<Schedule[]>`select ${columns(tx)} from public.update_job_schedule(${id}::uuid, ${tx.json(changes as never)}) s`;
  return row;
}

async function deleteSchedule(tx: Tx, id: string): Promise<Schedule> {
  const [row] = await tx<Schedule[]>`select ${columns(tx)} from public.delete_job_schedule(${id}::uuid) s`;
  return row;
}

async function runScheduleNow(tx: Tx, id: string) {
  const [{ job_id }] = await tx`select public.run_job_schedule(${id}::uuid) as job_id`;
  const job = await getJob(tx, job_id as string);
  if (!job) throw new Error('the enqueued job is not visible to its creator');
  return job;
}

export function createSchedulesRouter({ db, maxBodyBytes }: SchedulesRouterDeps): Hono<AppEnv> {
  const r = new Hono<AppEnv>();
  const body = (c: Context<AppEnv>, required: boolean) => readJsonBody(c, { required, maxBytes: maxBodyBytes });

  r.get('/', async (c) => {
    const q = parseInput(ListQuery, c.req.query());
    const { rows, more } = await db.asUser(c.get('user'), (tx) => listSchedules(tx, q));
    const last = rows.at(-1);
    return jsonOkText(c, jsonArrayText(rows), 200, { next_cursor: more && last ? encodeCursor(last.created_at, last.id) : null });
  });

  r.post('/', async (c) => {
    const input = parseInput(CreateBody, await body(c, true));
    const schedule = await mapErrors(() => db.asUser(c.get('user'), (tx) => createSchedule(tx, input)));
    return jsonOkText(c, schedule.json, 201);
  });

  r.get(`/${ID}`, async (c) => {
    const id = parseScheduleId(c.req.param('id'));
    const schedule = await db.asUser(c.get('user'), (tx) => visibleSchedule(tx, id));
    if (!schedule) throw notFound();
    return jsonOkText(c, schedule.json);
  });

  r.patch(`/${ID}`, async (c) => {
    const id = parseScheduleId(c.req.param('id'));
    const input = parseInput(UpdateBody, await body(c, true));
    const schedule = await mapErrors(() => db.asUser(c.get('user'), (tx) => updateSchedule(tx, id, input)));
    return jsonOkText(c, schedule.json);
  });

  r.delete(`/${ID}`, async (c) => {
    const id = parseScheduleId(c.req.param('id'));
    const schedule = await mapErrors(() => db.asUser(c.get('user'), (tx) => deleteSchedule(tx, id)));
    return jsonOkText(c, schedule.json);
  });

  r.post(`/${ID}/run`, async (c) => {
    const id = parseScheduleId(c.req.param('id'));
    parseInput(z.strictObject({}), (await body(c, false)) ?? {});
    const job = await mapErrors(() => db.asUser(c.get('user'), (tx) => runScheduleNow(tx, id)));
    return jsonOkText(c, job.json, 201);
  });

  const methodNotAllowed = (allow: string) => (): never => {
    throw new ApiError('METHOD_NOT_ALLOWED', `use ${allow}`, { Allow: allow });
  };
  r.all('/', methodNotAllowed('GET, POST'));
  r.all(`/${ID}`, methodNotAllowed('GET, PATCH, DELETE'));
  r.all(`/${ID}/run`, methodNotAllowed('POST'));
  return r;
}
