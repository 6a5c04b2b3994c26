/**
 * Issue 5: end-to-end worker benchmark. supaqueue's worker against graphile-worker and pg-boss, all on
 * the same Postgres server in one run, following the team's method (shared/research/anchor-throughput-
 * here.md): throughput of 20,000 no-op jobs enqueued in bulk before the workers start, and
 * enqueue-to-start latency of 200 single jobs sent 20 ms apart to idle workers.
 *
 * Run alone: `npx tsx bench/run.ts workers`. Every wait is bounded; a variant that does not finish in
 * time is reported as "timeout" and the run goes on.
 */
import postgres from 'postgres';
import type { BenchServer } from './lib/db.ts';
import {
  graphileVariant, loadSupaqueueWorker, pgBossVariant, supaqueueVariant, type Consumer, type Producer, type Variant,
} from './workers-adapters.ts';
import {
  bestEffort, f1, f2, int, JobCounter, median, nodeCpuSeconds, now, percentile, pgCpuSeconds, postmasterOf, sleep,
  TimeoutError, withTimeout,
} from './workers-lib.ts';
import { checksOf, record, summaryTable } from './lib/targets.ts';

// ---------------------------------------------------------------------------------------------------
// Parameters (the method's; see the section text printed with the tables)
// ---------------------------------------------------------------------------------------------------

/** BENCH_WORKERS_JOBS shrinks the runs while developing the benchmark. */
const JOBS = Number(process.env.BENCH_WORKERS_JOBS ?? 20_000);
const WARMUP_JOBS = Math.min(2_000, JOBS / 10);
const CHUNK = 1_000;
const REPEATS = 3;
const PROCESS_CAP_MS = 30_000;
const WARMUP_CAP_MS = 30_000;
const LAT_JOBS = 200;
const LAT_WARMUP = 20;
const LAT_GAP_MS = 20;
const LAT_IDLE_MS = 500;
const LAT_DRAIN_CAP_MS = 10_000;
const STOP_CAP_MS = 15_000;
/** Past this, variants still get their first run but no repeats (the whole section aims at ~7 min). */
const BUDGET_MS = 420_000;
const TENANTS = 10;

// ---------------------------------------------------------------------------------------------------
// Variants
// ---------------------------------------------------------------------------------------------------

const SQ_DEFAULT = supaqueueVariant('c=10 (defaults)',
  `createWorker defaults (worker/config.ts): concurrency 10, batchSize = concurrency, leaseSeconds 15 (heartbeat every 5 s on its own connection, call deadline 5 s), pollIntervalMs 500, listen 'auto' (LISTEN supaqueue_jobs + polling), settles batched (5 ms / 100), maxConnections 5 (+1 heartbeat, +1 LISTEN), maintenance every 60 s; ${TENANTS} tenants, jobs round-robin across them`,
  { tenants: TENANTS, worker: {} });
const SQ_FAST = supaqueueVariant('c=50 b=50',
  `createWorker({ concurrency: 50, batchSize: 50 }), other options default; ${TENANTS} tenants, jobs round-robin across them`,
  { tenants: TENANTS, worker: { concurrency: 50, batchSize: 50 } });
const SQ_BIG = supaqueueVariant('c=200 b=200',
  `createWorker({ concurrency: 200, batchSize: 200 }) (closest to graphile-worker's 500-job local queue: batchSize is capped at concurrency); ${TENANTS} tenants`,
  { tenants: TENANTS, worker: { concurrency: 200, batchSize: 200 } });
const SQ_POLL = supaqueueVariant('c=10 poll-only',
  `createWorker({ listen: false }): polling only, every pollIntervalMs (default); otherwise defaults; ${TENANTS} tenants`,
  { tenants: TENANTS, worker: { listen: false } });

const GW_DEFAULT = graphileVariant('c=10',
  'run() concurrency 10, maxPoolSize 12, defaults otherwise (no localQueue, no batched completion; LISTEN/NOTIFY + 2 s poll)',
  { concurrency: 10, maxPoolSize: 12 });
const GW_BATCHED = graphileVariant('c=10 batched',
  'concurrency 10, maxPoolSize 12, localQueue.size 11, completeJobBatchDelay 250, failJobBatchDelay 250 (docs "Batching" starting point)',
  { concurrency: 10, maxPoolSize: 12, localQueue: { size: 11 }, completeJobBatchDelay: 250, failJobBatchDelay: 250 });
const GW_PERF = graphileVariant('c=25 perf-test',
  "concurrency 25, maxPoolSize 27, localQueue { size: 500, refetchDelay: { durationMs: 10 } }, completeJobBatchDelay 0, failJobBatchDelay 0 (graphile-worker's own perfTest config, 25 instead of 24)",
  { concurrency: 25, maxPoolSize: 27, localQueue: { size: 500, refetchDelay: { durationMs: 10 } }, completeJobBatchDelay: 0, failJobBatchDelay: 0 });

const PB_BATCH = pgBossVariant('batch=50 x10',
  'work({ batchSize: 50, localConcurrency: 10, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 0.5 }); useListenNotify + queue notify:true; pool max 10 (default)',
  { batchSize: 50, localConcurrency: 10, listen: true });

const THROUGHPUT: Variant[] = [SQ_DEFAULT, SQ_FAST, SQ_BIG, GW_DEFAULT, GW_BATCHED, GW_PERF, PB_BATCH];
const LATENCY: Variant[] = [SQ_DEFAULT, SQ_FAST, SQ_POLL, GW_DEFAULT, GW_PERF, PB_BATCH];
/** Latency variants the Done-when targets compare: measured REPEATS times (median of the runs' p50s). */
const LATENCY_REPEATED = new Set<Variant>([SQ_DEFAULT, SQ_FAST, GW_DEFAULT, GW_PERF]);

// ---------------------------------------------------------------------------------------------------
// Shared steps
// ---------------------------------------------------------------------------------------------------

export interface Db {
  url: string;
  admin: postgres.Sql;
  postmaster: number | null;
  drop(): Promise<void>;
}

export async function openDb(server: BenchServer, v: Variant): Promise<Db> {
  const db = await server.freshDatabase(v.db);
  const admin = postgres(db.url, { max: 1, onnotice: () => {} });
  const [{ pid }] = await admin<{ pid: number }[]>`select pg_backend_pid() as pid`;
  await withTimeout(v.setup(db.url), 60_000, `${v.system} setup`);
  return {
    url: db.url,
    admin,
    postmaster: postmasterOf(pid),
    async drop() {
      await bestEffort(() => admin.end({ timeout: 2 }), 5_000);
      await bestEffort(() => db.drop(), 30_000);
    },
  };
}

export async function unfinished(db: Db, v: Variant): Promise<number> {
  const [{ n }] = await db.admin.unsafe<{ n: number }[]>(v.unfinishedSql);
  return n;
}

/** Waits until `target` handler calls happened and the database shows no unfinished job, by deadline. */
export async function drain(db: Db, v: Variant, counter: JobCounter, target: number, deadline: number): Promise<void> {
  await withTimeout(counter.reached(target), deadline - now(), 'handlers');
  for (;;) {
    if ((await unfinished(db, v)) === 0) return;
    if (now() > deadline) throw new TimeoutError('completion in the database', deadline);
    await sleep(10);
  }
}

export async function enqueueBulk(p: Producer, total: number, offset = 0): Promise<void> {
  for (let i = 0; i < total; i += CHUNK) {
    const payloads = Array.from({ length: Math.min(CHUNK, total - i) }, (_, k) => ({ i: offset + i + k }));
    await p.bulk(payloads);
  }
}

export async function stopAll(consumer: Consumer | undefined, producer: Producer | undefined): Promise<string | undefined> {
  const notes: string[] = [];
  if (consumer && !(await bestEffort(() => consumer.stop(), STOP_CAP_MS))) notes.push('worker stop() failed or timed out');
  if (producer && !(await bestEffort(() => producer.close(), STOP_CAP_MS))) notes.push('producer close failed');
  return notes.join('; ') || undefined;
}

// ---------------------------------------------------------------------------------------------------
// Throughput
// ---------------------------------------------------------------------------------------------------

interface ThroughputRun {
  enqueueRate: number;
  processS: number;
  rate: number;
  cpuNode: number;
  cpuPg: number;
  dups: number;
  note?: string;
  timedOut?: boolean;
}

async function throughputOnce(server: BenchServer, v: Variant): Promise<ThroughputRun> {
  const db = await openDb(server, v);
  let producer: Producer | undefined;
  let consumer: Consumer | undefined;
  try {
    // Warm-up through the same path, with its own producer and worker instances.
    {
      const wp = await producer_(v, db);
      const counter = new JobCounter();
      const wc = await v.consumer(db.url, (_p, id) => counter.hit(id));
      try {
        await enqueueBulk(wp, WARMUP_JOBS, -WARMUP_JOBS);
        await wc.start();
        await drain(db, v, counter, WARMUP_JOBS, now() + WARMUP_CAP_MS);
      } catch (e) {
        await stopAll(wc, wp);
        if (e instanceof TimeoutError) {
          return { enqueueRate: NaN, processS: NaN, rate: NaN, cpuNode: NaN, cpuPg: NaN, dups: 0, timedOut: true,
            note: `timeout in warm-up: ${counter.count}/${WARMUP_JOBS} jobs in ${WARMUP_CAP_MS / 1000} s` };
        }
        throw e;
      }
      const n = await stopAll(wc, wp);
      if (n) return { enqueueRate: NaN, processS: NaN, rate: NaN, cpuNode: NaN, cpuPg: NaN, dups: 0, note: `warm-up: ${n}` };
    }

    producer = await producer_(v, db);
    await db.admin`checkpoint`;
    const e0 = now();
    await enqueueBulk(producer, JOBS);
    const enqueueRate = JOBS / ((now() - e0) / 1000);
    if (v.afterEnqueueSql) await db.admin.unsafe(v.afterEnqueueSql);
    await db.admin`checkpoint`;

    const counter = new JobCounter();
    consumer = await v.consumer(db.url, (_p, id) => counter.hit(id));
    const c0 = nodeCpuSeconds();
    const p0 = pgCpuSeconds(db.postmaster);
    const t0 = now();
    let timedOut = false;
    try {
      await consumer.start();
      await drain(db, v, counter, JOBS, t0 + PROCESS_CAP_MS);
    } catch (e) {
      if (!(e instanceof TimeoutError)) throw e;
      timedOut = true;
    }
    const elapsed = (now() - t0) / 1000;
    const cpuNode = nodeCpuSeconds() - c0;
    const cpuPg = pgCpuSeconds(db.postmaster) - p0;
    const stopNote = await stopAll(consumer, producer);
    consumer = undefined;
    producer = undefined;
    if (timedOut) {
      const left = await unfinished(db, v).catch(() => NaN);
      return { enqueueRate, processS: elapsed, rate: NaN, cpuNode, cpuPg, dups: counter.dups, timedOut: true,
        note: `timeout: ${counter.count}/${JOBS} handler calls, ${int(left)} unfinished in the DB after ${PROCESS_CAP_MS / 1000} s` };
    }
    return { enqueueRate, processS: elapsed, rate: JOBS / elapsed, cpuNode, cpuPg, dups: counter.dups, note: stopNote };
  } finally {
    await stopAll(consumer, producer);
    await db.drop();
  }
}

export async function producer_(v: Variant, db: Db): Promise<Producer> {
  return withTimeout(v.producer(db.url), 30_000, `${v.system} producer`);
}

interface ThroughputRow { v: Variant; runs: ThroughputRun[]; error?: string }

async function throughput(server: BenchServer, started: number): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [];
  for (const v of THROUGHPUT) {
    const row: ThroughputRow = { v, runs: [] };
    rows.push(row);
    try {
      const first = await throughputOnce(server, v);
      row.runs.push(first);
      if (!first.timedOut && Number.isFinite(first.rate)) {
        for (let k = 1; k < REPEATS; k++) {
          if (now() - started > BUDGET_MS) { row.error = 'repeats skipped: time budget'; break; }
          row.runs.push(await throughputOnce(server, v));
        }
      }
    } catch (e) {
      row.error = (e as Error).message.split('\n')[0];
    }
  }
  return rows;
}

/** The median run by jobs/s (runs that did not finish count as slowest). */
function medianRun(runs: ThroughputRun[]): ThroughputRun | undefined {
  if (runs.length === 0) return undefined;
  const s = [...runs].sort((a, b) => (Number.isFinite(a.rate) ? a.rate : -1) - (Number.isFinite(b.rate) ? b.rate : -1));
  return s[Math.ceil(s.length / 2) - 1];
}

function bestRate(rows: ThroughputRow[], system: string): { row: ThroughputRow; rate: number } | undefined {
  let best: { row: ThroughputRow; rate: number } | undefined;
  for (const row of rows) {
    if (row.v.system !== system || row.v.afterEnqueueSql) continue; // diagnostic variants do not count
    const m = medianRun(row.runs);
    if (m && Number.isFinite(m.rate) && (!best || m.rate > best.rate)) best = { row, rate: m.rate };
  }
  return best;
}

function throughputTable(rows: ThroughputRow[]): string[] {
  const out = [
    '| Queue | Variant | Enqueue jobs/s | Process s | Processed jobs/s | Range | CPU s node / pg | Dup | Notes |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const row of rows) {
    const m = medianRun(row.runs);
    const notes = [m?.note, row.error].filter(Boolean).join('; ');
    if (!m) {
      out.push(`| ${row.v.system} | ${row.v.name} | – | – | **–** | – | – | – | ${notes || 'no run'} |`);
      continue;
    }
    const rates = row.runs.map((r) => r.rate).filter(Number.isFinite);
    const range = row.runs.length > 1 && rates.length > 1
      ? `${int(Math.min(...rates))}–${int(Math.max(...rates))} (${row.runs.length} runs)`
      : '1 run';
    const rate = m.timedOut ? 'timeout' : int(m.rate);
    out.push(`| ${row.v.system} | ${row.v.name} | ${int(m.enqueueRate)} | ${f2(m.processS)} | **${rate}** | ${range} | ${f1(m.cpuNode)} / ${f1(m.cpuPg)} | ${m.dups} | ${notes} |`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Latency
// ---------------------------------------------------------------------------------------------------

interface LatencyRow {
  v: Variant;
  lat: number[];
  enq: number[];
  pickup: number[];
  note?: string;
  /** Each run's p50 (runs where every job started); set by mergeLatency. */
  p50s?: number[];
  runs?: number;
}

/** Several runs of one variant as one row: samples pooled, p50 = the median of the runs' p50s. */
function mergeLatency(runs: LatencyRow[]): LatencyRow {
  const complete = runs.filter((r) => r.lat.length === LAT_JOBS);
  return {
    v: runs[0].v,
    lat: runs.flatMap((r) => r.lat),
    enq: runs.flatMap((r) => r.enq),
    pickup: runs.flatMap((r) => r.pickup),
    note: [...new Set(runs.map((r) => r.note).filter(Boolean))].join('; ') || undefined,
    p50s: complete.map((r) => median(r.lat)),
    runs: runs.length,
  };
}

/** The row's p50: median of its complete runs' p50s (NaN when no run had every job start). */
export function rowP50(r: LatencyRow): number {
  return r.p50s && r.p50s.length ? median(r.p50s) : NaN;
}

async function latencyOnce(server: BenchServer, v: Variant): Promise<LatencyRow> {
  const row: LatencyRow = { v, lat: [], enq: [], pickup: [] };
  let db: Db | undefined;
  let producer: Producer | undefined;
  let consumer: Consumer | undefined;
  try {
    db = await openDb(server, v);
    producer = await producer_(v, db);
    const counter = new JobCounter();
    const latency = new Map<number, number>();
    consumer = await v.consumer(db.url, (payload, id) => {
      const t = payload.t as number | undefined;
      if (typeof t === 'number' && typeof payload.i === 'number' && payload.i >= 0) latency.set(payload.i, now() - t);
      counter.hit(id);
    });
    await withTimeout(consumer.start(), 30_000, 'worker start');
    await sleep(LAT_IDLE_MS);

    const enq = new Map<number, number>();
    const send = async (i: number, base: number, k: number) => {
      await sleep(base + k * LAT_GAP_MS - now());
      const t = now();
      await producer!.one({ t, i });
      if (i >= 0) enq.set(i, now() - t);
    };
    let base = now();
    for (let k = 0; k < LAT_WARMUP; k++) await send(-1 - k, base, k);
    try {
      await withTimeout(counter.reached(LAT_WARMUP), 5_000, 'latency warm-up');
    } catch (e) {
      if (!(e instanceof TimeoutError)) throw e;
      row.note = `timeout in warm-up: ${counter.count}/${LAT_WARMUP}`;
      return row;
    }
    await sleep(LAT_IDLE_MS);
    base = now();
    for (let i = 0; i < LAT_JOBS; i++) await send(i, base, i);
    try {
      await withTimeout(counter.reached(LAT_WARMUP + LAT_JOBS), LAT_DRAIN_CAP_MS, 'latency jobs');
    } catch (e) {
      if (!(e instanceof TimeoutError)) throw e;
      row.note = `timeout: ${latency.size}/${LAT_JOBS} started ${LAT_DRAIN_CAP_MS / 1000} s after the last enqueue`;
    }
    for (const [i, l] of latency) {
      row.lat.push(l);
      const e = enq.get(i);
      if (e !== undefined) {
        row.enq.push(e);
        row.pickup.push(l - e);
      }
    }
    if (counter.dups) row.note = [row.note, `${counter.dups} duplicate runs`].filter(Boolean).join('; ');
    return row;
  } catch (e) {
    row.note = (e as Error).message.split('\n')[0];
    return row;
  } finally {
    const n = await stopAll(consumer, producer);
    if (n) row.note = [row.note, n].filter(Boolean).join('; ');
    await db?.drop();
  }
}

function latencyTable(rows: LatencyRow[]): string[] {
  const out = [
    '| Queue | Variant | n | p50 ms | p50 per run | p95 ms | p99 ms | max ms | Enqueue call p50 / p99 / max ms | Pickup p50 / p99 ms | Notes |',
    '| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of rows) {
    const p = (q: number) => f1(percentile(r.lat, q));
    out.push(`| ${r.v.system} | ${r.v.name} | ${r.lat.length} | ${f1(rowP50(r))} | ${(r.p50s ?? []).map(f1).join(' / ')} | ${p(0.95)} | ${p(0.99)} | ${f1(Math.max(...r.lat))} | `
      + `${f1(percentile(r.enq, 0.5))} / ${f1(percentile(r.enq, 0.99))} / ${f1(Math.max(...r.enq))} | `
      + `${f1(percentile(r.pickup, 0.5))} / ${f1(percentile(r.pickup, 0.99))} | ${r.note ?? ''} |`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The section
// ---------------------------------------------------------------------------------------------------

/**
 * Each run's database is dropped WITH (FORCE) once its clients are stopped; a library that still holds a
 * connection then sees "terminating connection due to administrator command" (57P01) on a client with
 * no error handler, which would end the process. Those are counted, not fatal; anything else is.
 */
export function guardStrayDisconnects(): { count: () => number; remove: () => void } {
  let n = 0;
  const handler = (e: unknown) => {
    const err = e as { code?: string; message?: string };
    if (err?.code === '57P01' || err?.code === 'ECONNRESET' || /Connection terminated/.test(err?.message ?? '')) {
      n++;
      return;
    }
    process.stderr.write(`bench/workers: uncaught ${String((e as Error)?.stack ?? e)}\n`);
    process.exit(1);
  };
  process.on('uncaughtException', handler);
  return { count: () => n, remove: () => process.off('uncaughtException', handler) };
}

/** Issue 11's Done-when targets that this section measures (bench/lib/targets.ts). */
function recordChecks(tp: ThroughputRow[], lat: LatencyRow[]): void {
  const rateOf = (v: Variant) => {
    const m = medianRun(tp.find((r) => r.v === v)?.runs ?? []);
    return m && Number.isFinite(m.rate) ? m.rate : NaN;
  };
  const decide = (ok: boolean, ...xs: number[]) => (xs.every(Number.isFinite) ? ok : null);
  const sq = bestRate(tp, 'supaqueue');
  const gwPerf = rateOf(GW_PERF);
  record({
    group: 'workers', section: 'workers', met: decide(!!sq && sq.rate >= gwPerf, sq?.rate ?? NaN, gwPerf),
    target: `best documented supaqueue configuration ≥ graphile-worker's perf-test configuration (jobs/s, ${int(JOBS)} no-op jobs)`,
    measured: `${sq ? `${sq.row.v.name} ${int(sq.rate)}` : '–'} vs ${int(gwPerf)} jobs/s (${sq ? f2(sq.rate / gwPerf) : '–'}×)`,
  });
  const [sqDef, gwDef] = [rateOf(SQ_DEFAULT), rateOf(GW_DEFAULT)];
  record({
    group: 'workers', section: 'workers', met: decide(sqDef >= 2 * gwDef, sqDef, gwDef),
    target: "supaqueue defaults ≥ 2× graphile-worker's defaults (jobs/s)",
    measured: `${int(sqDef)} vs ${int(gwDef)} jobs/s (${f2(sqDef / gwDef)}×)`,
  });
  const p50 = (v: Variant) => { const r = lat.find((x) => x.v === v); return r ? rowP50(r) : NaN; };
  const pairs: [string, Variant[], Variant[]][] = [
    ['defaults vs defaults', [SQ_DEFAULT], [GW_DEFAULT]],
    ['best vs best', [SQ_DEFAULT, SQ_FAST], [GW_DEFAULT, GW_PERF]],
  ];
  for (const [what, sqs, gws] of pairs) {
    const a = Math.min(...sqs.map(p50));
    const b = Math.min(...gws.map(p50));
    record({
      group: 'workers', section: 'workers', met: decide(a <= b, a, b),
      target: `enqueue-to-start p50 ≤ graphile-worker's (${what}; median of ${REPEATS} runs' p50)`,
      measured: `${f1(a)} vs ${f1(b)} ms (${f2(a / b)}×)`,
    });
  }
}

export async function runWorkerBench(server: BenchServer): Promise<string> {
  const started = now();
  const lib = await loadSupaqueueWorker();
  const missing = 'error' in lib ? lib.error : undefined;

  const guard = guardStrayDisconnects();
  const tp = await throughput(server, started);
  const lat: LatencyRow[] = [];
  for (const v of LATENCY) {
    const runs: LatencyRow[] = [];
    for (let k = 0; k < (LATENCY_REPEATED.has(v) ? REPEATS : 1); k++) runs.push(await latencyOnce(server, v));
    lat.push(mergeLatency(runs));
  }
  const totalS = (now() - started) / 1000;
  guard.remove();
  recordChecks(tp, lat);

  const out: string[] = [
    '## Workers: supaqueue vs graphile-worker vs pg-boss (end to end)',
    '',
    `Each library's own worker and its own enqueue API, one server, a fresh database per run. Total time for this section: ${f1(totalS)} s.`
      + (missing ? ` **supaqueue rows have no numbers: ${missing}.**` : ''),
    '',
    ...summaryTable(checksOf((c) => c.section === 'workers')),
    '',
    `### Throughput: ${int(JOBS)} no-op jobs`,
    '',
    `Enqueue: the bulk API in chunks of ${int(CHUNK)} (supaqueue \`enqueue_jobs\` as service_role, graphile-worker \`addJobs\`, pg-boss \`insert\`). `
      + `Process: the worker is started after all jobs are queued; the clock runs from the call that starts it (pg-boss: \`work()\`, after \`start()\`) `
      + 'until every handler ran and the database shows no uncompleted job. '
      + `A warm-up of ${int(WARMUP_JOBS)} jobs through the same path first (separate producer and worker instances); CHECKPOINT before enqueue and before processing. `
      + `CPU = seconds of CPU used while processing by this Node process / by all Postgres processes. Every variant runs `
      + `${REPEATS} times (fresh database and warm-up each time; repeats are skipped past a ${BUDGET_MS / 60_000}-minute section budget); the row is the median run and Range gives min–max. Cap ${PROCESS_CAP_MS / 1000} s per run.`,
    '',
    ...throughputTable(tp),
    '',
  ];

  const sq = bestRate(tp, 'supaqueue');
  const gw = bestRate(tp, 'graphile-worker');
  const pb = bestRate(tp, 'pg-boss');
  if (gw) {
    const ratios = tp.filter((r) => r.v.system === 'supaqueue').map((r) => {
      const m = medianRun(r.runs);
      return `${r.v.name} ${m && Number.isFinite(m.rate) ? f2(m.rate / gw.rate) : '–'}×`;
    });
    out.push(`Ratio supaqueue / graphile-worker's best (${gw.row.v.name}, ${int(gw.rate)} jobs/s): ${ratios.join(', ')}`
      + (sq && pb ? `; supaqueue best / pg-boss (${pb.row.v.name}): ${f2(sq.rate / pb.rate)}×.` : '.'), '');
  }

  out.push(
    `### Latency: enqueue-to-start, ${LAT_JOBS} jobs, one every ${LAT_GAP_MS} ms`,
    '',
    'Workers idle and running; each job is enqueued with the single-job API (supaqueue `enqueue_job`, graphile-worker `addJob`, pg-boss `send`) '
      + 'and carries a timestamp taken just before the enqueue call; the handler records now − timestamp. '
      + `${LAT_WARMUP} warm-up jobs first. "Enqueue call" is the producer's own call (insert + commit), part of every latency; `
      + '"Pickup" is each job\'s latency minus its own enqueue call: what the queue adds after the commit returned.',
    '',
    ...latencyTable(lat),
    '',
  );
  const gwLat = lat.filter((r) => r.v.system === 'graphile-worker' && Number.isFinite(rowP50(r)))
    .sort((a, b) => rowP50(a) - rowP50(b))[0];
  if (gwLat) {
    const ratios = lat.filter((r) => r.v.system === 'supaqueue').map((r) =>
      `${r.v.name} ${f2(rowP50(r) / rowP50(gwLat))}×`);
    out.push(`Ratio of p50 latency supaqueue / graphile-worker's best (${gwLat.v.name}, ${f1(rowP50(gwLat))} ms): ${ratios.join(', ')}.`, '');
  }

  out.push('### Variant settings', '');
  const seen = new Set<Variant>();
  for (const v of [...THROUGHPUT, ...LATENCY]) {
    if (seen.has(v)) continue;
    seen.add(v);
    out.push(`- **${v.system} ${v.name}**: ${v.settings}`);
  }
  out.push(
    '',
    '**What each does that the others do not (facts, not measured here):** '
      + 'supaqueue: every job belongs to a tenant (row-level security per tenant; claims serve tenants round-robin by a fair tag; optional per-tenant concurrency and queued-job limits enforced inside claim/enqueue), '
      + 'every claim is a lease (worker default 15 s, renewed by a heartbeat every 5 s; the worker aborts a job it could not renew in time) with a lease_id that fences settles (a holder whose lease expired cannot complete the job; expired leases go back to pending at the next claim), '
      + 'completed jobs stay in `job_queue` until the retention purge. '
      + 'graphile-worker: completed jobs are deleted; a crashed worker\'s locked jobs are freed only after the 4-hour lock timeout; named job queues run serially; job keys replace/deduplicate; crontab. '
      + 'pg-boss: completed jobs are kept (retention); a job is failed/retried when it exceeds expireInSeconds (default 15 min), optional heartbeats; queue policies (singleton, stately, ...), group concurrency, dead-letter queues, cron. '
      + 'Neither graphile-worker nor pg-boss has tenants or RLS.',
    '',
  );
  if (guard.count()) out.push(`(${guard.count()} stray connection error(s) from clients still open when a run's database was dropped were ignored.)`, '');
  return out.join('\n');
}
