/**
 * The scheduler's database path, run with the very module the jobs-scheduler function runs
 * (supabase/functions/_supaqueue/schedules.ts) against a real database: exactly-once per slot under
 * overlapping passes, the "run once, not a burst" catch-up, and isolation of a failing schedule.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import { fireDueSchedules, runScheduler, DEFAULT_LIMITS } from '../supabase/functions/_supaqueue/schedules.ts';
import { asService, createTestDatabase, makeTenant, type Sql, type TestDatabase } from './helpers/db.ts';

let db: TestDatabase;
let tenant: string;
const extra: Sql[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  tenant = await makeTenant(db.sql);
});
afterAll(async () => {
  await Promise.all(extra.map((c) => c.end({ timeout: 5 })));
  await db?.drop();
});
beforeEach(async () => {
  await db.sql`delete from public.job_schedules`;
  await db.sql`delete from public.job_queue`;
});

function client(): Sql {
  const c = postgres(db.url, { max: 1, onnotice: () => {} });
  extra.push(c);
  return c;
}

/** Inserts a schedule, by default every minute and due at the current minute's slot. */
async function schedule(opts: { cron?: string; tz?: string; nextRunAt?: string; name?: string; tenantId?: string } = {}): Promise<string> {
  const [row] = await db.sql`
    insert into public.job_schedules (tenant_id, name, cron, time_zone, job_type, next_run_at)
    values (${opts.tenantId ?? tenant}, ${opts.name ?? `s-${Math.random().toString(36).slice(2)}`}, ${opts.cron ?? '* * * * *'},
            ${opts.tz ?? 'UTC'}, 'report.tick', ${db.sql.unsafe(opts.nextRunAt ?? "date_trunc('minute', now())")})
    returning id`;
  return row.id;
}

async function jobsPerSchedule(): Promise<Map<string, number>> {
  const rows = await db.sql`
    select substr(actor_id, 10)::uuid as id, count(*)::int as n from public.job_queue
    where actor_id like 'schedule:%' group by 1`;
  return new Map(rows.map((r) => [r.id as string, r.n as number]));
}

test('two overlapping passes over the same due schedules enqueue each slot exactly once', async () => {
  const ids = await Promise.all(Array.from({ length: 60 }, () => schedule()));
  const [a, b] = [client(), client()];
  const limits = { maxSchedules: 100, batchSize: 5 };
  const [ra, rb] = await Promise.all([fireDueSchedules(a, limits), fireDueSchedules(b, limits)]);

  const perSchedule = await jobsPerSchedule();
  expect([...perSchedule.keys()].sort()).toEqual([...ids].sort());
  expect([...perSchedule.values()].every((n) => n === 1)).toBe(true);
  expect(ra.fired + rb.fired).toBe(60);
});

test('overlapping passes over quota-limited tenants (per-tenant enqueue locks) both complete', async () => {
  const tenants = await Promise.all([1, 2, 3].map(() => makeTenant(db.sql, { maxQueuedJobs: 1000 })));
  await Promise.all(Array.from({ length: 45 }, (_, i) => schedule({ tenantId: tenants[i % 3] })));
  const limits = { maxSchedules: 100, batchSize: 5 };
  const results = await Promise.all([fireDueSchedules(client(), limits), fireDueSchedules(client(), limits)]);

  expect(results[0].fired + results[1].fired).toBe(45);
});

test('a retried pass right after a successful one enqueues nothing more', async () => {
  await Promise.all(Array.from({ length: 5 }, () => schedule()));
  const first = await fireDueSchedules(db.sql, DEFAULT_LIMITS);
  const again = await fireDueSchedules(db.sql, DEFAULT_LIMITS);
  expect(first.fired).toBe(5);
  expect(again).toMatchObject({ due: 0, fired: 0 });
});

test('two concurrent fire_schedules calls for the same slot (without the batch lock) enqueue it once', async () => {
  const id = await schedule({ cron: '*/5 * * * *', nextRunAt: "date_trunc('hour', now())" });
  const [{ slot, next }] = await db.sql`
    select date_trunc('hour', now()) as slot, date_trunc('hour', now()) + interval '1 hour' as next`;
  const fire = [{ id, slot: (slot as Date).toISOString(), next_run_at: (next as Date).toISOString() }];
  const results = await Promise.all([client(), client()].map((c) =>
    asService(c, async (tx) => (await tx`select supaqueue.fire_schedules(${tx.json(fire as never)}) as r`)[0].r)));

  expect(results.map((r) => r.fired).sort()).toEqual([0, 1]);
  expect((await jobsPerSchedule()).get(id)).toBe(1);
});

test('after downtime of many periods, only the latest missed slot is enqueued and next_run_at is in the future', async () => {
  const id = await schedule({ cron: '*/5 * * * *', nextRunAt: "date_trunc('hour', now()) - interval '6 hours'" });
  await fireDueSchedules(db.sql, DEFAULT_LIMITS);

  const [{ now }] = await db.sql`select now() as now`;
  const latest = new Date(Math.floor((now as Date).getTime() / 300_000) * 300_000);
  const jobs = await db.sql`select idempotency_key from public.job_queue where actor_id = ${`schedule:${id}`}`;
  expect(jobs.map((j) => j.idempotency_key)).toEqual([`schedule:${id}:${latest.toISOString().replace('.000Z', 'Z')}`]);
  const [s] = await db.sql`select last_run_at, next_run_at from public.job_schedules where id = ${id}`;
  expect(s.last_run_at.getTime()).toBe(latest.getTime());
  expect(s.next_run_at.getTime()).toBe(latest.getTime() + 300_000);
});

test('a schedule created without next_run_at ("from now on") does not fire a slot from before its creation', async () => {
  const [row] = await asService(db.sql, (tx) => tx`select * from public.create_job_schedule(${tx.json({
    tenant_id: tenant, name: 'yearly', cron: '0 0 1 1 *', job_type: 'report.year' } as never)})`);
  const counts = await fireDueSchedules(db.sql, DEFAULT_LIMITS);

  expect(counts).toMatchObject({ due: 1, fired: 0, moved: 1 });
  const [s] = await db.sql`select next_run_at, last_run_at from public.job_schedules where id = ${row.id}`;
  expect(s.last_run_at).toBeNull();
  expect(s.next_run_at.toISOString()).toMatch(/-01-01T00:00:00\.000Z$/);
});

test("a tenant at its queue quota skips its slot with last_error, and other tenants' schedules still fire", async () => {
  const full = await makeTenant(db.sql, { maxQueuedJobs: 1 });
  await asService(db.sql, (tx) => tx`select public.enqueue_job(${full}, 'filler')`);
  const blocked = await schedule({ tenantId: full });
  const fine = await schedule();
  const counts = await fireDueSchedules(db.sql, DEFAULT_LIMITS);

  expect(counts).toMatchObject({ fired: 1, failed: 1 });
  expect((await jobsPerSchedule()).get(fine)).toBe(1);
  const [s] = await db.sql`select last_error, next_run_at > now() as moved from public.job_schedules where id = ${blocked}`;
  expect(s.last_error).toContain('QJ006');
  expect(s.moved).toBe(true);
});

test('a schedule whose cron cannot be evaluated is disabled with last_error', async () => {
  const id = await schedule({ cron: '61 * * * *' });
  const counts = await fireDueSchedules(db.sql, DEFAULT_LIMITS);

  expect(counts.disabled).toBe(1);
  const [s] = await db.sql`select enabled, next_run_at, last_error from public.job_schedules where id = ${id}`;
  expect(s).toMatchObject({ enabled: false, next_run_at: null });
  expect(s.last_error).toMatch(/cron/);
});

test('a pass handles at most maxSchedules and reports that more are due', async () => {
  await Promise.all(Array.from({ length: 7 }, () => schedule()));
  const counts = await fireDueSchedules(db.sql, { maxSchedules: 4, batchSize: 3 });
  expect(counts).toMatchObject({ due: 4, fired: 4, batches: 2, more: true });
});

test('the full pass also reclaims expired leases and purges finished jobs past retention', async () => {
  await asService(db.sql, (tx) => tx`select public.enqueue_jobs(${tx.json([
    { tenant_id: tenant, type: 'old.done' }, { tenant_id: tenant, type: 'stuck' }] as never)})`);
  await asService(db.sql, (tx) => tx`select public.claim_jobs('w', array['old.done', 'stuck'], 2, 60)`);
  await asService(db.sql, async (tx) => tx`select public.complete_jobs(array_agg(id), array_agg(lease_id)) from public.job_queue where type = 'old.done'`);
  await db.sql`update public.job_queue set completed_at = now() - interval '8 days' where type = 'old.done'`;
  await db.sql`update supaqueue.workers set expires_at = now() - interval '1 minute' where id = 'w'`;
  const summary = await runScheduler(db.sql, DEFAULT_LIMITS);

  expect(summary).toMatchObject({ reclaimed: 1, purged: 1, retention: '7 days', errors: [] });
});
