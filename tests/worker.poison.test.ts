/**
 * Poison jobs in a worker process: one type always throws, one hangs forever ignoring ctx.signal. Both
 * end `failed` after exactly max_attempts, with one error per attempt in their history, while healthy
 * jobs keep flowing. There are more hanging jobs (6) than slots (4): a worker that waited for abandoned
 * handlers would stall for good and never finish the healthy jobs queued behind them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, makeTenant, type TestDatabase } from './helpers/db.ts';
import { createExecutionsTable, enqueueSpread, killAll, startWorker, waitFor, type WorkerProcess } from './helpers/worker.ts';

const TIMEOUT_MS = 700;
const MAX_ATTEMPTS = 3;
const RETRY = { max_attempts: MAX_ATTEMPTS, backoff_base_ms: 50, backoff_max_ms: 100 };

let db: TestDatabase;
const workers: WorkerProcess[] = [];
let hang: string[];
let boom: string[];
let healthy: string[];

type Row = { id: string; status: string; attempts: number; errors: Array<{ attempt: number; error: string }>; executions: number };
const rows = (ids: string[]) => db.sql<Row[]>`
  select j.id, j.status::text, j.attempts, j.errors, (select count(*)::int from public.test_executions e where e.job_id = j.id) as executions
  from public.job_queue j where j.id = any (${ids}::uuid[])`;

beforeAll(async () => {
  db = await createTestDatabase();
  await createExecutionsTable(db.sql);
  const tenant = await makeTenant(db.sql);
  // One tenant, so the fair line is first-in first-out: the hanging jobs are claimed first.
  hang = await enqueueSpread(db.sql, [tenant], 6, { type: 'test.hang', ...RETRY });
  boom = await enqueueSpread(db.sql, [tenant], 3, { type: 'test.throw', ...RETRY });
  healthy = await enqueueSpread(db.sql, [tenant], 150, { type: 'test.sleep', payload: { minMs: 1, maxMs: 5 } });
  workers.push(await startWorker(db.url, { env: { WORKER_CONCURRENCY: 4, WORKER_JOB_TIMEOUT_MS: TIMEOUT_MS } }));
  await waitFor(async () => {
    const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from public.job_queue where status in ('completed', 'failed')`;
    return r.n === hang.length + boom.length + healthy.length;
  }, { timeoutMs: 60_000, intervalMs: 200, message: 'every job reached a final state' });
}, 90_000);

afterAll(async () => {
  await killAll(workers);
  await db?.drop();
});

describe('poison jobs', () => {
  it('a job type that always throws ends failed after exactly max_attempts, one error per attempt', async () => {
    for (const r of await rows(boom)) {
      expect(r).toMatchObject({ status: 'failed', attempts: MAX_ATTEMPTS, executions: MAX_ATTEMPTS });
      expect(r.errors.map((e) => [e.attempt, e.error])).toEqual([1, 2, 3].map((n) => [n, `boom on attempt ${n}`]));
    }
  });

  it('a job that hangs ignoring its signal is timed out each attempt and ends failed after max_attempts', async () => {
    for (const r of await rows(hang)) {
      expect(r).toMatchObject({ status: 'failed', attempts: MAX_ATTEMPTS, executions: MAX_ATTEMPTS });
      expect(r.errors.map((e) => [e.attempt, e.error])).toEqual([1, 2, 3].map((n) => [n, `job timed out after ${TIMEOUT_MS} ms`]));
    }
  });

  it('healthy jobs queued behind them all complete on their first attempt', async () => {
    const r = await rows(healthy);
    expect(r.filter((x) => x.status !== 'completed' || x.attempts !== 1)).toEqual([]);
    expect(workers[0].exit).toBeNull();
  });
});
