/**
 * The worker library in-process against a real database: results, failures, progress, cancellation,
 * lease loss, wake-ups (LISTEN and polling), and how it becomes service_role.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import postgres from 'postgres';
import { createWorker, JobAbortedError, PermanentError, WorkerConfigError, type Handlers, type WorkerOptions, type Worker } from '../worker/index.ts';
import { asService, createTestDatabase, enqueueMany, makeTenant, type TestDatabase } from './helpers/db.ts';
import { uniqueName, waitFor } from './helpers/worker.ts';
import { useLoginRoles } from './helpers/roles.ts';

let db: TestDatabase;
let tenant: string;
const workers: Worker[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  tenant = await makeTenant(db.sql);
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});

afterAll(async () => {
  await db?.drop();
});

async function run(handlers: Handlers, opts: Partial<WorkerOptions> = {}): Promise<Worker> {
  const w = createWorker({ connection: db.url, handlers, logger: pino({ level: 'silent' }), pollIntervalMs: 100, maintenanceIntervalMs: false, ...opts });
  workers.push(w);
  await w.start();
  return w;
}

async function enqueue(type: string, spec: Record<string, unknown> = {}): Promise<string> {
  const [id] = await enqueueMany(db.sql, tenant, 1, { type, ...spec });
  return id;
}

type Row = { status: string; attempts: number; result: any; last_error: string | null; errors: any[]; progress: any; worker_id: string | null };
const row = async (id: string): Promise<Row> => (await db.sql<Row[]>`select * from public.job_queue where id = ${id}`)[0];
const until = (id: string, status: string, timeoutMs = 15_000) =>
  waitFor(async () => { const r = await row(id); return r.status === status && r; }, { timeoutMs, message: `job ${id} ${status}` });

/** A promise the test resolves: lets a handler wait for the test. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => { open = r; });
  return { wait, open };
}

describe('handler outcomes', () => {
  it('stores the return value as the result and passes the job envelope in ctx', async () => {
    await run({ 'lib.result': async (job, ctx) => ({ echo: job.payload, tenantId: ctx.tenantId, traceId: ctx.traceId, actorId: ctx.actorId, requestId: ctx.requestId, attempt: ctx.attempt, maxAttempts: ctx.maxAttempts }) });
    const id = await enqueue('lib.result', { payload: { a: 1 }, trace_id: 'trace-1', actor_id: 'actor-1', request_id: 'req-1', max_attempts: 4 });
    const r = await until(id, 'completed');
    expect(r.result).toEqual({ echo: { a: 1 }, tenantId: tenant, traceId: 'trace-1', actorId: 'actor-1', requestId: 'req-1', attempt: 1, maxAttempts: 4 });
  });

  it('fails permanently on PermanentError, whatever attempts are left', async () => {
    await run({ 'lib.permanent': async () => { throw new PermanentError('bad payload'); } });
    const id = await enqueue('lib.permanent', { max_attempts: 5 });
    const r = await until(id, 'failed');
    expect(r.attempts).toBe(1);
    expect(r.last_error).toBe('PermanentError: bad payload');
  });

  it('fails permanently on any error with retryable = false', async () => {
    await run({ 'lib.not-retryable': async () => { throw Object.assign(new Error('nope'), { retryable: false }); } });
    const id = await enqueue('lib.not-retryable', { max_attempts: 5 });
    const r = await until(id, 'failed');
    expect(r.attempts).toBe(1);
  });

  it('fails a job whose result is too large to store, without holding back the rest of its settle batch', async () => {
    await run({ 'lib.big': async (job) => (job.payload.big ? 'x'.repeat(1_100_000) : 'small') }, { settleIntervalMs: 200 });
    const [big, small] = await Promise.all([enqueue('lib.big', { payload: { big: true } }), enqueue('lib.big', { payload: { big: false } })]);
    const r = await until(big, 'failed');
    expect(r.attempts).toBe(1);
    expect(r.last_error).toMatch(/^result could not be stored: /);
    expect((await until(small, 'completed')).result).toBe('small');
  });

  it('retries a thrown error and completes on a later attempt', async () => {
    await run({ 'lib.flaky': async (_job, ctx) => { if (ctx.attempt < 2) throw new Error('first try fails'); return { attempt: ctx.attempt }; } });
    const id = await enqueue('lib.flaky', { backoff_base_ms: 0, backoff_max_ms: 0 });
    const r = await until(id, 'completed');
    expect(r.result).toEqual({ attempt: 2 });
    expect(r.errors).toMatchObject([{ attempt: 1, error: 'first try fails', retryable: true }]);
  });
});

describe('claiming', () => {
  it('two workers with different handlers share one queue: each claims only its own types, no job fails', async () => {
    const a = await run({ 'lib.share-a': async () => 'a' }, { concurrency: 4 });
    // Enqueued while only A runs: A idles through them instead of claiming and failing them.
    const bJobs = await enqueueMany(db.sql, tenant, 30, { type: 'lib.share-b' });
    const aJobs = await enqueueMany(db.sql, tenant, 30, { type: 'lib.share-a' });
    await waitFor(async () => (await db.sql`select 1 from public.job_queue where id = any (${aJobs}::uuid[]) and status <> 'completed'`).length === 0);
    const b = await run({ 'lib.share-b': async () => 'b' }, { concurrency: 4 });
    await waitFor(async () => (await db.sql`select 1 from public.job_queue where id = any (${bJobs}::uuid[]) and status <> 'completed'`).length === 0);
    const rows = await db.sql<{ type: string; worker_id: string; attempts: number; errors: unknown[] }[]>`
      select type, worker_id, attempts, errors from public.job_queue where id = any (${[...aJobs, ...bJobs]}::uuid[])`;
    expect(rows.filter((r) => r.worker_id !== (r.type === 'lib.share-a' ? a.id : b.id) || r.attempts !== 1 || r.errors.length > 0)).toEqual([]);
  });

  it('claims only the configured types', async () => {
    await run({ 'lib.mine': async () => 'mine', 'lib.theirs': async () => 'theirs' }, { types: ['lib.mine'] });
    const theirs = await enqueue('lib.theirs');
    await until(await enqueue('lib.mine'), 'completed');
    await new Promise((r) => setTimeout(r, 300)); // a few more polls
    expect((await row(theirs)).status).toBe('pending');
  });
});

describe('while a job runs', () => {
  it('records ctx.progress on the row', async () => {
    const g = gate();
    await run({ 'lib.progress': async (_job, ctx) => { await ctx.progress({ percent: 40, message: 'halfway' }); await g.wait; return null; } });
    const id = await enqueue('lib.progress');
    const r = await waitFor(async () => { const x = await row(id); return x.progress && x; });
    g.open();
    expect(r.status).toBe('processing');
    expect(r.progress).toEqual({ percent: 40, message: 'halfway' });
    await until(id, 'completed');
  });

  it('aborts ctx.signal when the job is cancelled, and ends it cancelled', async () => {
    let seen: unknown;
    const running = gate();
    await run({
      'lib.cancel': async (_job, ctx) => {
        running.open();
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
        seen = ctx.signal.reason;
        throw ctx.signal.reason;
      },
    }, { leaseSeconds: 1.5 }); // heartbeats every 500 ms: the cancellation is seen soon
    const id = await enqueue('lib.cancel', { max_attempts: 3 });
    await running.wait;
    await asService(db.sql, (tx) => tx`select * from public.cancel_job(${id})`);
    const r = await until(id, 'cancelled');
    expect(seen).toBeInstanceOf(JobAbortedError);
    expect((seen as JobAbortedError).kind).toBe('cancelled');
    expect(r.attempts).toBe(1);
  });

  it('aborts ctx.signal when the lease is lost, and drops the late result', async () => {
    let seen: unknown;
    const running = gate();
    const aborted = gate();
    // Concurrency 1: the worker has no free slot, so only the "thief" below can take the job over.
    await run({
      'lib.lease': async (_job, ctx) => {
        running.open();
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
        seen = ctx.signal.reason;
        aborted.open();
        return { late: true }; // must not be stored
      },
    }, { concurrency: 1, leaseSeconds: 1.5 }); // heartbeats every 500 ms: the loss is seen soon
    const id = await enqueue('lib.lease');
    await running.wait;
    // Expire the lease and let another worker's claim reclaim and take the job, in one transaction so
    // our worker's heartbeat cannot extend the lease in between.
    await db.sql.begin(async (tx) => {
      await tx`update supaqueue.workers w set expires_at = now() - interval '1 second'
               from supaqueue.job_leases l where l.job_id = ${id} and w.id = l.worker_id`;
      await tx`set local role service_role`;
      const claimed = await tx`select id from public.claim_jobs('thief', array['lib.lease'], 1, 60)`;
      expect(claimed.map((c) => c.id)).toEqual([id]);
    });
    await aborted.wait;
    expect((seen as JobAbortedError).kind).toBe('lease-lost');
    await new Promise((r) => setTimeout(r, 300)); // room for a (wrong) settle to land
    const r = await row(id);
    expect(r).toMatchObject({ status: 'processing', worker_id: 'thief', result: null });
  });
});

describe('a database that stops answering', () => {
  it('abandons the hung heartbeat for a new connection and fences the job before its lease ends; the job is released and runs again', async () => {
    const running = gate();
    let first: { at?: number; kind?: string } | null = null;
    const w = await run({
      'lib.fence': async (_job, ctx) => {
        if (first) return 'second run';
        first = {};
        running.open();
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
        Object.assign(first, { at: Date.now(), kind: (ctx.signal.reason as JobAbortedError).kind });
        throw ctx.signal.reason;
      },
    }, { concurrency: 1, leaseSeconds: 1.5, callTimeoutMs: 400 }); // heartbeats every 500 ms, each abandoned after 400
    const id = await enqueue('lib.fence');
    await running.wait;
    // Every heartbeat now waits on this row lock (the worker's liveness row): to the worker, the database hangs.
    const locker = await db.sql.reserve();
    try {
      await locker`begin`;
      await locker`select 1 from supaqueue.workers where id = ${w.id} for update`;
      const lockedAt = Date.now();
      await waitFor(() => first?.kind, { timeoutMs: 5000, intervalMs: 10 });
      expect(first!.kind).toBe('lease-lost');
      expect(first!.at! - lockedAt).toBeLessThan(1500); // the lease, renewed at most just before the lock, ends later
      // A one-connection client cannot have two backends waiting at once: the first was given up and replaced.
      const [hb] = await db.sql<{ n: number }[]>`select count(*)::int as n from pg_stat_activity
        where application_name = ${`supaqueue-worker ${w.id}`.slice(0, 63)} and query like '%heartbeat_jobs%' and wait_event_type = 'Lock'`;
      expect(hb.n).toBeGreaterThanOrEqual(2);
    } finally {
      await locker`rollback`;
      locker.release();
    }
    const r = await until(id, 'completed');
    expect(r).toMatchObject({ result: 'second run', attempts: 1 }); // released, not failed: no attempt used
  });
});

describe('wake-ups', () => {
  const listeners = async (appName: string) => (await db.sql<{ pid: number }[]>`
    select pid from pg_stat_activity where application_name = ${appName} and query ilike 'listen%'`).map((r) => r.pid);

  /** Enqueues one job into an idle worker and returns how long it took to complete. */
  async function latency(type: string): Promise<number> {
    const started = Date.now();
    await until(await enqueue(type), 'completed', 10_000);
    return Date.now() - started;
  }

  it('picks up new work on NOTIFY, long before the next poll', async () => {
    const w = await run({ 'lib.notify': async () => null }, { pollIntervalMs: 60_000, listen: true });
    await waitFor(async () => (await listeners(`supaqueue-worker ${w.id}`)).length === 1);
    await until(await enqueue('lib.notify'), 'completed'); // the worker is now idle in its 60 s wait
    await new Promise((r) => setTimeout(r, 200)); // ... and surely waiting
    const ms = await latency('lib.notify');
    console.info(`[worker.lib] NOTIFY wake-up to completion: ${ms} ms (poll interval 60 s)`);
    expect(ms).toBeLessThan(2000);
  });

  it('LISTENs again after its connection is killed, and is woken through the new one', async () => {
    const w = await run({ 'lib.relisten': async () => null }, { pollIntervalMs: 60_000, listen: true });
    const [first] = await waitFor(async () => { const p = await listeners(`supaqueue-worker ${w.id}`); return p.length === 1 && p; });
    await db.sql`select pg_terminate_backend(${first})`;
    const [second] = await waitFor(async () => { const p = await listeners(`supaqueue-worker ${w.id}`); return p.length === 1 && p[0] !== first && p; });
    expect(second).not.toBe(first);
    await until(await enqueue('lib.relisten'), 'completed'); // the re-LISTEN itself wakes the loop once
    await new Promise((r) => setTimeout(r, 200));
    expect(await latency('lib.relisten')).toBeLessThan(2000); // only a NOTIFY on the new connection can do this (poll: 60 s)
  });

  it('processes everything by polling alone with listen: false', async () => {
    const w = await run({ 'lib.poll': async (job) => job.payload.i }, { listen: false, concurrency: 8 });
    const ids = await enqueueMany(db.sql, tenant, 200, { type: 'lib.poll' });
    await waitFor(async () => {
      const [c] = await db.sql<{ n: number }[]>`select count(*)::int as n from public.job_queue where id = any (${ids}::uuid[]) and status = 'completed'`;
      return c.n === ids.length;
    }, { timeoutMs: 30_000 });
    expect(await listeners(`supaqueue-worker ${w.id}`)).toEqual([]);
  });
});

describe('connection and role', () => {
  /** A login role with no privileges of its own: it can work only by switching to service_role. */
  const loginRole = useLoginRoles({ get sql() { return db.sql; }, get url() { return db.url; } }, 'wk_login');

  it.each(['none', 'transaction'] as const)('works as service_role from a login role that is only its member (pooler: %s)', async (pooler) => {
    const url = await loginRole(true);
    const w = createWorker({ connection: url, pooler, handlers: { [`lib.role-${pooler}`]: async () => 'ok' }, logger: pino({ level: 'silent' }), maintenanceIntervalMs: false, pollIntervalMs: 100 });
    workers.push(w);
    await w.start();
    const r = await until(await enqueue(`lib.role-${pooler}`), 'completed');
    expect(r.result).toBe('ok');
  });

  it('rejects start() when the login role may not become service_role', async () => {
    const url = await loginRole(false);
    const w = createWorker({ connection: url, handlers: { 'lib.x': async () => null }, logger: pino({ level: 'silent' }), maintenanceIntervalMs: false });
    await expect(w.start()).rejects.toMatchObject({ code: '42501' });
  });

  it('accepts an existing postgres.js client and sets the role per transaction', async () => {
    const url = await loginRole(true);
    const client = postgres(url, { max: 3, onnotice: () => {} });
    try {
      await run({ 'lib.client': async () => 'done' }, { connection: client });
      const r = await until(await enqueue('lib.client'), 'completed');
      expect(r.result).toBe('done');
    } finally {
      await Promise.all(workers.splice(0).map((w) => w.stop()));
      await client.end();
    }
  });

  it('rejects invalid options, listing every problem', () => {
    let error: unknown;
    try {
      createWorker({ connection: db.url, handlers: {}, concurrency: 0, leaseSeconds: 1, heartbeatIntervalMs: 2000 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WorkerConfigError);
    expect((error as Error).message).toMatch(/handlers/);
    expect((error as Error).message).toMatch(/concurrency/);
  });
});
