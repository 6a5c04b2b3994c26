/**
 * Issue 11: enqueue speed against graphile-worker (`npm run bench -- enqueue`), with no worker running.
 * Single job: `enqueue_job` as service_role vs WorkerUtils.addJob on a reused pool, one call at a time
 * (one connection in use each). Bulk: `enqueue_jobs` vs addJobs, chunks of CHUNK. Both through the
 * producers of bench/workers-adapters.ts (the same calls the workers section enqueues with). Runs
 * alternate which queue goes first; each run has a fresh database; medians of RUNS.
 *
 * The workers section also prints enqueue numbers, measured differently: its bulk column is one run
 * per variant, and its "Enqueue call" column is taken while the worker runs (it competes for the CPU).
 * The Done-when targets use these idle, repeated measurements.
 */
import type { BenchServer } from './lib/db.ts';
import { record } from './lib/targets.ts';
import { graphileVariant, supaqueueVariant, type Variant } from './workers-adapters.ts';
import { f2, int, median, now, percentile } from './workers-lib.ts';

const RUNS = 3;
const SINGLE_WARMUP = 50;
const SINGLE = Number(process.env.BENCH_ENQUEUE_SINGLE ?? 500);
const BULK = Number(process.env.BENCH_ENQUEUE_BULK ?? 20_000);
const CHUNK = 1_000;
const BULK_TARGET = 0.8;
const log = (m: string) => process.stderr.write(`[enqueue bench] ${m}\n`);

const SQ = supaqueueVariant('enqueue', 'service_role, one connection, 10 tenants round-robin', { tenants: 10, worker: {} });
const GW = graphileVariant('enqueue', 'WorkerUtils on a pg pool of its own, reused for every call', { concurrency: 1, maxPoolSize: 1 });

interface Run { p50: number; p95: number; bulkRate: number }

async function once(server: BenchServer, v: Variant): Promise<Run> {
  const db = await server.freshDatabase(v.db);
  try {
    await v.setup(db.url);
    const p = await v.producer(db.url);
    try {
      const times: number[] = [];
      for (let i = 0; i < SINGLE_WARMUP + SINGLE; i++) {
        const t0 = now();
        await p.one({ i, to: `user-${i}@example.com`, template: 'welcome' });
        if (i >= SINGLE_WARMUP) times.push(now() - t0);
      }
      const t0 = now();
      for (let i = 0; i < BULK; i += CHUNK) {
        await p.bulk(Array.from({ length: Math.min(CHUNK, BULK - i) }, (_, k) => ({ i: i + k, to: `user-${i + k}@example.com`, template: 'welcome' })));
      }
      const bulkRate = BULK / ((now() - t0) / 1000);
      return { p50: percentile(times, 0.5), p95: percentile(times, 0.95), bulkRate };
    } finally {
      await p.close();
    }
  } finally {
    await db.drop();
  }
}

export async function runEnqueueBench(server: BenchServer): Promise<string> {
  const t0 = Date.now();
  const runs = { sq: [] as Run[], gw: [] as Run[] };
  for (let r = 0; r < RUNS; r++) {
    const order = r % 2 === 0 ? (['sq', 'gw'] as const) : (['gw', 'sq'] as const);
    for (const k of order) runs[k].push(await once(server, k === 'sq' ? SQ : GW));
    log(`run ${r + 1}: supaqueue p50 ${runs.sq[r].p50.toFixed(2)} ms, bulk ${int(runs.sq[r].bulkRate)}/s; graphile-worker p50 ${runs.gw[r].p50.toFixed(2)} ms, bulk ${int(runs.gw[r].bulkRate)}/s`);
  }
  const m = (xs: Run[], f: (x: Run) => number) => median(xs.map(f));
  const [sqP50, gwP50] = [m(runs.sq, (x) => x.p50), m(runs.gw, (x) => x.p50)];
  const [sqBulk, gwBulk] = [m(runs.sq, (x) => x.bulkRate), m(runs.gw, (x) => x.bulkRate)];
  record({
    group: 'engine', section: 'enqueue', met: sqP50 <= gwP50,
    target: 'single-enqueue call p50 ≤ graphile-worker `addJob` p50',
    measured: `${f2(sqP50)} ms vs ${f2(gwP50)} ms (${f2(sqP50 / gwP50)}×)`,
  });
  record({
    group: 'engine', section: 'enqueue', met: sqBulk >= BULK_TARGET * gwBulk,
    target: `bulk enqueue ≥ ${BULK_TARGET}× graphile-worker \`addJobs\``,
    measured: `${int(sqBulk)} vs ${int(gwBulk)} jobs/s (${f2(sqBulk / gwBulk)}×)`,
  });
  const rowOf = (name: string, xs: Run[]) => `| ${name} | ${f2(m(xs, (x) => x.p50))} | ${f2(m(xs, (x) => x.p95))} | ${xs.map((x) => f2(x.p50)).join(' / ')} `
    + `| ${int(m(xs, (x) => x.bulkRate))} | ${xs.map((x) => int(x.bulkRate)).join(' / ')} |`;
  return [
    '## Enqueue: supaqueue vs graphile-worker (issue 11)',
    '',
    `No worker running; one producer, one call at a time (one connection in use), a fresh database per run, ${RUNS} runs alternating which queue goes first, medians. `
      + `Single: ${SINGLE} calls after ${SINGLE_WARMUP} warm-up calls, each timed from call to answer (supaqueue \`enqueue_job\` as service_role on one postgres.js connection, 10 tenants round-robin; `
      + 'graphile-worker `addJob` through `makeWorkerUtils` on a reused `pg` pool). '
      + `Bulk: ${int(BULK)} jobs in chunks of ${int(CHUNK)} (\`enqueue_jobs\` vs \`addJobs\`), after the single calls, in the same database.`,
    '',
    '| queue | single p50 ms | single p95 ms | p50 per run | bulk jobs/s | bulk per run |',
    '|---|---:|---:|---|---:|---|',
    rowOf('supaqueue', runs.sq),
    rowOf('graphile-worker', runs.gw),
    '',
    `Ratios supaqueue / graphile-worker: single p50 ${f2(sqP50 / gwP50)}× (target ≤ 1), bulk ${f2(sqBulk / gwBulk)}× (target ≥ ${BULK_TARGET}).`,
    '',
    `_Enqueue section took ${Math.round((Date.now() - t0) / 1000)} s._`,
    '',
  ].join('\n');
}
