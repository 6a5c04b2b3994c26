/** fail_jobs: exponential backoff with jitter and a cap, permanent failures, exhausted attempts, history. */
import { beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { asService, enqueueMany, makeTenant, useTestDatabase } from './helpers/db.ts';
import { clearPendingJobs, claim, fail, jobRow, type ClaimedJob } from './engine.helpers.ts';

const db = useTestDatabase();
let tenant: string;
beforeAll(async () => { tenant = await makeTenant(db.sql); });
beforeEach(async () => { await clearPendingJobs(db.sql); });

/** Fails the job and returns its new status and the backoff it got, in ms, by the database's clock. */
async function failAndMeasure(job: ClaimedJob, retryable = true): Promise<{ status: string; delayMs: number }> {
  return asService(db.sql, async (tx) => {
    const [f] = await tx`select status, scheduled_at from public.fail_jobs(${[job.id]}::uuid[], ${[job.lease_id]}::uuid[], ${['boom']}::text[], array[${retryable}::boolean])`;
    // now() is this transaction's start: the time fail_jobs measured the backoff from.
    const [{ ms }] = await tx`select extract(epoch from ${f.scheduled_at}::timestamptz - now())::float8 * 1000 as ms`;
    return { status: f.status as string, delayMs: ms as number };
  });
}

/** Makes a backed-off job due now (stands in for waiting out the backoff) and claims it again. */
async function reclaimNow(id: string): Promise<ClaimedJob> {
  await db.sql`update public.job_queue set scheduled_at = now() where id = ${id} and status = 'pending'`;
  await db.sql`update supaqueue.job_delayed set due_at = now() where job_id = ${id}`;
  const [job] = await claim(db.sql, 'w', 1);
  expect(job.id).toBe(id);
  return job;
}

describe('backoff', () => {
  test('backoff_delay is min(cap, base·2^(n−1)) with equal jitter: always within [d/2, d], and spread over it', async () => {
    const rows = await db.sql`
      select n, (1000 * least(10000, 1000 * 2 ^ (n - 1)))::float8 as d_ms,
             min(extract(epoch from supaqueue.backoff_delay(n, 1000, 10000)) * 1000)::float8 as lo,
             max(extract(epoch from supaqueue.backoff_delay(n, 1000, 10000)) * 1000)::float8 as hi
      from generate_series(1, 6) n, generate_series(1, 300) s group by n order by n`;
    for (const r of rows) {
      const d = r.d_ms / 1000;
      expect(r.lo).toBeGreaterThanOrEqual(d / 2 - 0.001);
      expect(r.hi).toBeLessThanOrEqual(d + 0.001);
      expect(r.lo).toBeLessThan(d * 0.6);
      expect(r.hi).toBeGreaterThan(d * 0.9);
    }
    expect(rows.map((r) => r.d_ms / 1000)).toEqual([1000, 2000, 4000, 8000, 10000, 10000]);
  });

  test('the default schedule backs the first retry off by 0.5-1 s', async () => {
    await enqueueMany(db.sql, tenant, 1);
    const [job] = await claim(db.sql, 'w', 1);
    const { status, delayMs } = await failAndMeasure(job);
    expect(status).toBe('pending');
    expect(delayMs).toBeGreaterThanOrEqual(500);
    expect(delayMs).toBeLessThanOrEqual(1000);
  });

  test('per-job backoff_base_ms and backoff_max_ms set each retry\'s delay window', async () => {
    const [id] = await enqueueMany(db.sql, tenant, 1, { backoff_base_ms: 2000, backoff_max_ms: 5000, max_attempts: 5 });
    const windows = [[1000, 2000], [2000, 4000], [2500, 5000], [2500, 5000]];
    let [job] = await claim(db.sql, 'w', 1);
    for (const [lo, hi] of windows) {
      const { status, delayMs } = await failAndMeasure(job);
      expect(status).toBe('pending');
      expect(delayMs).toBeGreaterThanOrEqual(lo);
      expect(delayMs).toBeLessThanOrEqual(hi);
      job = await reclaimNow(id);
    }
  });

  test('a job backing off is not claimable before its retry time', async () => {
    const [id] = await enqueueMany(db.sql, tenant, 1, { backoff_base_ms: 120_000 });
    const [job] = await claim(db.sql, 'w', 1);
    await fail(db.sql, job);
    expect(await claim(db.sql, 'w', 10)).toEqual([]);
    expect((await jobRow(db.sql, id)).status).toBe('pending');
  });
});

describe('terminal failure', () => {
  test('a permanent (non-retryable) failure goes straight to failed with attempts left', async () => {
    const [id] = await enqueueMany(db.sql, tenant, 1, { max_attempts: 5 });
    const [job] = await claim(db.sql, 'w', 1);
    expect(await fail(db.sql, job, 'bad input', false)).toBe('failed');
    const row = await jobRow(db.sql, id);
    expect(row).toMatchObject({ status: 'failed', attempts: 1, last_error: 'bad input', lease_id: null });
    expect(row.completed_at).toBeInstanceOf(Date);
    expect(row.errors).toEqual([expect.objectContaining({ attempt: 1, error: 'bad input', worker_id: 'w', retryable: false })]);
  });

  test('exhausted attempts end failed with exactly max_attempts entries in the error history', async () => {
    const [id] = await enqueueMany(db.sql, tenant, 1, { max_attempts: 3, backoff_base_ms: 0, backoff_max_ms: 0 });
    let [job] = await claim(db.sql, 'w', 1);
    const statuses: (string | null)[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      statuses.push(await fail(db.sql, job, `error ${attempt}`));
      if (attempt < 3) job = await reclaimNow(id);
    }
    expect(statuses).toEqual(['pending', 'pending', 'failed']);
    const row = await jobRow(db.sql, id);
    expect(row).toMatchObject({ status: 'failed', attempts: 3, last_error: 'error 3' });
    expect(row.errors.map((e: { attempt: number; error: string }) => [e.attempt, e.error]))
      .toEqual([[1, 'error 1'], [2, 'error 2'], [3, 'error 3']]);
  });

  test('the error history keeps only the newest 10 attempts', async () => {
    const [id] = await enqueueMany(db.sql, tenant, 1, { max_attempts: 12, backoff_base_ms: 0, backoff_max_ms: 0 });
    let [job] = await claim(db.sql, 'w', 1);
    for (let attempt = 1; attempt <= 12; attempt++) {
      await fail(db.sql, job, `error ${attempt}`);
      if (attempt < 12) job = await reclaimNow(id);
    }
    const row = await jobRow(db.sql, id);
    expect(row.status).toBe('failed');
    expect(row.errors.map((e: { attempt: number }) => e.attempt)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });
});
