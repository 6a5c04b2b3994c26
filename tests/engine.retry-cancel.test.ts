/**
 * retry_job and cancel_job: the same state machine for the service role and for a tenant member
 * (through RLS-checked paths), and the same QJ003 for another tenant's job as for a nonexistent one.
 */
import { randomUUID } from 'node:crypto';
import type { TransactionSql } from 'postgres';
import { beforeAll, beforeEach, describe, expect, test } from 'vitest';
import {
  addMember, asService, asUser, enqueueMany, makeSuperAdmin, makeTenant, makeUser, makeWorld, sqlState, useTestDatabase,
} from './helpers/db.ts';
import { clearPendingJobs, claim, closeAll, complete, connections, fail, heartbeat, jobRow, waitFor } from './engine.helpers.ts';

const db = useTestDatabase();
let tenant: string;
let otherTenant: string;
let member: string;
beforeAll(async () => {
  ({ tenant, member } = await makeWorld(db.sql, { member: 'member' }));
  otherTenant = await makeTenant(db.sql);
});
beforeEach(async () => { await clearPendingJobs(db.sql); });

type Caller = <T>(fn: (tx: TransactionSql) => Promise<T>) => Promise<T>;
const callers: [string, () => Caller][] = [
  ['service_role', () => (fn) => asService(db.sql, fn)],
  ['a tenant member', () => (fn) => asUser(db.sql, member, fn)],
];

const pendingJob = async (t = tenant, spec = {}) => (await enqueueMany(db.sql, t, 1, spec))[0];
async function processingJob(spec = {}) {
  const id = await pendingJob(tenant, spec);
  const [job] = await claim(db.sql, 'w', 1);
  expect(job.id).toBe(id);
  return job;
}
async function failedJob(spec = { max_attempts: 1 }) {
  const job = await processingJob(spec);
  expect(await fail(db.sql, job, 'boom')).toBe('failed');
  return job.id;
}

describe.each(callers)('as %s', (_name, as) => {
  const retry = (id: string, extra = 0) => as()(async (tx) => (await tx`select * from public.retry_job(${id}::uuid, ${extra}::int)`)[0]);
  const cancel = (id: string) => as()(async (tx) => (await tx`select * from public.cancel_job(${id}::uuid)`)[0]);

  test('retry of a failed job with attempts left puts it back to pending, claimable now', async () => {
    const job = await processingJob({ max_attempts: 3 });
    await fail(db.sql, job, 'bad', false);
    expect(await retry(job.id)).toMatchObject({ id: job.id, status: 'pending', attempts: 1, max_attempts: 3, completed_at: null });
    expect((await claim(db.sql, 'w', 1)).map((j) => j.id)).toEqual([job.id]);
  });

  test('retry of a job that used all its attempts fails with QJ005', async () => {
    const id = await failedJob();
    expect(await sqlState(retry(id))).toBe('QJ005');
    expect((await jobRow(db.sql, id)).status).toBe('failed');
  });

  test('retry with extra_attempts grants more attempts and puts it back to pending', async () => {
    const id = await failedJob();
    expect(await retry(id, 2)).toMatchObject({ status: 'pending', attempts: 1, max_attempts: 3 });
  });

  test('retry of a cancelled job puts it back to pending', async () => {
    const id = await pendingJob();
    await cancel(id);
    expect(await retry(id)).toMatchObject({ id, status: 'pending', completed_at: null });
  });

  test.each(['pending', 'processing', 'completed'])('retry of a %s job fails with QJ004', async (state) => {
    const id = state === 'pending' ? await pendingJob() : (await processingJob()).id;
    if (state === 'completed') await complete(db.sql, [{ id, lease_id: (await jobRow(db.sql, id)).lease_id }]);
    expect(await sqlState(retry(id))).toBe('QJ004');
    expect((await jobRow(db.sql, id)).status).toBe(state);
  });

  test('cancel of a pending job cancels it at once', async () => {
    const id = await pendingJob();
    expect(await cancel(id)).toMatchObject({ id, status: 'cancelled' });
    expect(await claim(db.sql, 'w', 10)).toEqual([]);
  });

  test('cancel of a processing job requests cancellation; the heartbeat reports it and fail ends it cancelled', async () => {
    const job = await processingJob();
    const row = await cancel(job.id);
    expect(row).toMatchObject({ status: 'processing' });
    expect(row.cancel_requested_at).toBeInstanceOf(Date);
    expect(await heartbeat(db.sql, [job])).toEqual([expect.objectContaining({ lease_valid: true, cancel_requested: true })]);
    expect(await fail(db.sql, job, 'cancelled by user')).toBe('cancelled');
    expect(await jobRow(db.sql, job.id)).toMatchObject({ status: 'cancelled', cancel_requested_at: null, lease_id: null });
  });

  test.each(['completed', 'failed', 'cancelled'])('cancel of a %s job fails with QJ004', async (state) => {
    let id: string;
    if (state === 'failed') id = await failedJob();
    else if (state === 'cancelled') { id = await pendingJob(); await cancel(id); }
    else { const job = await processingJob(); await complete(db.sql, [job]); id = job.id; }
    expect(await sqlState(cancel(id))).toBe('QJ004');
    expect((await jobRow(db.sql, id)).status).toBe(state);
  });

  test('a nonexistent job id fails with QJ003', async () => {
    expect(await sqlState(retry(randomUUID()))).toBe('QJ003');
    expect(await sqlState(cancel(randomUUID()))).toBe('QJ003');
  });
});

describe('tenant isolation', () => {
  test('a member acting on another tenant\'s job gets QJ003, exactly as for a nonexistent id', async () => {
    const foreign = await pendingJob(otherTenant);
    const codes = await Promise.all([foreign, randomUUID()].map((id) => sqlState(asUser(db.sql, member, (tx) => tx`select * from public.cancel_job(${id}::uuid)`))));
    expect(codes).toEqual(['QJ003', 'QJ003']);
    expect((await jobRow(db.sql, foreign)).status).toBe('pending');
  });

  test('a member retrying another tenant\'s failed job gets QJ003 and the job stays failed', async () => {
    const [id] = await enqueueMany(db.sql, otherTenant, 1, { max_attempts: 1 });
    const [job] = await claim(db.sql, 'w', 1);
    await fail(db.sql, job, 'x');
    expect(await sqlState(asUser(db.sql, member, (tx) => tx`select * from public.retry_job(${id}::uuid, 5)`))).toBe('QJ003');
    expect((await jobRow(db.sql, id)).status).toBe('failed');
  });

  test('a super admin may cancel any tenant\'s job', async () => {
    const admin = await makeUser(db.sql);
    await makeSuperAdmin(db.sql, admin);
    const id = await pendingJob(otherTenant);
    const [row] = await asUser(db.sql, admin, (tx) => tx`select * from public.cancel_job(${id}::uuid)`);
    expect(row.status).toBe('cancelled');
  });
});

describe('cancel racing the worker', () => {
  test('a cancel committed while fail_jobs waits for the row ends the job cancelled, not retried', async () => {
    const job = await processingJob({ max_attempts: 5 });
    const [canceller, worker] = connections(db.url, 2);
    try {
      let commit!: () => void;
      const committed = new Promise<void>((r) => { commit = r; });
      const cancelling = asService(canceller, async (tx) => {
        await tx`select * from public.cancel_job(${job.id}::uuid)`;
        await committed;
      });
      await waitFor(async () => (await db.sql`select 1 from public.job_queue where id = ${job.id} for update skip locked`).length === 0);
      const failing = fail(worker, job, 'handler crashed');
      await waitFor(async () => (await db.sql`select 1 from pg_stat_activity
                                             where datname = current_database() and wait_event_type = 'Lock'`).length > 0);
      commit();
      await cancelling;
      expect(await failing).toBe('cancelled');
    } finally {
      await closeAll([canceller, worker]);
    }
    expect((await jobRow(db.sql, job.id)).status).toBe('cancelled');
  });
});

describe('release of a job whose cancellation was requested', () => {
  test('ends it cancelled instead of pending', async () => {
    const job = await processingJob();
    await asService(db.sql, (tx) => tx`select * from public.cancel_job(${job.id}::uuid)`);
    await asService(db.sql, (tx) => tx`select public.release_jobs(${[job.id]}::uuid[], ${[job.lease_id]}::uuid[])`);
    expect((await jobRow(db.sql, job.id)).status).toBe('cancelled');
  });
});
