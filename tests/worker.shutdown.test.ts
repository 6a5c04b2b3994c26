/**
 * Graceful shutdown: SIGTERM a worker process holding short and long jobs. It claims nothing more, the
 * short jobs finish within the grace period, the long ones are aborted and released without losing an
 * attempt, the process exits 0, and another worker then runs each long job exactly once more.
 */
import { describe, expect, it } from 'vitest';
import { makeTenant } from './helpers/db.ts';
import { enqueueSpread, startWorker, useWorkerProcesses, waitFor } from './helpers/worker.ts';

const GRACE_MS = 1500;

const { db, workers } = useWorkerProcesses();

describe('SIGTERM with short and long jobs in flight', () => {
  it('finishes the short jobs, releases the long ones with their attempt, exits 0; another worker re-runs them once', async () => {
    const tenant = await makeTenant(db.sql);
    const a = await startWorker(db.url, { env: { WORKER_CONCURRENCY: 6, WORKER_SHUTDOWN_GRACE_MS: GRACE_MS } });
    workers.push(a);
    const short = await enqueueSpread(db.sql, [tenant], 4, { type: 'test.long', payload: { ms: 600 } });
    const long = await enqueueSpread(db.sql, [tenant], 2, { type: 'test.long', payload: { ms: 4000 } });
    await waitFor(async () => {
      const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from public.test_executions where pid = ${a.pid}`;
      return r.n === 6;
    }, { message: 'worker A runs all six jobs' });

    a.proc.kill('SIGTERM');
    const exit = await a.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(a.logs.some((l) => l.msg?.startsWith('shutdown grace ran out'))).toBe(true);

    const afterStop = await db.sql<{ id: string; status: string; attempts: number; errors: unknown[]; result: { pid: number } | null }[]>`
      select id, status::text, attempts, errors, result from public.job_queue`;
    const byId = new Map(afterStop.map((r) => [r.id, r]));
    for (const id of short) expect(byId.get(id)).toMatchObject({ status: 'completed', attempts: 1, result: { pid: a.pid } });
    for (const id of long) expect(byId.get(id)).toMatchObject({ status: 'pending', attempts: 0, errors: [] });

    const b = await startWorker(db.url, { env: { WORKER_CONCURRENCY: 6 } });
    workers.push(b);
    await waitFor(async () => {
      const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from public.job_queue where id = any (${long}::uuid[]) and status = 'completed'`;
      return r.n === long.length;
    }, { timeoutMs: 30_000, message: 'worker B completes the long jobs' });
    const runs = await db.sql<{ job_id: string; pids: number[]; attempts: number; result_pid: number }[]>`
      select e.job_id, array_agg(e.pid order by e.started_at) as pids, j.attempts, (j.result ->> 'pid')::int as result_pid
      from public.test_executions e join public.job_queue j on j.id = e.job_id
      where e.job_id = any (${long}::uuid[]) group by e.job_id, j.attempts, j.result`;
    expect(runs).toHaveLength(2);
    for (const r of runs) expect(r).toMatchObject({ pids: [a.pid, b.pid], attempts: 1, result_pid: b.pid });
  });
});
