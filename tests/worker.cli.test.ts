/**
 * The worker CLI as a process: configuration errors exit 2 with a readable message, and the demo handlers
 * of the local stack (worker/examples/demo-handlers.ts) give each demo job its documented outcome.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../scripts/lib/stack.ts';
import { createTestDatabase, enqueueMany, makeTenant, type TestDatabase } from './helpers/db.ts';
import { killAll, spawnWorker, startWorker, waitFor, type WorkerProcess } from './helpers/worker.ts';

const DEMO = path.join(ROOT, 'worker/examples/demo-handlers.ts');

let db: TestDatabase;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await killAll(workers);
  await db?.drop();
});

describe('configuration errors', () => {
  it('exits 2 naming the invalid variable', async () => {
    const w = spawnWorker(db.url, { handlers: DEMO, env: { WORKER_CONCURRENCY: 'lots', WORKER_LISTEN: 'maybe' } });
    workers.push(w);
    expect(await w.exited).toEqual({ code: 2, signal: null });
    expect(w.stderr()).toMatch(/WORKER_CONCURRENCY/);
    expect(w.stderr()).toMatch(/WORKER_LISTEN/);
  });

  it('exits 2 naming WORKER_LOG_LEVEL when it is not a pino level', async () => {
    const w = spawnWorker(db.url, { handlers: DEMO, env: { WORKER_LOG_LEVEL: 'verbose' } });
    workers.push(w);
    expect(await w.exited).toEqual({ code: 2, signal: null });
    expect(w.stderr()).toMatch(/WORKER_LOG_LEVEL/);
  });

  it('exits 2 when WORKER_TYPES names a type without a handler', async () => {
    const w = spawnWorker(db.url, { handlers: DEMO, env: { WORKER_TYPES: 'demo.echo,demo.nope' } });
    workers.push(w);
    expect(await w.exited).toEqual({ code: 2, signal: null });
    expect(w.stderr()).toMatch(/types \(WORKER_TYPES\) without a handler: demo\.nope/);
  });

  it('exits 2 when the options are out of range', async () => {
    const w = spawnWorker(db.url, { handlers: DEMO, env: { WORKER_LEASE_SECONDS: 1, WORKER_HEARTBEAT_INTERVAL_MS: 5000 } });
    workers.push(w);
    expect(await w.exited).toEqual({ code: 2, signal: null });
    expect(w.stderr()).toMatch(/WORKER_HEARTBEAT_INTERVAL_MS\) must be shorter than leaseSeconds \(WORKER_LEASE_SECONDS\)/);
  });
});

describe('an internal loop that crashes', () => {
  let own: TestDatabase;
  beforeAll(async () => {
    own = await createTestDatabase();
  });
  afterAll(async () => {
    await own?.drop();
  });

  it('stops the worker and exits 1, so a supervisor restarts it', async () => {
    const w = await startWorker(own.url, { handlers: DEMO, env: { WORKER_POLL_INTERVAL_MS: 100 } });
    workers.push(w);
    // Not transient (42501): retrying cannot help, and a worker that kept heartbeating without claiming would be a zombie.
    await own.sql`revoke execute on function public.claim_jobs(text, text[], integer, double precision) from service_role`;
    const exit = await Promise.race([w.exited, new Promise((r) => setTimeout(r, 15_000, 'still running'))]);
    expect(exit).toEqual({ code: 1, signal: null });
    expect(w.logs.find((l) => l.msg === 'worker loop crashed; stopping the worker')).toMatchObject({ loop: 'claim', err: { code: '42501' } });
  });
});

describe('demo handlers', () => {
  type Row = { status: string; attempts: number; result: any; last_error: string | null; progress: any };
  const jobs: Record<string, string> = {};
  const row = async (name: string) => (await db.sql<Row[]>`select * from public.job_queue where id = ${jobs[name]}`)[0];

  beforeAll(async () => {
    const tenant = await makeTenant(db.sql);
    const one = async (type: string, spec: Record<string, unknown> = {}) => (await enqueueMany(db.sql, tenant, 1, { type, ...spec }))[0];
    jobs.echo = await one('demo.echo', { payload: { hello: 'world' } });
    jobs.report = await one('demo.report', { payload: { report: 'monthly' } });
    jobs.flaky = await one('demo.flaky', { backoff_base_ms: 0, backoff_max_ms: 0 });
    jobs.emailOk = await one('demo.email', { payload: { to: 'ceo@globex.test', subject: 'Welcome' } });
    jobs.emailBad = await one('demo.email', { payload: { subject: 'no recipient' }, max_attempts: 3 });
    workers.push(await startWorker(db.url, { handlers: DEMO }));
    await waitFor(async () => {
      const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from public.job_queue where status in ('completed', 'failed')`;
      return r.n === Object.keys(jobs).length;
    }, { timeoutMs: 30_000, message: 'demo jobs finished' });
  }, 60_000);

  it('demo.echo returns its payload', async () => {
    expect(await row('echo')).toMatchObject({ status: 'completed', result: { hello: 'world' } });
  });

  it('demo.report reports progress up to 100 and returns a report', async () => {
    expect(await row('report')).toMatchObject({ status: 'completed', progress: { percent: 100 }, result: { report: 'monthly' } });
  });

  it('demo.flaky fails its first attempt and succeeds on the second', async () => {
    expect(await row('flaky')).toMatchObject({ status: 'completed', attempts: 2, result: { succeededOnAttempt: 2 } });
  });

  it('demo.email sends when payload.to is set', async () => {
    expect(await row('emailOk')).toMatchObject({ status: 'completed', attempts: 1, result: { sent: true, to: 'ceo@globex.test' } });
  });

  it('demo.email fails permanently without payload.to', async () => {
    const r = await row('emailBad');
    expect(r).toMatchObject({ status: 'failed', attempts: 1 });
    expect(r.last_error).toMatch(/payload\.to is required/);
  });
});
