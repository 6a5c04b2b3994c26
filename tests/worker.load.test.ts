/**
 * Load: 3 worker processes x concurrency 8 drain 5,000 jobs across 10 tenants (handlers sleep 1-20 ms
 * and record every execution). Every job completes, and no job runs twice.
 */
import { describe, expect, it } from 'vitest';
import { makeTenant } from './helpers/db.ts';
import { enqueueSpread, startWorker, statusCounts, useWorkerProcesses, waitFor } from './helpers/worker.ts';

const JOBS = 5000;
const TENANTS = 10;

const { db, workers } = useWorkerProcesses();

describe('3 workers x concurrency 8, 5,000 jobs, 10 tenants', () => {
  it('completes every job exactly once', async () => {
    const tenants = await Promise.all(Array.from({ length: TENANTS }, (_, i) => makeTenant(db.sql, { name: `load-${i}` })));
    const ids = await enqueueSpread(db.sql, tenants, JOBS, { type: 'test.sleep', payload: { minMs: 1, maxMs: 20 } });
    expect(new Set(ids).size).toBe(JOBS);

    const started = Date.now();
    for (let i = 0; i < 3; i += 1) workers.push(await startWorker(db.url, { env: { WORKER_CONCURRENCY: 8 } }));
    await waitFor(async () => (await statusCounts(db.sql)).completed === JOBS, { timeoutMs: 75_000, intervalMs: 250, message: 'all jobs completed' });
    const seconds = (Date.now() - started) / 1000;

    const [exec] = await db.sql<{ executions: number; jobs: number; duplicated: number }[]>`
      select count(*)::int as executions, count(distinct job_id)::int as jobs,
             (select count(*)::int from (select job_id from public.test_executions group by job_id having count(*) > 1) d) as duplicated
      from public.test_executions`;
    const [mismatch] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from public.job_queue j
      where j.status <> 'completed' or j.attempts <> 1
         or not exists (select 1 from public.test_executions e
                        where e.job_id = j.id and e.pid = (j.result ->> 'pid')::int and e.finished_at is not null)`;
    const pids = await db.sql<{ pid: number; n: number }[]>`select pid, count(*)::int as n from public.test_executions group by pid`;
    console.info(`[worker.load] ${JOBS} jobs in ${seconds.toFixed(1)} s (${Math.round(JOBS / seconds)} jobs/s); per process: ${pids.map((p) => p.n).join(', ')}`);

    expect(exec).toEqual({ executions: JOBS, jobs: JOBS, duplicated: 0 });
    expect(mismatch.n).toBe(0);
    expect(pids).toHaveLength(3); // all three processes took part
    expect(workers.every((w) => w.exit === null)).toBe(true);
  }, 90_000);
});
