/**
 * Hardening (issue 16, item 8): members read their jobs without the queue's internals. lease_id (the
 * settle fence) is not granted to authenticated; the member paths of retry and cancel return it as null.
 * worker_id stays readable. The ready order and leases live in the private schema since 0.2.0
 * (supaqueue.job_ready, job_leases), which members cannot read at all (tests/rls.private.test.ts).
 */
import { beforeAll, expect, test } from 'vitest';
import { asUser, enqueueMany, makeWorld, sqlState, useTestDatabase } from './helpers/db.ts';
import { claim } from './engine.helpers.ts';

const db = useTestDatabase();
let tenant: string;
let member: string;
let jobId: string;
beforeAll(async () => {
  ({ tenant, member } = await makeWorld(db.sql, { member: 'member' }));
  [jobId] = await enqueueMany(db.sql, tenant, 1);
});

test.each(['lease_id'])('the attack: a member cannot read job_queue.%s (42501)', async (column) => {
  expect(await sqlState(asUser(db.sql, member, (tx) => tx.unsafe(`select ${column} from public.job_queue where id = $1`, [jobId])))).toBe('42501');
});

test('select * is refused to members (name the columns)', async () => {
  expect(await sqlState(asUser(db.sql, member, (tx) => tx`select * from public.job_queue`))).toBe('42501');
});

test('members read every column the API shows, and worker_id', async () => {
  const [row] = await asUser(db.sql, member, (tx) => tx`
    select id, tenant_id, type, status, payload, result, progress, priority, attempts, max_attempts, last_error, errors,
           scheduled_at, started_at, completed_at, created_at, updated_at, cancel_requested_at, idempotency_key,
           trace_id, actor_id, request_id, worker_id, backoff_base_ms, backoff_max_ms
    from public.job_queue where id = ${jobId}`);
  expect(row).toMatchObject({ id: jobId, tenant_id: tenant, status: 'pending' });
});

test('a member cancelling a running job does not get its lease back in the returned row', async () => {
  const [job] = await claim(db.sql, 'w', 1);
  const [row] = await asUser(db.sql, member, (tx) => tx`select id, lease_id, worker_id from public.cancel_job(${job.id}::uuid)`);
  expect(row).toEqual({ id: job.id, lease_id: null, worker_id: 'w' });
});
