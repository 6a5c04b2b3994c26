/** Settling a claimed job: complete, release, heartbeat, progress, and the fencing of stale leases. */
import { randomUUID } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { asService, enqueueMany, makeTenant, sqlState, useTestDatabase } from './helpers/db.ts';
import { clearPendingJobs, claim, complete, fail, heartbeat, jobRow, leasesExpired, type ClaimedJob } from './engine.helpers.ts';

const db = useTestDatabase();
let tenant: string;
beforeAll(async () => { tenant = await makeTenant(db.sql); });
beforeEach(async () => { await clearPendingJobs(db.sql); });

async function claimOne(worker = 'w', lease = 30): Promise<ClaimedJob> {
  await enqueueMany(db.sql, tenant, 1);
  const [job] = await claim(db.sql, worker, 1, { lease });
  return job;
}

const progress = (job: { id: string; lease_id: string }, p: unknown) => asService(db.sql, async (tx) =>
  (await tx`select public.set_job_progress(${job.id}::uuid, ${job.lease_id}::uuid, ${tx.json(p as never)}) as ok`)[0].ok as boolean);

const release = (jobs: ClaimedJob[]) => asService(db.sql, async (tx) =>
  (await tx`select id from public.release_jobs(${jobs.map((j) => j.id)}::uuid[], ${jobs.map((j) => j.lease_id)}::uuid[])`).map((r) => r.id));

describe('complete', () => {
  test('stores the result and ends the lease', async () => {
    const job = await claimOne();
    const [{ ok }] = await asService(db.sql, (tx) => tx`
      select public.complete_job(${job.id}::uuid, ${job.lease_id}::uuid, ${tx.json({ sent: 3 })}) as ok`);
    expect(ok).toBe(true);
    expect(await jobRow(db.sql, job.id)).toMatchObject({
      status: 'completed', result: { sent: 3 }, lease_id: null,
    });
    expect((await jobRow(db.sql, job.id)).completed_at).toBeInstanceOf(Date);
  });

  test('a repeated complete changes nothing and reports false', async () => {
    const job = await claimOne();
    expect(await complete(db.sql, [job])).toEqual([job.id]);
    const before = await jobRow(db.sql, job.id);
    expect(await complete(db.sql, [job])).toEqual([]);
    expect(await jobRow(db.sql, job.id)).toEqual(before);
  });

  test('complete_jobs returns only the ids whose lease the caller still held', async () => {
    const a = await claimOne();
    const b = await claimOne();
    const forged = { id: b.id, lease_id: randomUUID() };
    expect(await complete(db.sql, [a, forged])).toEqual([a.id]);
    expect((await jobRow(db.sql, b.id)).status).toBe('processing');
  });

  test('complete_jobs stores results[i] for ids[i]', async () => {
    const a = await claimOne();
    const b = await claimOne();
    await asService(db.sql, (tx) => tx`
      select public.complete_jobs(${[a.id, b.id]}::uuid[], ${[a.lease_id, b.lease_id]}::uuid[],
                                  array[${tx.json({ n: 'a' })}, ${tx.json({ n: 'b' })}]::jsonb[])`);
    expect((await jobRow(db.sql, a.id)).result).toEqual({ n: 'a' });
    expect((await jobRow(db.sql, b.id)).result).toEqual({ n: 'b' });
  });
});

describe('release', () => {
  test('gives the job back as pending without using an attempt, claimable at once', async () => {
    const job = await claimOne();
    expect(await release([job])).toEqual([job.id]);
    expect(await jobRow(db.sql, job.id)).toMatchObject({ status: 'pending', attempts: 0, lease_id: null });
    const [again] = await claim(db.sql, 'other', 1);
    expect(again).toMatchObject({ id: job.id, attempts: 1, worker_id: 'other' });
  });
});

describe('heartbeat and progress', () => {
  test('a heartbeat extends the lease the caller holds', async () => {
    const job = await claimOne('w', 5);
    const [beat] = await heartbeat(db.sql, [job], 600);
    expect(beat).toMatchObject({ id: job.id, lease_valid: true, cancel_requested: false });
    const [{ secs }] = await db.sql`select extract(epoch from expires_at - now())::float8 as secs from supaqueue.workers where id = 'w'`;
    expect(secs).toBeGreaterThan(500);
  });

  test('progress is stored on the job', async () => {
    const job = await claimOne();
    expect(await progress(job, { percent: 40, message: 'halfway-ish' })).toBe(true);
    expect((await jobRow(db.sql, job.id)).progress).toEqual({ percent: 40, message: 'halfway-ish' });
  });

  test('progress outside 0..100 or not an object is rejected with QJ001', async () => {
    const job = await claimOne();
    expect(await sqlState(progress(job, { percent: 101 }))).toBe('QJ001');
    expect(await sqlState(progress(job, { percent: 'x' }))).toBe('QJ001');
    expect(await sqlState(progress(job, [1, 2]))).toBe('QJ001');
    expect(await sqlState(progress(job, { message: 'x'.repeat(5000) }))).toBe('QJ001');
  });
});

describe('a stale lease (expired, reclaimed and claimed by another worker)', () => {
  let stale: ClaimedJob;
  let current: ClaimedJob;
  let before: Record<string, unknown>;

  beforeAll(async () => {
    stale = await claimOne('old-holder', 0.2);
    await leasesExpired(db.sql, [stale.id]);
    // The next claim reclaims the expired lease and hands the job to another worker.
    [current] = await claim(db.sql, 'new-holder', 1);
    before = await jobRow(db.sql, stale.id);
  });

  test('the job went to the new holder with a new lease and a second attempt', () => {
    expect(current).toMatchObject({ id: stale.id, worker_id: 'new-holder', attempts: 2 });
    expect(current.lease_id).not.toBe(stale.lease_id);
  });

  test('complete by the old holder reports nothing completed and changes nothing', async () => {
    expect(await complete(db.sql, [stale])).toEqual([]);
    expect(await jobRow(db.sql, stale.id)).toEqual(before);
  });

  test('fail by the old holder returns null and changes nothing', async () => {
    expect(await fail(db.sql, stale, 'late failure')).toBeNull();
    expect(await jobRow(db.sql, stale.id)).toEqual(before);
  });

  test('heartbeat by the old holder reports lease_valid = false and does not extend the lease', async () => {
    expect(await heartbeat(db.sql, [stale], 3600)).toEqual([{ id: stale.id, lease_valid: false, cancel_requested: false, locked_until: null }]);
    expect(await jobRow(db.sql, stale.id)).toEqual(before);
  });

  test('progress by the old holder returns false and changes nothing', async () => {
    expect(await progress(stale, { percent: 99 })).toBe(false);
    expect(await jobRow(db.sql, stale.id)).toEqual(before);
  });

  test('release by the old holder releases nothing', async () => {
    expect(await release([stale])).toEqual([]);
    expect(await jobRow(db.sql, stale.id)).toEqual(before);
  });

  test('the new holder still completes it', async () => {
    expect(await complete(db.sql, [current])).toEqual([current.id]);
  });
});
