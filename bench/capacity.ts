/**
 * Capacity (`npm run bench -- capacity`): what one Postgres of this size sustains, for the README.
 *  1. Heartbeats: the cost of one heartbeat_jobs call by the number of jobs its worker holds, and the
 *     aggregate heartbeat rate N concurrent workers get from the server in a tight loop.
 *  2. Running jobs: with 100,000 jobs processing (100 workers), a claim of 10 and a complete of 10, the
 *     size of the lease and worker tables, and what one heartbeat round of every worker writes.
 * Claim + complete jobs/s is the engine section's. Calls are made as worker/db.ts makes them, as
 * service_role. Shrink while developing: BENCH_CAPACITY_SCALE (job counts, e.g. 0.1),
 * BENCH_CAPACITY_SECONDS (tight-loop length), BENCH_CAPACITY_WORKERS (e.g. "10,50").
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { HEARTBEAT_INTERVAL_MS } from '../supabase/functions/_supaqueue/contract.ts';
import { FILL_CHUNK } from './engine-latency.ts';
import type { BenchServer } from './lib/db.ts';
import { f2, int, median, nodeCpuSeconds, percentile, pgCpuSeconds, postmasterOf } from './workers-lib.ts';

const SCALE = Number(process.env.BENCH_CAPACITY_SCALE ?? 1);
const scaled = (n: number) => (n === 0 ? 0 : Math.max(10, Math.round(n * SCALE)));
const HELD = [0, 100, 1_000, 10_000].map(scaled);
const LOOP_S = Number(process.env.BENCH_CAPACITY_SECONDS ?? 5);
const WARM_S = 0.5;
const WORKER_COUNTS = (process.env.BENCH_CAPACITY_WORKERS ?? '10,50,200').split(',').map(Number);
const JOBS_PER_WORKER = 10;
/** Jobs held in the stale-statistics diagnostic (a plan that compares every held job with every lease). */
const STALE_HELD = scaled(1_000);
const RUNNING = scaled(100_000);
const RUNNING_WORKERS = 100;
const BEATS = 50;
/** Heartbeats by jobs held go on past BEATS until this long has passed, so the CPU figures have enough clock ticks. */
const CPU_MIN_S = 1;
const WARMUP = 5;
const PROBES = 30; // claims (and completes) of PROBE_BATCH timed per state
const PROBE_BATCH = 10;
const CLAIM_CHUNK = 1_000; // claim_jobs' largest batch
const TENANTS = 10;
const LEASE_SECONDS = 600; // nothing expires during the section
const BEATS_PER_WORKER_S = 1000 / HEARTBEAT_INTERVAL_MS;
const log = (m: string) => process.stderr.write(`[capacity bench] ${m}\n`);
const open = (url: string) => postgres(url, { max: 1, onnotice: () => {} });
const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;

interface Lease { id: string; lease_id: string }
interface Timing { median: number; p95: number }
const timing = (xs: number[]): Timing => ({ median: median(xs), p95: percentile(xs, 0.95) });

async function timed<T>(times: number[], fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const out = await fn();
  times.push(performance.now() - t0);
  return out;
}

/** Realtime broadcast triggers on job_queue off (bulk setup: nothing measured reads realtime.messages) or on. */
async function broadcasts(sql: postgres.Sql, on: boolean): Promise<void> {
  const names = await sql<{ tgname: string }[]>`select tgname from pg_trigger where tgrelid = 'public.job_queue'::regclass
                                                 and not tgisinternal and tgname like '%realtime%'`;
  for (const { tgname } of names) await sql.unsafe(`alter table public.job_queue ${on ? 'enable' : 'disable'} trigger ${tgname}`);
}

/** Tenants and `count` ready jobs through enqueue_jobs (as service_role, tenants round-robin). */
async function fill(sql: postgres.Sql, count: number): Promise<void> {
  const tenants = (await sql`insert into public.tenants (name) select 'cap-' || g from generate_series(1, ${TENANTS}) g returning id`).map((r) => r.id as string);
  await sql`set role service_role`;
  for (let i = 0; i < count; i += FILL_CHUNK) {
    const specs = Array.from({ length: Math.min(FILL_CHUNK, count - i) }, (_, k) => ({ tenant_id: tenants[(i + k) % TENANTS], type: 'bench.job', payload: { i: i + k } }));
    await sql`select count(*) from public.enqueue_jobs(${JSON.stringify(specs)}::text::jsonb)`;
  }
  await sql`reset role`;
}

/** Claims `n` jobs for one worker id in batches of at most CLAIM_CHUNK (the caller is service_role). */
async function claim(sql: postgres.Sql, worker: string, n: number): Promise<Lease[]> {
  const out: Lease[] = [];
  while (out.length < n) {
    const rows = await sql<Lease[]>`select id, lease_id from public.claim_jobs(${worker}, null, ${Math.min(CLAIM_CHUNK, n - out.length)}::int, ${LEASE_SECONDS}::float8)`;
    if (rows.length === 0) throw new Error(`claim for ${worker} returned nothing with ${out.length} of ${n} held`);
    out.push(...rows);
  }
  return out;
}

/** One heartbeat exactly as worker/db.ts sends it; throws if a lease was lost. */
async function beat(sql: postgres.Sql, worker: string, held: Lease[]): Promise<void> {
  const rows = await sql<{ id: string; lease_valid: boolean; cancel_requested: boolean }[]>`
    select h.id, h.lease_valid, h.cancel_requested from public.heartbeat_jobs(
      ${held.map((j) => j.id)}::uuid[], ${held.map((j) => j.lease_id)}::uuid[], ${LEASE_SECONDS}::float8, ${worker}::text, true) h`;
  if (rows.length !== held.length || rows.some((r) => !r.lease_valid)) throw new Error(`heartbeat of ${worker}: a lease was lost`);
}

/** CPU seconds one server backend has used so far (utime + stime from /proc; NaN when not readable). */
function backendCpuSeconds(pid: number): number {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ
  } catch {
    return NaN;
  }
}

async function walPosition(sql: postgres.Sql): Promise<{ lsn: string; fpi: number }> {
  const [w] = await sql<{ lsn: string; fpi: string }[]>`select pg_current_wal_insert_lsn()::text as lsn, (select wal_fpi from pg_stat_wal) as fpi`;
  return { lsn: w.lsn, fpi: Number(w.fpi) };
}

async function walSince(sql: postgres.Sql, from: { lsn: string; fpi: number }): Promise<{ bytes: number; fpi: number }> {
  const to = await walPosition(sql);
  const [{ bytes }] = await sql<{ bytes: string }[]>`select pg_wal_lsn_diff(${to.lsn}::pg_lsn, ${from.lsn}::pg_lsn)::bigint as bytes`;
  return { bytes: Number(bytes), fpi: to.fpi - from.fpi };
}

// ---------------------------------------------------------------------------------------------------
// 1. Heartbeats
// ---------------------------------------------------------------------------------------------------

interface HeldCost { held: number; t: Timing; calls: number; walPerCall: number; pgCpuMs: number; nodeCpuMs: number }

/** Heartbeats of `held` by one worker: BEATS timed, and on until CPU_MIN_S for the per-call figures. */
async function measureBeats(sql: postgres.Sql, pid: number, held: Lease[]): Promise<HeldCost> {
  for (let i = 0; i < WARMUP; i++) await beat(sql, 'cap-solo', held);
  const times: number[] = [];
  const [w0, p0, n0, t0] = [await walPosition(sql), backendCpuSeconds(pid), nodeCpuSeconds(), performance.now()];
  while (times.length < BEATS || performance.now() - t0 < CPU_MIN_S * 1000) await timed(times, () => beat(sql, 'cap-solo', held));
  const [p1, n1] = [backendCpuSeconds(pid), nodeCpuSeconds()];
  const wal = await walSince(sql, w0);
  const k = times.length;
  const r = { held: held.length, t: timing(times.slice(0, BEATS)), calls: k, walPerCall: wal.bytes / k, pgCpuMs: ((p1 - p0) / k) * 1000, nodeCpuMs: ((n1 - n0) / k) * 1000 };
  log(`${int(r.held)} held: median ${f2(r.t.median)} ms, ${int(r.walPerCall)} WAL bytes/call, backend CPU ${f2(r.pgCpuMs)} ms/call`);
  return r;
}

/** What autovacuum does within about a minute of a change this size (the caller is service_role). */
async function analyzeLeases(sql: postgres.Sql): Promise<void> {
  await sql`reset role`;
  await sql`analyze supaqueue.job_leases, supaqueue.workers`;
  await sql`set role service_role`;
}

/**
 * One worker id holds 0, 100, 1,000, 10,000 jobs in turn (ANALYZE of the lease table after each
 * claim). Then the diagnostic: the jobs are completed, the lease table is analyzed empty, and
 * STALE_HELD jobs are claimed and heartbeated before any new ANALYZE.
 */
async function heartbeatByHeld(server: BenchServer): Promise<{ steady: HeldCost[]; stale: HeldCost }> {
  const db = await server.freshDatabase('migrated');
  const sql = open(db.url);
  try {
    await fill(sql, Math.max(...HELD) + STALE_HELD);
    await sql`vacuum analyze`;
    const [{ pid }] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    await sql`set role service_role`;
    const held: Lease[] = [];
    const steady: HeldCost[] = [];
    for (const n of HELD) {
      held.push(...await claim(sql, 'cap-solo', n - held.length));
      await analyzeLeases(sql);
      steady.push(await measureBeats(sql, pid, held));
    }
    for (let i = 0; i < held.length; i += CLAIM_CHUNK) {
      const b = held.slice(i, i + CLAIM_CHUNK);
      await sql`select id from public.complete_jobs(${b.map((j) => j.id)}::uuid[], ${b.map((j) => j.lease_id)}::uuid[])`;
    }
    await analyzeLeases(sql);
    const stale = await measureBeats(sql, pid, await claim(sql, 'cap-solo', STALE_HELD));
    return { steady, stale };
  } finally {
    await sql.end({ timeout: 5 });
    await db.drop();
  }
}

interface RateResult { workers: number; connections: number; calls: number; t: Timing; pgCores: number; nodeCores: number }

/**
 * `workers` worker ids, each holding JOBS_PER_WORKER jobs and on its own connection (when the server's
 * max_connections leaves room; otherwise some connections carry two), heartbeat in a tight loop:
 * WARM_S of warm-up, then LOOP_S counted.
 */
async function heartbeatRate(server: BenchServer, workers: number): Promise<RateResult> {
  const db = await server.freshDatabase('migrated');
  const setup = open(db.url);
  const conns: postgres.Sql[] = [];
  try {
    await fill(setup, workers * JOBS_PER_WORKER);
    await setup`vacuum analyze`;
    const [{ max, used, pid }] = await setup<{ max: number; used: number; pid: number }[]>`
      select current_setting('max_connections')::int as max, pg_backend_pid() as pid,
             (select count(*)::int from pg_stat_activity where backend_type = 'client backend') as used`;
    const connections = Math.min(workers, max - used - 2);
    for (let i = 0; i < connections; i++) {
      const c = open(db.url);
      conns.push(c);
      await c`set role service_role`;
    }
    const ws = await Promise.all(Array.from({ length: workers }, async (_, i) => {
      const sql = conns[i % connections];
      return { sql, id: `cap-w-${i}`, held: await claim(sql, `cap-w-${i}`, JOBS_PER_WORKER) };
    }));
    await setup`analyze supaqueue.job_leases, supaqueue.workers`;
    const postmaster = postmasterOf(pid);
    let counting = false;
    let stop = false;
    const times: number[] = [];
    let p0 = NaN, n0 = NaN, p1 = NaN, n1 = NaN, t0 = NaN, t1 = NaN;
    let failure: unknown = null;
    const loops = ws.map(async (w) => {
      while (!stop) {
        const c = counting;
        const t = performance.now();
        await beat(w.sql, w.id, w.held);
        if (c && counting) times.push(performance.now() - t);
      }
    }).map((p) => p.catch((e) => { failure ??= e; stop = true; }));
    await new Promise((r) => setTimeout(r, WARM_S * 1000));
    [p0, n0, t0] = [pgCpuSeconds(postmaster), nodeCpuSeconds(), performance.now()];
    counting = true;
    await new Promise((r) => setTimeout(r, LOOP_S * 1000));
    counting = false;
    [p1, n1, t1] = [pgCpuSeconds(postmaster), nodeCpuSeconds(), performance.now()];
    stop = true;
    await Promise.all(loops);
    if (failure) throw failure;
    const wall = (t1 - t0) / 1000;
    return { workers, connections, calls: times.length / wall, t: timing(times), pgCores: (p1 - p0) / wall, nodeCores: (n1 - n0) / wall };
  } finally {
    await Promise.all(conns.map((c) => c.end({ timeout: 5 })));
    await setup.end({ timeout: 5 });
    await db.drop();
  }
}

// ---------------------------------------------------------------------------------------------------
// 2. Running jobs
// ---------------------------------------------------------------------------------------------------

interface Probe { claim: Timing; complete: Timing; ready: number }
interface RunningResult {
  empty: Probe; loaded: Probe;
  sizes: { rel: string; rows: number; bytes: number }[];
  round: { bytes: number; fpi: number; seconds: number; writes: string };
}

/** WARMUP + PROBES claims of PROBE_BATCH by one more worker, each completed; both timed. */
async function probe(sql: postgres.Sql): Promise<Probe> {
  const [{ ready }] = await sql<{ ready: number }[]>`select count(*)::int as ready from supaqueue.job_ready`;
  await sql`set role service_role`;
  const claims: number[] = [];
  const completes: number[] = [];
  for (let i = 0; i < WARMUP + PROBES; i++) {
    const c: number[] = [];
    const jobs = await timed(c, () => sql<Lease[]>`select id, lease_id from public.claim_jobs('cap-probe', null, ${PROBE_BATCH}::int, ${LEASE_SECONDS}::float8)`);
    if (jobs.length !== PROBE_BATCH) throw new Error(`probe claim returned ${jobs.length} of ${PROBE_BATCH}`);
    const d: number[] = [];
    const done = await timed(d, () => sql`select id from public.complete_jobs(${jobs.map((j) => j.id)}::uuid[], ${jobs.map((j) => j.lease_id)}::uuid[])`);
    if (done.length !== PROBE_BATCH) throw new Error(`probe complete settled ${done.length} of ${PROBE_BATCH}`);
    if (i >= WARMUP) { claims.push(...c); completes.push(...d); }
  }
  await sql`reset role`;
  return { claim: timing(claims), complete: timing(completes), ready };
}

type Counts = Map<string, number>;
async function tupleWrites(sql: postgres.Sql): Promise<Counts> {
  const rows = await sql<{ rel: string; n: string }[]>`
    select schemaname || '.' || relname as rel, n_tup_ins + n_tup_upd + n_tup_del as n from pg_stat_user_tables`;
  return new Map(rows.map((r) => [r.rel, Number(r.n)]));
}

async function runningJobs(server: BenchServer): Promise<RunningResult> {
  const db = await server.freshDatabase('migrated');
  const sql = open(db.url); // superuser: fill, sizes, statistics; the heartbeat connection stays open
  try {
    await broadcasts(sql, false);
    await fill(sql, RUNNING + 2 * (WARMUP + PROBES) * PROBE_BATCH);
    await broadcasts(sql, true);
    await sql`vacuum analyze`;
    const empty = await probe(sql);
    await broadcasts(sql, false);
    const perWorker = Math.ceil(RUNNING / RUNNING_WORKERS);
    await sql`set role service_role`;
    const held: Lease[][] = [];
    const c0 = performance.now();
    for (let w = 0; w < RUNNING_WORKERS; w++) held.push(await claim(sql, `cap-run-${w}`, Math.min(perWorker, RUNNING - held.flat().length)));
    log(`${int(RUNNING)} jobs claimed by ${RUNNING_WORKERS} workers in ${((performance.now() - c0) / 1000).toFixed(1)} s`);
    await sql`reset role`;
    await broadcasts(sql, true);
    await sql`vacuum analyze`;
    const loaded = await probe(sql);
    const sizes: { rel: string; rows: number; bytes: number }[] = [];
    for (const rel of ['supaqueue.job_leases', 'supaqueue.workers', 'public.job_queue']) {
      const [s] = await sql.unsafe(`select count(*)::int as rows, pg_total_relation_size('${rel}')::float8 as bytes from ${rel}`);
      sizes.push({ rel, rows: s.rows as number, bytes: s.bytes as number });
    }
    // Autovacuum's own WAL must not land in the measured round.
    const tables = await sql<{ t: string }[]>`select format('%I.%I', n.nspname, c.relname) as t from pg_class c
      join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'r' and n.nspname in ('public', 'supaqueue', 'realtime')`;
    for (const { t } of tables) await sql.unsafe(`alter table ${t} set (autovacuum_enabled = false)`);
    await sql`set role service_role`;
    await sql`select pg_stat_force_next_flush()`;
    const [before, w0] = [await tupleWrites(sql), await walPosition(sql)];
    const r0 = performance.now();
    for (const [w, jobs] of held.entries()) await beat(sql, `cap-run-${w}`, jobs);
    const seconds = (performance.now() - r0) / 1000;
    const wal = await walSince(sql, w0);
    await sql`select pg_stat_force_next_flush()`;
    await sql`select 1`;
    const after = await tupleWrites(sql);
    const writes = [...after].map(([rel, n]) => [rel, n - (before.get(rel) ?? 0)] as const).filter(([, n]) => n > 0)
      .map(([rel, n]) => `${rel} ${int(n)}`).join(', ') || 'none';
    return { empty, loaded, sizes, round: { bytes: wal.bytes, fpi: wal.fpi, seconds, writes } };
  } finally {
    await sql.end({ timeout: 5 });
    await db.drop();
  }
}

// ---------------------------------------------------------------------------------------------------

export async function runCapacityBench(server: BenchServer): Promise<string> {
  const t0 = Date.now();
  const byHeld = await heartbeatByHeld(server);
  const rates: RateResult[] = [];
  for (const n of WORKER_COUNTS) {
    const r = await heartbeatRate(server, n);
    rates.push(r);
    log(`${n} workers: ${int(r.calls)} calls/s, pg ${f2(r.pgCores)} cores, node ${f2(r.nodeCores)} cores`);
  }
  const run = await runningJobs(server);
  const heldRow = (label: string, r: HeldCost) => `| ${label} | ${f2(r.t.median)} | ${f2(r.t.p95)} | ${int(r.calls)} | ${f2(r.pgCpuMs)} | ${f2(r.nodeCpuMs)} | ${int(r.walPerCall)} |`;
  const ms = (t: Timing) => `${f2(t.median)} / ${f2(t.p95)}`;
  const perHeld = run.round.bytes / RUNNING;
  return [
    '## Capacity: what one Postgres of this size sustains',
    '',
    `Measured on this run's server (see the machine line at the top; its cores are shared with the benchmark client and, on these machines, with other work: read these as a floor). `
      + `Every call is made as worker/db.ts makes it, as service_role: \`heartbeat_jobs(ids, lease_ids, ${LEASE_SECONDS}, worker_id, track_session => true)\` with every job the worker holds; `
      + `jobs are enqueued through \`enqueue_jobs\` (${TENANTS} tenants) and claimed with \`claim_jobs\` in batches of up to ${int(CLAIM_CHUNK)}; a fresh database per table, VACUUM ANALYZE after filling. `
      + 'Times are round trips seen by the client (postgres.js, arrays of ids out, one row per job back). Claim + complete jobs/s: see the engine section.',
    '',
    `### Heartbeat cost by jobs held: one worker, one connection, after ${WARMUP} warm-up calls`,
    '',
    `Median and p95 of the first ${BEATS} calls (wall time at the client, so they include this machine's load); the calls go on until ${CPU_MIN_S} s has passed for the per-call figures: `
      + 'CPU of the calling backend process (/proc) and of this Node process per call, and WAL per call. CPU time is what a busy machine inflates least. '
      + 'The lease table is analyzed after each claim, as autovacuum does within about a minute; the last row is measured before that ANALYZE, with statistics taken while no job was held.',
    '',
    '| jobs held by the worker | median ms | p95 ms | calls | backend CPU ms / call | Node CPU ms / call | WAL bytes / call |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...byHeld.steady.map((r) => heldRow(`${int(r.held)}`, r)),
    heldRow(`${int(byHeld.stale.held)}: diagnostic, lease statistics from when the table was empty (before autovacuum's next ANALYZE)`, byHeld.stale),
    '',
    `### Aggregate heartbeat rate: N workers heartbeating in a tight loop for ${LOOP_S} s`,
    '',
    `Each worker has its own worker id and holds ${JOBS_PER_WORKER} jobs; each loops heartbeat_jobs back to back on its own connection (when max_connections leaves fewer, some connections carry two workers). `
      + `The lease table is analyzed after the claims; ${WARM_S} s of warm-up is not counted. A worker beats every ${HEARTBEAT_INTERVAL_MS} ms by default, so workers supported = calls/s × ${HEARTBEAT_INTERVAL_MS / 1000}. `
      + 'CPU = CPU seconds of every process of this Postgres server (from /proc) and of this Node process, per wall second (1.00 = one core busy); '
      + 'Postgres CPU ms / call = the server\'s CPU time per heartbeat, which bounds the rate a server with more idle cores would reach.',
    '',
    '| workers | connections | heartbeats / s | median / p95 ms per call | Postgres CPU (cores) | Postgres CPU ms / call | Node CPU (cores) | workers supported at the default interval |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rates.map((r) => `| ${int(r.workers)} | ${int(r.connections)} | **${int(r.calls)}** | ${ms(r.t)} | ${f2(r.pgCores)} | ${f2((r.pgCores / r.calls) * 1000)} | ${f2(r.nodeCores)} | **${int(r.calls / BEATS_PER_WORKER_S)}** |`),
    '',
    `### ${int(RUNNING)} running jobs (claimed and held by ${RUNNING_WORKERS} workers)`,
    '',
    `A claim of ${PROBE_BATCH} ready jobs by one more worker and the complete of those ${PROBE_BATCH} (\`complete_jobs\`), ${PROBES} of each after ${WARMUP} warm-up, `
      + `before the ${int(RUNNING)} jobs were claimed and while they are held (VACUUM ANALYZE before each). `
      + `Then one heartbeat round: each of the ${RUNNING_WORKERS} workers sends one heartbeat_jobs with all ${int(Math.ceil(RUNNING / RUNNING_WORKERS))} of its jobs (autovacuum off during it). `
      + `The Realtime broadcast triggers are off only while the jobs are enqueued and the ${int(RUNNING)} claimed (setup), on for every measured call. `
      + 'WAL = `pg_current_wal_insert_lsn()` difference (server-wide), FPI = full-page images in it; rows written = `n_tup_ins + n_tup_upd + n_tup_del` of `pg_stat_user_tables`.',
    '',
    '| running jobs | ready jobs | claim of 10: median / p95 ms | complete of 10: median / p95 ms |',
    '|---:|---:|---:|---:|',
    `| 0 | ${int(run.empty.ready)} | ${ms(run.empty.claim)} | ${ms(run.empty.complete)} |`,
    `| ${int(RUNNING)} | ${int(run.loaded.ready)} | ${ms(run.loaded.claim)} | ${ms(run.loaded.complete)} |`,
    '',
    '| table (with its indexes and TOAST) | rows | pg_total_relation_size | bytes / row |',
    '|---|---:|---:|---:|',
    ...run.sizes.map((s) => `| \`${s.rel}\` | ${int(s.rows)} | ${mib(s.bytes)} | ${s.rows ? int(s.bytes / s.rows) : '–'} |`),
    '',
    `| one heartbeat round of ${RUNNING_WORKERS} workers holding ${int(RUNNING)} jobs | |`,
    '|---|---:|',
    `| time (one connection, calls in sequence) | ${f2(run.round.seconds)} s |`,
    `| WAL written | ${int(run.round.bytes)} bytes (${f2(perHeld)} per held job; ${int(run.round.bytes / RUNNING_WORKERS)} per worker) |`,
    `| full-page images in it | ${int(run.round.fpi)} |`,
    `| rows written | ${run.round.writes} |`,
    '',
    `_Capacity section took ${Math.round((Date.now() - t0) / 1000)} s._`,
    '',
  ].join('\n');
}
