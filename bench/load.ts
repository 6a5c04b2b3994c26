/**
 * Issue 11: the worker under load (`npm run bench -- load`). The documented configurations (defaults,
 * and concurrency 200 / batch 200) process a bulk-enqueued backlog of no-op jobs
 *  - while a child process keeps one core busy (a CPU-bound loop), and
 *  - while Postgres is paused for 3 s (SIGSTOP, then SIGCONT, of the server's processes) during processing;
 * reporting jobs/s, duplicate runs, the worker's "lease lost" logs and deadlocks (the database's own
 * pg_stat_database counter). Then, with the core still busy, a worker in a child process holding jobs is
 * SIGKILLed and the time until another worker starts each of them again is measured.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { BenchServer } from './lib/db.ts';
import { checksOf, record, summaryTable } from './lib/targets.ts';
import { supaqueueVariant, type Consumer, type Producer, type Variant } from './workers-adapters.ts';
import { drain, enqueueBulk, guardStrayDisconnects, openDb, producer_, stopAll, type Db } from './workers.ts';
import { int, JobCounter, median, now, serverPids, sleep, TimeoutError, withTimeout } from './workers-lib.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const JOBS = Number(process.env.BENCH_LOAD_JOBS ?? 10_000);
const RUNS = Number(process.env.BENCH_LOAD_RUNS ?? 3);
const TENANTS = 10;
const PROCESS_CAP_MS = 90_000;
const PAUSE_MS = 3_000;
const PAUSE_AFTER_MS = 300;
const KILL_JOBS = 10;
const KILL_TARGET_MS = 2_000;
const KILL_CAP_MS = 45_000;

interface Config { name: string; settings: string; worker: Record<string, unknown> }
const CONFIGS: Config[] = [
  { name: 'defaults (c=10)', settings: 'createWorker defaults', worker: {} },
  { name: 'c=200 b=200', settings: 'createWorker({ concurrency: 200, batchSize: 200 })', worker: { concurrency: 200, batchSize: 200 } },
];
type Condition = 'one core busy' | 'Postgres paused 3 s';
const CONDITIONS: Condition[] = ['one core busy', 'Postgres paused 3 s'];

const log = (m: string) => process.stderr.write(`[load bench] ${m}\n`);

/** A pino logger that counts the worker's warnings instead of printing them. */
function countingLogger() {
  const counts = { leaseLost: 0, deadlock: 0, warnings: 0 };
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        counts.warnings++;
        if (/lease lost|lease could not be renewed/i.test(line)) counts.leaseLost++;
        if (/40P01|deadlock/i.test(line)) counts.deadlock++;
      }
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, stream), counts };
}

/** One CPU-bound child process (a busy loop): one core taken, as by an unrelated program. */
function burnCore(): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  child.on('error', () => {});
  return child;
}

function signalServer(db: Db, sig: 'SIGSTOP' | 'SIGCONT'): number {
  if (!db.postmaster) return 0;
  const pids = serverPids(db.postmaster);
  for (const pid of pids) {
    try { process.kill(pid, sig); } catch { /* exited meanwhile */ }
  }
  return pids.length;
}

async function deadlocks(db: Db): Promise<number> {
  const [{ n }] = await db.admin<{ n: number }[]>`select deadlocks::int as n from pg_stat_database where datname = current_database()`;
  return n;
}

interface LoadRun { rate: number; dups: number; leaseLost: number; deadlocksDb: number; deadlockLogs: number; warnings: number; note?: string }

async function loadOnce(server: BenchServer, cfg: Config, cond: Condition): Promise<LoadRun> {
  const { logger, counts } = countingLogger();
  const v: Variant = supaqueueVariant(cfg.name, cfg.settings, { tenants: TENANTS, worker: { ...cfg.worker, logger } });
  const db = await openDb(server, v);
  let producer: Producer | undefined;
  let consumer: Consumer | undefined;
  let burner: ChildProcess | undefined;
  let paused = false;
  let pausedAt = 0;
  try {
    producer = await producer_(v, db);
    await enqueueBulk(producer, JOBS);
    await db.admin`checkpoint`;
    const d0 = await deadlocks(db);
    if (cond === 'one core busy') {
      burner = burnCore();
      await sleep(200);
    }
    const counter = new JobCounter();
    consumer = await v.consumer(db.url, (_p, id) => counter.hit(id));
    const t0 = now();
    await consumer.start();
    if (cond === 'Postgres paused 3 s') {
      if (!db.postmaster) throw new Error('the Postgres server is not on this machine: cannot pause it');
      await sleep(PAUSE_AFTER_MS);
      pausedAt = counter.count;
      paused = true;
      signalServer(db, 'SIGSTOP');
      await sleep(PAUSE_MS);
      signalServer(db, 'SIGCONT');
      paused = false;
    }
    let note = cond === 'Postgres paused 3 s' ? `paused after ${pausedAt} jobs` : undefined;
    let timedOut = false;
    try {
      await drain(db, v, counter, JOBS, t0 + PROCESS_CAP_MS);
    } catch (e) {
      if (!(e instanceof TimeoutError)) throw e;
      timedOut = true;
      note = [note, `timeout: ${counter.count}/${JOBS} handler calls after ${PROCESS_CAP_MS / 1000} s`].filter(Boolean).join('; ');
    }
    const secs = (now() - t0) / 1000;
    const deadlocksDb = (await deadlocks(db)) - d0;
    return { rate: timedOut ? NaN : JOBS / secs, dups: counter.dups, leaseLost: counts.leaseLost, deadlocksDb, deadlockLogs: counts.deadlock, warnings: counts.warnings, note };
  } finally {
    if (paused) signalServer(db, 'SIGCONT');
    burner?.kill('SIGKILL');
    await stopAll(consumer, producer);
    await db.drop();
  }
}

/** Starts the child worker and resolves with the ids it started (KILL_JOBS of them) and the process. */
async function heldWorker(url: string): Promise<{ child: ChildProcess; started: Set<string> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'lib', 'held-worker.ts')], {
    env: { ...process.env, BENCH_URL: url, BENCH_CONCURRENCY: String(KILL_JOBS) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const started = new Set<string>();
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += String(d); });
  const all = new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += String(d);
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try { started.add(JSON.parse(line).started); } catch { /* not ours */ }
        if (started.size >= KILL_JOBS) resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`held worker exited (${code}): ${stderr.slice(-300)}`)));
  });
  try {
    await withTimeout(all, 60_000, 'held worker starting its jobs');
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return { child, started };
}

interface KillRun { medianMs: number; maxMs: number; restarted: number; note?: string }

async function killOnce(server: BenchServer): Promise<KillRun> {
  const v = supaqueueVariant('rescuer', 'createWorker defaults', { tenants: TENANTS, worker: {} });
  const db = await openDb(server, v);
  let producer: Producer | undefined;
  let rescuer: Consumer | undefined;
  let child: ChildProcess | undefined;
  const burner = burnCore();
  try {
    producer = await producer_(v, db);
    await producer.bulk(Array.from({ length: KILL_JOBS }, (_, i) => ({ i })));
    const held = await heldWorker(db.url);
    child = held.child;
    const restartedAt = new Map<string, number>();
    const counter = new JobCounter();
    rescuer = await v.consumer(db.url, (_p, id) => { if (!restartedAt.has(id)) restartedAt.set(id, now()); counter.hit(id); });
    await rescuer.start();
    await sleep(1_000); // the rescuer is idle (every job is held) and polling
    if (restartedAt.size) throw new Error(`the rescuer started ${restartedAt.size} held job(s) before the kill`);
    const t0 = now();
    child.kill('SIGKILL');
    let note: string | undefined;
    try {
      await withTimeout(counter.reached(KILL_JOBS), KILL_CAP_MS, 'jobs of the killed worker');
    } catch (e) {
      if (!(e instanceof TimeoutError)) throw e;
      note = `${restartedAt.size}/${KILL_JOBS} started again within ${KILL_CAP_MS / 1000} s`;
    }
    const waits = [...held.started].map((id) => (restartedAt.has(id) ? restartedAt.get(id)! - t0 : Infinity));
    return { medianMs: median(waits), maxMs: Math.max(...waits), restarted: restartedAt.size, note };
  } finally {
    burner.kill('SIGKILL');
    child?.kill('SIGKILL');
    await stopAll(rescuer, producer);
    await db.drop();
  }
}

const ms0 = (x: number) => (Number.isFinite(x) ? int(x) : '–');

export async function runLoadBench(server: BenchServer): Promise<string> {
  const t0 = Date.now();
  const guard = guardStrayDisconnects();
  const rows: string[] = [];
  try {
    for (const cond of CONDITIONS) {
      let dups = 0;
      let dl = 0;
      let lost = 0;
      for (const cfg of CONFIGS) {
        const runs: LoadRun[] = [];
        for (let r = 0; r < RUNS; r++) {
          const run = await loadOnce(server, cfg, cond).catch((e: Error) => ({ rate: NaN, dups: 0, leaseLost: 0, deadlocksDb: 0, deadlockLogs: 0, warnings: 0, note: e.message.split('\n')[0] }));
          runs.push(run);
          log(`${cfg.name}, ${cond}, run ${r + 1}: ${int(run.rate)} jobs/s, ${run.dups} dups, ${run.leaseLost} lease lost, ${run.deadlocksDb} deadlocks${run.note ? `, ${run.note}` : ''}`);
        }
        const total = (f: (x: LoadRun) => number) => runs.reduce((s, x) => s + f(x), 0);
        dups += total((x) => x.dups);
        dl += total((x) => x.deadlocksDb + x.deadlockLogs);
        lost += total((x) => x.leaseLost);
        const rates = runs.map((x) => x.rate);
        const notes = runs.map((x) => x.note).filter(Boolean).join('; ');
        rows.push(`| supaqueue ${cfg.name} | ${cond} | **${int(median(rates.map((x) => (Number.isFinite(x) ? x : -1))))}** | ${rates.map(int).join(' / ')} `
          + `| ${total((x) => x.dups)} | ${total((x) => x.leaseLost)} | ${total((x) => x.deadlocksDb)} / ${total((x) => x.deadlockLogs)} | ${total((x) => x.warnings)} | ${notes} |`);
      }
      record({
        group: 'workers', section: 'load', met: dups === 0 && dl === 0,
        target: `no duplicate run of a live worker's job and no deadlock, documented configurations, ${cond}`,
        measured: `${dups} duplicate runs, ${dl} deadlocks (database + worker logs), ${lost} "lease lost" logs over ${RUNS} runs × ${CONFIGS.length} configurations`,
      });
    }
    const kills: KillRun[] = [];
    for (let r = 0; r < RUNS; r++) {
      const k = await killOnce(server).catch((e: Error) => ({ medianMs: NaN, maxMs: NaN, restarted: 0, note: e.message.split('\n')[0] }));
      kills.push(k);
      log(`SIGKILL run ${r + 1}: all ${k.restarted}/${KILL_JOBS} again after max ${ms0(k.maxMs)} ms${k.note ? ` (${k.note})` : ''}`);
    }
    const maxes = kills.map((k) => (Number.isNaN(k.maxMs) ? Infinity : k.maxMs));
    const medMax = median(maxes);
    record({
      group: 'workers', section: 'load', met: medMax <= KILL_TARGET_MS,
      target: `a SIGKILLed worker's jobs run again within ${KILL_TARGET_MS / 1000} s (one core busy)`,
      measured: `all ${KILL_JOBS} jobs started again after ${ms0(medMax)} ms (median of ${RUNS} runs; runs: ${maxes.map(ms0).join(' / ')} ms)`,
    });
    const killRows = kills.map((k, i) => `| ${i + 1} | ${k.restarted}/${KILL_JOBS} | ${ms0(k.medianMs)} | ${ms0(k.maxMs)} | ${k.note ?? ''} |`);
    return [
      '## Workers under load (issue 11)',
      '',
      ...summaryTable(checksOf((c) => c.section === 'load')),
      '',
      `### Throughput and lease safety: ${int(JOBS)} no-op jobs, ${RUNS} runs per row`,
      '',
      `Each run: a fresh database, ${int(JOBS)} jobs enqueued in bulk (\`enqueue_jobs\`, ${TENANTS} tenants), CHECKPOINT, then one in-process worker (\`createWorker\`, the configuration named) `
        + 'processes them; jobs/s from start() until the database shows none unfinished. "One core busy": a child process runs a CPU-bound loop from just before the worker starts. '
        + `"Postgres paused": ${PAUSE_AFTER_MS} ms after start() every process of the server is sent SIGSTOP, and SIGCONT ${PAUSE_MS / 1000} s later. `
        + 'Dup = handler calls beyond the first per job; "lease lost" = worker log lines about a lost or unrenewable lease; deadlocks = the database\'s `pg_stat_database.deadlocks` / worker log lines naming 40P01. Counts are totals over the runs.',
      '',
      '| worker | condition | jobs/s (median) | runs | dup | "lease lost" logs | deadlocks db / logs | worker warnings | notes |',
      '|---|---|---:|---|---:|---:|---:|---:|---|',
      ...rows,
      '',
      `### SIGKILL recovery, one core busy: ${KILL_JOBS} jobs held by a worker in another process`,
      '',
      `A worker process (defaults, concurrency ${KILL_JOBS}; bench/lib/held-worker.ts) starts ${KILL_JOBS} long jobs; a second, idle worker (defaults) runs in this process. `
        + 'The first is killed with SIGKILL; the time is from the kill until the second worker starts each job again.',
      '',
      '| run | started again | median ms | all (max) ms | notes |',
      '|---:|---:|---:|---:|---|',
      ...killRows,
      '',
      `_Load section took ${Math.round((Date.now() - t0) / 1000)} s._`,
      '',
    ].join('\n');
  } finally {
    guard.remove();
  }
}
