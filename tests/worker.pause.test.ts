/**
 * Postgres paused (issue 11, "Done when" line 1): every process of the server (postmaster and its
 * children) gets SIGSTOP for PAUSE_MS while two worker processes are busy (the README's defaults, and
 * `concurrency: 200, batchSize: 200`), then SIGCONT. A stall like that (an fsync or I/O stall, a VM
 * steal) must cost time only: no job runs twice, nothing deadlocks, every job completes.
 *
 * This file runs its OWN embedded Postgres (own data dir and port, as worker.pgrestart does): stopping
 * the shared server would stall the test files running beside it.
 * Deadlocks are looked for in the workers' logs (40P01, "deadlock"), in the server's log (its stderr,
 * tapped here: scripts/lib/pg.ts drops it) and in Postgres' own count (pg_stat_database.deadlocks).
 * Not vacuous: jobs were running on both workers when the server stopped, every server process was
 * seen stopped (state T), and a query sent during the pause took the pause to answer.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startEmbeddedPostgres, type EmbeddedHandle } from '../scripts/lib/pg.ts';
import { bootstrapSupabasePlatform, resetDatabase } from '../scripts/lib/stack.ts';
import { deadlockLogs, readRuns, recordingHandlers } from './helpers/proxy.ts';
import { enqueueSpread, killAll, startWorker, waitFor, type WorkerProcess } from './helpers/worker.ts';

const PAUSE_MS = 3000;
const JOBS = 4000;
/** The README's defaults and its largest documented configuration, as the CLI's variables. */
const CONFIGS: Array<Record<string, number>> = [{}, { WORKER_CONCURRENCY: 200, WORKER_BATCH_SIZE: 200 }];

let dataDir: string;
let pg: EmbeddedHandle | undefined;
let sql: Sql;
const workers: WorkerProcess[] = [];
const rec = recordingHandlers();

let serverLog = '';

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'supaqueue-pause-'));
  fs.chmodSync(dataDir, 0o755);
  pg = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'pg'), port: await freePort(), quiet: true });
  // The server's log is its stderr, which scripts/lib/pg.ts drops: keep a copy here.
  (pg.pg as unknown as { process?: ChildProcess }).process?.stderr?.on('data', (chunk: Buffer) => { serverLog += chunk.toString(); });
  await bootstrapSupabasePlatform(pg.url);
  await resetDatabase(pg.url, { seed: false });
  sql = postgres(pg.url, { max: 2, onnotice: () => {} });
}, 120_000);

/** Deadlock reports in the server's log, each with its DETAIL (both statements), CONTEXT and STATEMENT. */
function deadlocksInServerLog(): string[] {
  const lines = serverLog.split('\n');
  const newEntry = (l: string) => /^\d{4}-\d\d-\d\d /.test(l) && !/\] (DETAIL|HINT|CONTEXT|STATEMENT): /.test(l);
  return lines.flatMap((l, i) => {
    if (!/deadlock detected/i.test(l)) return [];
    const end = lines.findIndex((m, j) => j > i && newEntry(m));
    return [lines.slice(i, end === -1 ? undefined : end).join('\n')];
  });
}

afterAll(async () => {
  await killAll(workers);
  await sql?.end({ timeout: 1 }).catch(() => {});
  await pg?.stop().catch(() => {});
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  rec.remove();
});

/** The postmaster (from postmaster.pid) and every process whose parent it is. */
function serverPids(): number[] {
  const postmaster = Number(fs.readFileSync(path.join(pg!.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const children = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster ? [Number(d)] : [];
    } catch {
      return []; // exited meanwhile
    }
  });
  return [postmaster, ...children];
}

const procState = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return 'gone';
  }
};

const signalAll = (pids: number[], signal: NodeJS.Signals) => {
  for (const pid of pids) {
    try { process.kill(pid, signal); } catch { /* exited meanwhile */ }
  }
};


describe('Postgres paused (SIGSTOP of every server process) for 3 s under two busy workers', () => {
  it('no job runs twice, nothing deadlocks, every job completes', async () => {
    const [tenant] = await sql<{ id: string }[]>`insert into public.tenants (name) values ('pause') returning id`;
    const ids = await enqueueSpread(sql, [tenant.id], JOBS, { type: 'rec.sleep', payload: { minMs: 100, maxMs: 300 } });
    await sql`select 1 / 0`.catch(() => {}); // an ERROR line: the server's log reaches us
    const [{ before }] = await sql<{ before: number }[]>`select coalesce(sum(deadlocks), 0)::int as before from pg_stat_database`;
    const started = await Promise.all(CONFIGS.map((env, i) => startWorker(pg!.url, { handlers: rec.file, env: { ...env, RECORD_DIR: rec.dir, WORKER_ID: `pause-${i}` } })));
    workers.push(...started);
    await waitFor(() => readRuns(rec.dir).filter((r) => r.end !== undefined).length >= JOBS / 5, { timeoutMs: 30_000, message: 'a fifth done before the pause' });

    const pids = serverPids();
    let pauseAt = 0;
    let resumeAt = 0;
    let probeMs = 0;
    let states: string[] = [];
    try {
      // The postmaster first, so it forks nothing unstopped; then every backend and auxiliary process.
      signalAll(pids.slice(0, 1), 'SIGSTOP');
      signalAll(pids.slice(1), 'SIGSTOP');
      pauseAt = Date.now();
      const probeSent = Date.now();
      const probe = sql`select 1`.then(() => Date.now() - probeSent);
      await sleep(200);
      states = pids.map(procState).filter((s) => s !== 'gone');
      await sleep(pauseAt + PAUSE_MS - Date.now());
      signalAll(pids, 'SIGCONT');
      resumeAt = Date.now();
      probeMs = await probe;
    } finally {
      signalAll(pids, 'SIGCONT');
    }

    await waitFor(async () => {
      const [r] = await sql<{ n: number }[]>`select count(*)::int as n from public.job_queue where status = 'completed'`;
      return r.n === JOBS;
    }, { timeoutMs: 60_000, intervalMs: 250, message: 'every job completed after the pause' });
    const doneAt = Date.now();
    expect(started.map((w) => w.exit)).toEqual([null, null]);
    const runs = readRuns(rec.dir);
    await killAll(started);
    await sleep(500); // the workers' backends report their statistics as they exit
    await sql`select pg_stat_clear_snapshot()`;
    const [{ after }] = await sql<{ after: number }[]>`select coalesce(sum(deadlocks), 0)::int as after from pg_stat_database`;

    const busyAtPause = started.map((_, i) => runs.filter((r) => r.worker === `pause-${i}` && r.start < pauseAt && (r.end ?? Infinity) > pauseAt).length);
    const perJob = new Map<string, number>();
    for (const r of runs) perJob.set(r.job, (perJob.get(r.job) ?? 0) + 1);
    const duplicated = [...perJob.values()].filter((n) => n > 1).length;
    const abandoned = started.flatMap((w) => w.logs).filter((l) => l.msg === 'database call did not answer in time; abandoned and its connection replaced').length;
    console.info(`[worker.pause] ${JOBS} jobs; server (${pids.length} processes) stopped ${resumeAt - pauseAt} ms; a query sent in the pause answered after ${probeMs} ms; ` +
      `running at the pause: ${busyAtPause.join(' + ')}; resume -> all completed ${doneAt - resumeAt} ms; duplicated jobs ${duplicated}; ` +
      `deadlocks ${after - before}; calls abandoned at their deadline ${abandoned}`);

    // The pause was real: every server process stopped, a query waited for the pause, jobs were running.
    expect(pids.length).toBeGreaterThan(3);
    expect(states.every((s) => s === 'T'), `process states during the pause: ${states.join('')}`).toBe(true);
    expect(probeMs).toBeGreaterThanOrEqual(PAUSE_MS - 300);
    expect(busyAtPause.every((n) => n > 0), `jobs running on each worker at the pause: ${busyAtPause}`).toBe(true);

    // No job ran twice, none was aborted (lease-lost or otherwise), every job ended completed.
    expect(duplicated, 'jobs that ran more than once').toBe(0);
    expect(perJob.size).toBe(ids.length);
    expect(runs.filter((r) => r.abortAt !== undefined), 'aborted runs').toEqual([]);
    expect(started.flatMap((w) => w.logs.filter((l) => l.cause === 'lease-lost' || /lease lost/i.test(String(l.msg)))), 'lease-lost logs').toEqual([]);

    // No deadlock: in the workers' logs, in the server's log (seen working: it has the error sent at the
    // start), and by Postgres' own count.
    expect(serverLog).toContain('division by zero');
    expect({ workerLogs: started.flatMap((w) => deadlockLogs(w.logs)), serverLog: deadlocksInServerLog() }, 'deadlocks reported')
      .toEqual({ workerLogs: [], serverLog: [] });
    expect(after - before, 'pg_stat_database.deadlocks').toBe(0);
  }, 120_000);
});
