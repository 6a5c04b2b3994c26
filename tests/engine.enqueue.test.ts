/** enqueue_job / enqueue_jobs: the row they create, idempotency (also under a race) and transactions. */
import { beforeAll, describe, expect, test } from 'vitest';
import { addMember, asRole, asService, asUser, makeTenant, makeUser, useTestDatabase } from './helpers/db.ts';
import { closeAll, connections, jobRow } from './engine.helpers.ts';

const db = useTestDatabase();
let tenant: string;
beforeAll(async () => { tenant = await makeTenant(db.sql); });

const enqueueJobs = (jobs: object[]) =>
  asService(db.sql, (tx) => tx`select job_id, created from public.enqueue_jobs(${tx.json(jobs as never)})`);
const jobsWithKey = async (t: string, key: string) =>
  (await db.sql`select id from public.job_queue where tenant_id = ${t} and idempotency_key = ${key}`).map((r) => r.id);

describe('the enqueued job', () => {
  test('enqueue_job creates a pending job with the defaults, ready to claim', async () => {
    const [{ job_id, created }] = await asService(db.sql, (tx) => tx`
      select * from public.enqueue_job(${tenant}::uuid, 'email.send', ${tx.json({ to: 'a@b.c' })}, trace_id => 'trace-1')`);
    expect(created).toBe(true);
    const row = await jobRow(db.sql, job_id);
    expect(row).toMatchObject({
      tenant_id: tenant, type: 'email.send', status: 'pending', payload: { to: 'a@b.c' }, priority: 0, attempts: 0,
      max_attempts: 3, backoff_base_ms: 1000, backoff_max_ms: 3600000, trace_id: 'trace-1', errors: [],
    });
    expect(await db.sql`select count(*)::int as n from supaqueue.job_ready where job_id = ${job_id}`).toEqual([{ n: 1 }]);
  });

  test('enqueue_jobs returns one (job_id, created) per spec, in input order', async () => {
    const rows = await enqueueJobs([0, 1, 2, 3, 4].map((i) => ({ tenant_id: tenant, type: 'order.test', payload: { i } })));
    expect(rows.map((r) => r.created)).toEqual([true, true, true, true, true]);
    const payloads = await Promise.all(rows.map(async (r) => (await jobRow(db.sql, r.job_id)).payload.i));
    expect(payloads).toEqual([0, 1, 2, 3, 4]);
  });

  test('a delayed job waits without a fair tag until due', async () => {
    const [{ job_id }] = await enqueueJobs([{ tenant_id: tenant, type: 'later.job', delay_ms: 60_000 }]);
    const row = await jobRow(db.sql, job_id);
    expect(await db.sql`select count(*)::int as n from supaqueue.job_ready where job_id = ${job_id}`).toEqual([{ n: 0 }]);
    expect(await db.sql`select due_at from supaqueue.job_delayed where job_id = ${job_id}`).toEqual([{ due_at: row.scheduled_at }]);
    const [{ secs }] = await db.sql`select extract(epoch from ${row.scheduled_at}::timestamptz - ${row.created_at}::timestamptz)::float8 as secs`;
    expect(secs).toBeCloseTo(60, 3);
  });

  test('a member enqueues into their own tenant', async () => {
    const user = await makeUser(db.sql);
    await addMember(db.sql, tenant, user);
    const [{ job_id }] = await asUser(db.sql, user, (tx) => tx`select * from public.enqueue_job(${tenant}::uuid, 'user.job', actor_id => ${user})`);
    expect(await jobRow(db.sql, job_id)).toMatchObject({ tenant_id: tenant, actor_id: user });
  });
});

describe('idempotency', () => {
  test('a repeated key returns the first job with created = false', async () => {
    const [first] = await enqueueJobs([{ tenant_id: tenant, type: 'idem.job', idempotency_key: 'k-seq' }]);
    const [again] = await enqueueJobs([{ tenant_id: tenant, type: 'idem.job', idempotency_key: 'k-seq', payload: { other: 1 } }]);
    expect(first.created).toBe(true);
    expect(again).toEqual({ job_id: first.job_id, created: false });
    expect((await jobRow(db.sql, first.job_id)).payload).toEqual({});
  });

  test('a key repeated within one call creates one job and returns it for both specs', async () => {
    const rows = await enqueueJobs([
      { tenant_id: tenant, type: 'idem.job', idempotency_key: 'k-dup' },
      { tenant_id: tenant, type: 'idem.job' },
      { tenant_id: tenant, type: 'idem.job', idempotency_key: 'k-dup' },
    ]);
    expect(rows.map((r) => r.created)).toEqual([true, true, false]);
    expect(rows[2].job_id).toBe(rows[0].job_id);
    expect(await jobsWithKey(tenant, 'k-dup')).toHaveLength(1);
  });

  test('the same key in two tenants makes two jobs', async () => {
    const other = await makeTenant(db.sql);
    const rows = await enqueueJobs([
      { tenant_id: tenant, type: 'idem.job', idempotency_key: 'k-shared' },
      { tenant_id: other, type: 'idem.job', idempotency_key: 'k-shared' },
    ]);
    expect(rows.map((r) => r.created)).toEqual([true, true]);
    expect(rows[0].job_id).not.toBe(rows[1].job_id);
  });

  test('16 concurrent enqueues with one key: one job, every call gets its id, exactly one created, no error', async () => {
    const clients = connections(db.url, 17);
    const [gate, ...racers] = clients;
    try {
      // Every racer waits on the gate inside its transaction, so all 16 inserts start together.
      await gate`select pg_advisory_lock(4242)`;
      const calls = racers.map((c) => asService(c, async (tx) => {
        await tx`select pg_advisory_xact_lock_shared(4242)`;
        const [row] = await tx`select * from public.enqueue_job(${tenant}::uuid, 'idem.race', idempotency_key => 'k-race')`;
        return row as { job_id: string; created: boolean };
      }));
      // Let every racer reach the gate before opening it.
      await waitForWaiters(gate, racers.length);
      await gate`select pg_advisory_unlock(4242)`;
      const results = await Promise.all(calls);
      const ids = await jobsWithKey(tenant, 'k-race');
      expect(ids).toHaveLength(1);
      expect(results.map((r) => r.job_id)).toEqual(racers.map(() => ids[0]));
      expect(results.filter((r) => r.created)).toHaveLength(1);
    } finally {
      await closeAll(clients);
    }
  });
});

async function waitForWaiters(sql: typeof db.sql, n: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const [{ waiting }] = await sql`select count(*)::int as waiting from pg_locks where locktype = 'advisory' and objid = 4242 and not granted`;
    if (waiting >= n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('racers did not reach the gate');
}

describe('transactions', () => {
  test('an enqueue in a transaction that rolls back leaves no job, and its key stays free', async () => {
    const id = await asRole(db.sql, 'service_role', { role: 'service_role' }, async (tx) => {
      const [row] = await tx`select * from public.enqueue_job(${tenant}::uuid, 'tx.job', idempotency_key => 'k-rolled')`;
      // Inside the transaction the job exists...
      expect(await tx`select id from public.job_queue where id = ${row.job_id}`).toHaveLength(1);
      return row.job_id as string;
    }, { rollback: true });
    // ...and after the rollback it does not.
    expect(await jobRow(db.sql, id)).toBeUndefined();
    const [again] = await enqueueJobs([{ tenant_id: tenant, type: 'tx.job', idempotency_key: 'k-rolled' }]);
    expect(again.created).toBe(true);
  });
});
