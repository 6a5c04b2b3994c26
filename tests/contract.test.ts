/**
 * One home per rule (issue 15): the job type format, the max_attempts, priority and extra_attempts
 * bounds and the statuses are defined by SQL (supaqueue.job_type_pattern(), max_attempts_limit(), the
 * job_status enum, the engine's checks) and mirrored once in TS (supabase/functions/_supaqueue/contract.ts),
 * which the edge schemas, the worker, the client and supaqueue/server import. These tests fail as soon as
 * the two sides disagree, on every path that enforces a bound (table, enqueue, schedules, retry).
 */
import type { TransactionSql } from 'postgres';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  EXTRA_ATTEMPTS, JOB_STATUSES, JOB_TYPE_PATTERN, JOB_TYPE_RE, LEASE_SECONDS, MAX_ATTEMPTS, PRIORITY,
} from '../supabase/functions/_supaqueue/contract.ts';
import { asService, enqueueMany, makeTenant, sqlState, useTestDatabase } from './helpers/db.ts';

const db = useTestDatabase();
let tenant: string;
beforeAll(async () => { tenant = await makeTenant(db.sql); });

const enqueue = (job: Record<string, unknown>) =>
  sqlState(asService(db.sql, (tx) => tx`select job_id from public.enqueue_jobs(${tx.json([{ tenant_id: tenant, type: 'contract.job', ...job }] as never)})`));
const createSchedule = (spec: Record<string, unknown>) =>
  sqlState(asService(db.sql, (tx: TransactionSql) => tx`select id from public.create_job_schedule(${tx.json({
    tenant_id: tenant, name: `s-${Math.random()}`, cron: '0 * * * *', job_type: 'contract.job', ...spec,
  } as never)})`));

describe('SQL and TS hold the same values', () => {
  test('the job type format', async () => {
    const [r] = await db.sql`select supaqueue.job_type_pattern() as p`;
    expect(r.p).toBe(JOB_TYPE_PATTERN);
  });

  test('the max_attempts limit', async () => {
    const [r] = await db.sql`select supaqueue.max_attempts_limit() as n`;
    expect(r.n).toBe(MAX_ATTEMPTS.max);
  });

  test('the default lease, which claim_jobs and heartbeat_jobs take when given none', async () => {
    const [r] = await db.sql`select supaqueue.default_lease_seconds() as d,
      array(select pg_get_function_arguments(p.oid) ~ 'lease_seconds double precision DEFAULT supaqueue\\.default_lease_seconds\\(\\)'
              from pg_proc p where p.oid in ('public.claim_jobs'::regproc, 'public.heartbeat_jobs'::regproc)) as uses`;
    expect(r).toEqual({ d: LEASE_SECONDS.default, uses: [true, true] });
  });

  test('the job statuses, in the enum\'s order', async () => {
    const [r] = await db.sql`select enum_range(null::public.job_status)::text[] as s`;
    expect(r.s).toEqual([...JOB_STATUSES]);
  });

  test('the tables\' checks read the rule functions (no copy of the rule in a constraint)', async () => {
    const rows = await db.sql<{ name: string; def: string }[]>`
      select conname as name, pg_get_constraintdef(oid) as def from pg_constraint
       where conname in ('job_type_format', 'max_attempts_in_range', 'job_schedule_job_type_format', 'job_schedule_max_attempts_in_range')
       order by conname`;
    expect(rows.map((r) => [r.name, /job_type_pattern\(\)|max_attempts_limit\(\)/.test(r.def)])).toEqual([
      ['job_schedule_job_type_format', true], ['job_schedule_max_attempts_in_range', true],
      ['job_type_format', true], ['max_attempts_in_range', true],
    ]);
  });
});

describe('every path enforces the same bounds', () => {
  test('the TS pattern accepts and refuses what SQL does', async () => {
    const samples = ['a', 'email.send', 'a:b-c_d.e', 'x'.repeat(128), 'x'.repeat(129), 'A', '1a', 'a b', ''];
    const rows = await db.sql<{ ok: boolean }[]>`select s ~ supaqueue.job_type_pattern() as ok from unnest(${samples}::text[]) s`;
    expect(rows.map((r) => r.ok)).toEqual(samples.map((s) => JOB_TYPE_RE.test(s)));
  });

  test('enqueue: max_attempts at the limit is accepted, one more refused (QJ001)', async () => {
    expect(await enqueue({ max_attempts: MAX_ATTEMPTS.max })).toBeUndefined();
    expect(await enqueue({ max_attempts: MAX_ATTEMPTS.max + 1 })).toBe('QJ001');
    expect(await enqueue({ max_attempts: MAX_ATTEMPTS.min - 1 })).toBe('QJ001');
  });

  test('enqueue: priority at the bounds is accepted, one past refused (QJ001)', async () => {
    expect(await enqueue({ priority: PRIORITY.max })).toBeUndefined();
    expect(await enqueue({ priority: PRIORITY.min })).toBeUndefined();
    expect(await enqueue({ priority: PRIORITY.max + 1 })).toBe('QJ001');
    expect(await enqueue({ priority: PRIORITY.min - 1 })).toBe('QJ001');
  });

  test('schedules: max_attempts at the limit is accepted, one more refused (QJ001)', async () => {
    expect(await createSchedule({ max_attempts: MAX_ATTEMPTS.max })).toBeUndefined();
    expect(await createSchedule({ max_attempts: MAX_ATTEMPTS.max + 1 })).toBe('QJ001');
  });

  test('leases: the bounds are accepted, one step past refused (QJ001)', async () => {
    const beat = (seconds: number) => sqlState(asService(db.sql, (tx) => tx`select * from public.heartbeat_jobs('{}'::uuid[], '{}'::uuid[], ${seconds}::float8)`));
    expect(await beat(LEASE_SECONDS.min)).toBeUndefined();
    expect(await beat(LEASE_SECONDS.max)).toBeUndefined();
    expect(await beat(LEASE_SECONDS.min / 2)).toBe('QJ001');
    expect(await beat(LEASE_SECONDS.max + 1)).toBe('QJ001');
  });

  test('retry: extra_attempts past its bound is refused (QJ001), and max_attempts may not pass the limit', async () => {
    const [id] = await enqueueMany(db.sql, tenant, 1, { max_attempts: MAX_ATTEMPTS.max - 1 });
    await asService(db.sql, (tx) => tx`select id from public.cancel_job(${id}::uuid)`);
    const retry = (extra: number) => sqlState(asService(db.sql, (tx) => tx`select id from public.retry_job(${id}::uuid, ${extra}::int)`));
    expect(await retry(EXTRA_ATTEMPTS.max + 1)).toBe('QJ001');
    expect(await retry(2)).toBe('QJ001'); // MAX_ATTEMPTS.max + 1 in all
    expect(await retry(1)).toBeUndefined();
  });
});
