/**
 * supaqueue/server against a real database: the README's backend snippet, the job calls, the error
 * codes (the same table as the HTTP API), and enqueueing inside the caller's own transaction.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueue, SupaqueueError, type Queue } from '../server/index.ts';
import { ERROR_CODES } from '../supabase/functions/_supaqueue/errors.ts';
import { claim, fail } from './engine.helpers.ts';
import { asUser, createTestDatabase, makeTenant, makeUser, type TestDatabase } from './helpers/db.ts';

let db: TestDatabase;
let queue: Queue;
let tenantId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  queue = createQueue({ connection: db.url });
  tenantId = await makeTenant(db.sql);
  await db.sql`create table public.orders (id bigserial primary key, tenant_id uuid not null, total integer not null)`;
});
afterAll(async () => {
  await queue?.end();
  await db?.drop();
});

/** The SupaqueueError a call rejects with (fails the test if it resolves or throws something else). */
async function queueError(p: Promise<unknown>): Promise<SupaqueueError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(SupaqueueError);
  return e as SupaqueueError;
}

describe('a backend', () => {
  it('creates a tenant, adds a member and enqueues for them in a few lines (the README snippet)', async () => {
    process.env.SUPABASE_DB_URL = db.url;
    const userId = await makeUser(db.sql);

    // README "Backends" (keep in sync):
    const queue = createQueue({ connection: process.env.SUPABASE_DB_URL! });

    const tenant = await queue.createTenant({ name: 'Acme', limits: { max_queued_jobs: 10_000 } });
    await queue.addMember(tenant.id, userId, 'admin');
    const { id } = await queue.enqueue({ tenant_id: tenant.id, type: 'email.send', payload: { to: 'ada@acme.test' } });
    // end of snippet

    try {
      const seen = await asUser(db.sql, userId, (tx) => tx`select tenant_id, type, status from public.job_queue where id = ${id}`);
      expect(seen).toEqual([{ tenant_id: tenant.id, type: 'email.send', status: 'pending' }]);
      expect(tenant).toMatchObject({ name: 'Acme', max_queued_jobs: 10_000, max_concurrent_jobs: null });
    } finally {
      await queue.end();
    }
  });
});

describe('jobs', () => {
  it('enqueue returns the id, and a repeated idempotency key returns the same job with created = false', async () => {
    const spec = { tenant_id: tenantId, type: 'srv.idem', idempotency_key: randomUUID() };
    const first = await queue.enqueue(spec);
    expect(first.created).toBe(true);
    expect(await queue.enqueue(spec)).toEqual({ id: first.id, created: false });
  });

  it('enqueueMany answers in input order, and one bad spec enqueues nothing', async () => {
    const type = `srv.many-${randomUUID().slice(0, 8)}`;
    const results = await queue.enqueueMany([0, 1, 2].map((i) => ({ tenant_id: tenantId, type, payload: { i } })));
    const rows = await db.sql`select id, payload from public.job_queue where id = any(${results.map((r) => r.id)}::uuid[])`;
    expect(results.map((r) => rows.find((x) => x.id === r.id)?.payload.i)).toEqual([0, 1, 2]);
    const bad = `srv.bad-${randomUUID().slice(0, 8)}`;
    expect((await queueError(queue.enqueueMany([{ tenant_id: tenantId, type: bad }, { tenant_id: tenantId, type: 'Not Valid' }]))).code).toBe('INVALID_ARGUMENT');
    expect(await db.sql`select 1 from public.job_queue where type = ${bad}`).toHaveLength(0);
  });

  it('run_at accepts a Date', async () => {
    const at = new Date(Date.now() + 3_600_000);
    const { id } = await queue.enqueue({ tenant_id: tenantId, type: 'srv.later', run_at: at });
    const [row] = await db.sql`select scheduled_at from public.job_queue where id = ${id}`;
    expect((row.scheduled_at as Date).getTime()).toBe(at.getTime());
  });

  it('getJob returns the job as the jobs API does (no lease internals), and null for an unknown id', async () => {
    const { id } = await queue.enqueue({ tenant_id: tenantId, type: 'srv.get', payload: { a: 1 } });
    const job = await queue.getJob(id);
    expect(job).toMatchObject({ id, tenant_id: tenantId, type: 'srv.get', status: 'pending', payload: { a: 1 } });
    expect(Object.keys(job!).sort()).toEqual([
      'actor_id', 'attempts', 'cancel_requested_at', 'completed_at', 'created_at', 'errors', 'id', 'idempotency_key',
      'last_error', 'max_attempts', 'payload', 'priority', 'progress', 'request_id', 'result', 'scheduled_at',
      'started_at', 'status', 'submitted_by', 'tenant_id', 'trace_id', 'type', 'updated_at', 'worker_id',
    ]);
    expect(await queue.getJob(randomUUID())).toBeNull();
  });

  it('listJobs pages newest first through one tenant\'s jobs without gaps or repeats', async () => {
    const t = await makeTenant(db.sql);
    const ids = (await queue.enqueueMany(Array.from({ length: 7 }, () => ({ tenant_id: t, type: 'srv.list' })))).map((r) => r.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const r = await queue.listJobs({ tenant_id: t, limit: 3, cursor });
      seen.push(...r.jobs.map((j) => j.id));
      if (!r.nextCursor) break;
      cursor = r.nextCursor;
    }
    expect(seen.slice().sort()).toEqual(ids.slice().sort());
    expect(new Set(seen).size).toBe(7);
  });

  it('listJobs filters by status and type', async () => {
    const type = `srv.filter-${randomUUID().slice(0, 8)}`;
    const [a] = await queue.enqueueMany([{ tenant_id: tenantId, type }, { tenant_id: tenantId, type }]);
    await queue.cancel(a.id);
    const r = await queue.listJobs({ type, status: 'cancelled' });
    expect(r.jobs.map((j) => j.id)).toEqual([a.id]);
  });

  it('cancel and retry move the job as the SQL functions do', async () => {
    const { id } = await queue.enqueue({ tenant_id: tenantId, type: 'srv.cancel' });
    expect((await queue.cancel(id)).status).toBe('cancelled');
    expect((await queue.retry(id)).status).toBe('pending');
  });

  it('retry with extraAttempts revives a job that used all its attempts', async () => {
    const { id } = await queue.enqueue({ tenant_id: tenantId, type: 'srv.exhaust', max_attempts: 1 });
    const [job] = await claim(db.sql, 'w-srv', 1, { types: ['srv.exhaust'] });
    expect(await fail(db.sql, job)).toBe('failed');
    expect((await queueError(queue.retry(id))).code).toBe('MAX_ATTEMPTS_REACHED');
    expect(await queue.retry(id, { extraAttempts: 1 })).toMatchObject({ status: 'pending', max_attempts: 2 });
  });
});

describe('errors carry the API\'s codes and statuses (one table: supabase/functions/_supaqueue/errors.ts)', () => {
  const cases: [string, string, () => Promise<unknown>][] = [
    ['enqueue for an unknown tenant', 'QJ002', () => queue.enqueue({ tenant_id: randomUUID(), type: 'srv.x' })],
    ['a malformed type', 'QJ001', () => queue.enqueue({ tenant_id: tenantId, type: 'Not Valid' })],
    ['a payload over 256 KiB', 'QJ007', () => queue.enqueue({ tenant_id: tenantId, type: 'srv.x', payload: { s: 'x'.repeat(300_000) } })],
    ['cancel of an unknown job', 'QJ003', () => queue.cancel(randomUUID())],
    ['retry of a pending job', 'QJ004', async () => queue.retry((await queue.enqueue({ tenant_id: tenantId, type: 'srv.x' })).id)],
    ['a tenant over its quota', 'QJ006', async () => {
      const t = await queue.createTenant({ name: 'Full', limits: { max_queued_jobs: 1 } });
      return queue.enqueueMany([{ tenant_id: t.id, type: 'srv.x' }, { tenant_id: t.id, type: 'srv.x' }]);
    }],
    ['deleting a tenant with active jobs', 'QJ004', async () => {
      const t = await queue.createTenant({ name: 'Busy' });
      await queue.enqueue({ tenant_id: t.id, type: 'srv.x' });
      return queue.deleteTenant(t.id);
    }],
    ['renaming an unknown tenant', 'QJ002', () => queue.renameTenant(randomUUID(), 'X')],
    ['adding an unknown user', 'QJ001', async () => queue.addMember((await queue.createTenant({ name: 'U' })).id, randomUUID())],
  ];
  it.each(cases)('%s -> %s', async (_, sqlstate, call) => {
    const e = await queueError(call());
    const entry = ERROR_CODES[sqlstate as keyof typeof ERROR_CODES];
    expect({ code: e.code, sqlstate: e.sqlstate, status: e.status }).toEqual({ code: entry.name, sqlstate, status: entry.http });
  });

  it('a malformed id is INVALID_ARGUMENT, not a driver error', async () => {
    expect((await queueError(queue.getJob('not-a-uuid'))).code).toBe('INVALID_ARGUMENT');
  });

  it.each([['limit 0', { limit: 0 }], ['limit 1001', { limit: 1001 }], ['a forged cursor', { cursor: 'bm90IGEgY3Vyc29y' }]])(
    'listJobs with %s is INVALID_ARGUMENT', async (_, params) => {
      expect((await queueError(queue.listJobs(params))).code).toBe('INVALID_ARGUMENT');
    });

  it('errors that are not the queue\'s (the database is unreachable) come through unchanged', async () => {
    const u = new URL(db.url);
    u.port = '1';
    const offline = createQueue({ connection: u.toString() });
    try {
      const e = await offline.getJob(randomUUID()).then(() => null, (err: unknown) => err);
      expect(e).not.toBeInstanceOf(SupaqueueError);
      expect((e as { code?: string }).code).toBe('ECONNREFUSED');
    } finally {
      await offline.end();
    }
  });
});

describe('in your own transaction', () => {
  const orders = async (tenant: string) => (await db.sql`select total from public.orders where tenant_id = ${tenant}`).map((r) => r.total);
  const jobsOf = async (tenant: string) => (await db.sql`select type from public.job_queue where tenant_id = ${tenant}`).map((r) => r.type);

  it('commits the job together with your data', async () => {
    const t = await makeTenant(db.sql);
    await db.sql.begin(async (tx) => {
      const [order] = await tx`insert into public.orders (tenant_id, total) values (${t}, 42) returning id`;
      await queue.enqueue({ tenant_id: t, type: 'order.confirm', payload: { order_id: order.id } }, { sql: tx });
    });
    expect({ orders: await orders(t), jobs: await jobsOf(t) }).toEqual({ orders: [42], jobs: ['order.confirm'] });
  });

  it('a rolled-back transaction leaves no job', async () => {
    const t = await makeTenant(db.sql);
    const boom = new Error('payment declined');
    await expect(db.sql.begin(async (tx) => {
      await tx`insert into public.orders (tenant_id, total) values (${t}, 42)`;
      await queue.enqueue({ tenant_id: t, type: 'order.confirm' }, { sql: tx });
      throw boom;
    })).rejects.toBe(boom);
    expect({ orders: await orders(t), jobs: await jobsOf(t) }).toEqual({ orders: [], jobs: [] });
  });

  it('withTransaction runs every call in the transaction (a tenant and its first job, or neither)', async () => {
    const name = `tx-${randomUUID()}`;
    await expect(db.sql.begin(async (tx) => {
      const q = queue.withTransaction(tx);
      const tenant = await q.createTenant({ name });
      await q.enqueue({ tenant_id: tenant.id, type: 'welcome.send' });
      expect(await q.getJob((await q.listJobs({ tenant_id: tenant.id })).jobs[0].id)).toMatchObject({ type: 'welcome.send' });
      throw new Error('rollback');
    })).rejects.toThrow('rollback');
    expect(await db.sql`select 1 from public.tenants where name = ${name}`).toHaveLength(0);
  });

  it.each(['postgres', 'authenticated'])('gives the transaction back with its own role (%s)', async (role) => {
    const t = await makeTenant(db.sql);
    const [before, after] = await db.sql.begin(async (tx) => {
      if (role !== 'postgres') await tx.unsafe(`set local role ${role}`);
      const [b] = await tx`select current_user as u`;
      await queue.enqueue({ tenant_id: t, type: 'srv.role' }, { sql: tx });
      const [a] = await tx`select current_user as u`;
      return [b.u, a.u];
    });
    expect({ before, after }).toEqual({ before: role, after: role });
  });

  it('an error of the queue rolls back only its own part: the caller may catch it and commit the rest', async () => {
    const t = await queue.createTenant({ name: 'Quota', limits: { max_queued_jobs: 1 } });
    await queue.enqueue({ tenant_id: t.id, type: 'srv.first' });
    const code = await db.sql.begin(async (tx) => {
      await tx`insert into public.orders (tenant_id, total) values (${t.id}, 7)`;
      const c = await queue.enqueue({ tenant_id: t.id, type: 'srv.second' }, { sql: tx }).then(() => null, (e: SupaqueueError) => e.code);
      await tx`update public.orders set total = 8 where tenant_id = ${t.id}`;
      return c;
    });
    expect({ code, orders: await orders(t.id), jobs: await jobsOf(t.id) }).toEqual({ code: 'QUEUE_QUOTA_EXCEEDED', orders: [8], jobs: ['srv.first'] });
  });

  it('refuses an sql option that is not a transaction', async () => {
    await expect(queue.enqueue({ tenant_id: tenantId, type: 'srv.x' }, { sql: db.sql as never })).rejects.toThrow(TypeError);
  });
});
