/**
 * Issue 11: what one job's life cycle writes (`npm run bench -- lifecycle`). supaqueue: enqueue_job,
 * claim_jobs, 10 × heartbeat_jobs, complete_jobs, as service_role; graphile-worker: add_job, its
 * worker's own claim query (get_job) and complete query, copied from the installed
 * node_modules/graphile-worker/dist/{helpers,sql/getJobs,sql/completeJobs}.js (it has no heartbeats).
 *
 * Each phase runs for all N jobs, then the work connection forces its statistics out
 * (pg_stat_force_next_flush) and a second connection reads pg_stat_user_tables (every table of the
 * database: queue tables, private schema, statistics and Realtime tables alike) and the WAL position.
 * Per job = the phase's delta / N. One CHECKPOINT before the first phase, none in between, so the
 * full-page images (FPI) of first touches land in whichever phase touches a page first.
 */
import pg from 'pg';
import postgres from 'postgres';
import type { BenchServer } from './lib/db.ts';
import { record } from './lib/targets.ts';

/** Jobs per run, by claim batch (batch 1 makes 13 calls per job; per-job counts do not depend on N). */
const SIZE = Number(process.env.BENCH_LIFECYCLE_JOBS ?? 1_000);
const RUNS_BY_BATCH: [batch: number, jobs: number][] = [[1, Math.ceil(SIZE * 0.3)], [10, SIZE]];
let N = SIZE; // the current run's job count
const HEARTBEATS = 10;
const TENANTS = 10;
const LEASE_SECONDS = 600; // long enough that no lease ends during the phases
const notes = { heartbeat: '' };
const log = (m: string) => process.stderr.write(`[lifecycle bench] ${m}\n`);

interface Counters { ins: number; upd: number; hot: number; del: number }
interface Snapshot { tables: Map<string, Counters>; lsn: string; fpi: number }
interface Phase { name: string; tables: Map<string, Counters>; walBytes: number; fpi: number }

const payload = (i: number) => ({ i, to: `user-${i}@example.com`, template: 'welcome' });
const zero = (): Counters => ({ ins: 0, upd: 0, hot: 0, del: 0 });

async function snapshot(reader: postgres.Sql): Promise<Snapshot> {
  const rows = await reader<{ rel: string; ins: string; upd: string; hot: string; del: string }[]>`
    select schemaname || '.' || relname as rel, n_tup_ins as ins, n_tup_upd as upd, n_tup_hot_upd as hot, n_tup_del as del
      from pg_stat_user_tables`;
  const [w] = await reader<{ lsn: string; fpi: string }[]>`
    select pg_current_wal_insert_lsn()::text as lsn, (select wal_fpi from pg_stat_wal) as fpi`;
  const tables = new Map(rows.map((r) => [r.rel, { ins: +r.ins, upd: +r.upd, hot: +r.hot, del: +r.del }]));
  return { tables, lsn: w.lsn, fpi: Number(w.fpi) };
}

async function phaseDelta(reader: postgres.Sql, name: string, a: Snapshot, b: Snapshot): Promise<Phase> {
  const tables = new Map<string, Counters>();
  for (const [rel, y] of b.tables) {
    const x = a.tables.get(rel) ?? zero();
    const d = { ins: y.ins - x.ins, upd: y.upd - x.upd, hot: y.hot - x.hot, del: y.del - x.del };
    if (d.ins || d.upd || d.del) tables.set(rel, d);
  }
  const [{ bytes }] = await reader<{ bytes: string }[]>`select pg_wal_lsn_diff(${b.lsn}::pg_lsn, ${a.lsn}::pg_lsn)::bigint as bytes`;
  return { name, tables, walBytes: Number(bytes), fpi: b.fpi - a.fpi };
}

/** Runs the phases in order; `flush` makes the work connection's statistics visible before each snapshot. */
async function measure(reader: postgres.Sql, flush: () => Promise<void>, phases: [string, () => Promise<void>][]): Promise<Phase[]> {
  // Autovacuum would add WAL of its own in the middle of a phase; the tuple counters do not depend on it.
  const tables = await reader<{ t: string }[]>`
    select format('%I.%I', n.nspname, c.relname) as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind = 'r' and n.nspname in ('public', 'supaqueue', 'graphile_worker')`;
  for (const { t } of tables) await reader.unsafe(`alter table ${t} set (autovacuum_enabled = false)`);
  // Writes made while preparing (tenants, task ids) must not be flushed into the first phase.
  await flush();
  await reader`select pg_stat_force_next_flush()`;
  await reader`checkpoint`;
  const out: Phase[] = [];
  let before = await snapshot(reader);
  for (const [name, run] of phases) {
    await run();
    await flush();
    const after = await snapshot(reader);
    out.push(await phaseDelta(reader, name, before, after));
    before = after;
  }
  return out;
}

async function supaqueue(server: BenchServer, batch: number): Promise<Phase[]> {
  const db = await server.freshDatabase('migrated');
  const reader = postgres(db.url, { max: 1, onnotice: () => {} });
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const tenants = (await reader`insert into public.tenants (name) select 'lc-' || g from generate_series(1, ${TENANTS}) g returning id`).map((r) => r.id as string);
    // The worker's call (worker/db.ts): with its worker id and track_session where the engine has them.
    const [{ perWorker }] = await reader`select to_regprocedure('public.heartbeat_jobs(uuid[],uuid[],double precision,text,boolean)') is not null as "perWorker"`;
    await sql`set role service_role`;
    const held: { id: string; lease_id: string }[][] = [];
    const beat = (b: { id: string; lease_id: string }[], w: number) => (perWorker
      ? sql<{ lease_valid: boolean }[]>`select lease_valid from public.heartbeat_jobs(${b.map((j) => j.id)}::uuid[], ${b.map((j) => j.lease_id)}::uuid[], ${LEASE_SECONDS}::float8, ${`lc-${w}`}::text, true)`
      : sql<{ lease_valid: boolean }[]>`select lease_valid from public.heartbeat_jobs(${b.map((j) => j.id)}::uuid[], ${b.map((j) => j.lease_id)}::uuid[], ${LEASE_SECONDS}::float8)`);
    const flush = async () => { await sql`select pg_stat_force_next_flush()`; await sql`select 1`; };
    notes.heartbeat = perWorker ? 'heartbeat_jobs(ids, lease_ids, lease_seconds, worker_id, track_session => true), as worker/db.ts calls it' : 'heartbeat_jobs(ids, lease_ids, lease_seconds)';
    return await measure(reader, flush, [
      ['enqueue (enqueue_job, one call per job)', async () => {
        for (let i = 0; i < N; i++) await sql`select job_id from public.enqueue_job(${tenants[i % TENANTS]}::uuid, 'bench.job', ${JSON.stringify(payload(i))}::text::jsonb)`;
      }],
      [`claim (claim_jobs, batch ${batch})`, async () => {
        // One worker id per batch: a worker with concurrency `batch` holds one batch and beats for it.
        for (let w = 0; held.flat().length < N; w++) {
          const rows = await sql<{ id: string; lease_id: string }[]>`select id, lease_id from public.claim_jobs(${`lc-${w}`}, null, ${batch}::int, ${LEASE_SECONDS}::float8)`;
          if (rows.length === 0) throw new Error(`claim returned nothing with ${held.flat().length} of ${N} held`);
          held.push([...rows]);
        }
      }],
      [`${HEARTBEATS} heartbeats (heartbeat_jobs per held batch)`, async () => {
        for (let r = 0; r < HEARTBEATS; r++) {
          for (const [w, b] of held.entries()) {
            const rows = await beat(b, w);
            if (rows.some((x) => !x.lease_valid)) throw new Error('a lease was lost during the heartbeat phase');
          }
        }
      }],
      ['complete (complete_jobs per held batch)', async () => {
        for (const b of held) await sql`select id from public.complete_jobs(${b.map((j) => j.id)}::uuid[], ${b.map((j) => j.lease_id)}::uuid[])`;
      }],
    ]);
  } finally {
    await Promise.all([reader.end({ timeout: 5 }), sql.end({ timeout: 5 })]);
    await db.drop();
  }
}

/** graphile-worker's get_job text (dist/sql/getJobs.js: strategy 2, no flags, database time). */
function graphileGetJobs(batch: number): string {
  const head = batch > 1 ? 'j_raw' : 'j';
  const dedupe = batch > 1 ? `,
j as (
  select distinct on (job_queue_id, case when job_queue_id is null then id end)
      job_queue_id, priority, run_at, id
    from j_raw
    order by job_queue_id, case when job_queue_id is null then id end, priority asc, run_at asc
)` : '';
  return `with ${head} as (
  select jobs.job_queue_id, jobs.priority, jobs.run_at, jobs.id
    from "graphile_worker"._private_jobs as jobs
    where jobs.is_available = true
    and run_at <= now()
    and task_id = any($2::int[])
    and (
      jobs.job_queue_id is null
      or
      jobs.job_queue_id in (
        select id from "graphile_worker"._private_job_queues as job_queues
        where job_queues.is_available = true
        for update
        skip locked
      )
    )
    order by priority asc, run_at asc
    limit ${batch}
    for update
    skip locked
)${dedupe},
q as (
  update "graphile_worker"._private_job_queues as job_queues
    set locked_by = $1::text, locked_at = now()
    from j
    where job_queues.id = j.job_queue_id
)
  update "graphile_worker"._private_jobs as jobs
    set attempts = jobs.attempts + 1, locked_by = $1::text, locked_at = now()
    from j
    where jobs.id = j.id
    returning *`;
}

const GRAPHILE_ADD_JOB = `select * from "graphile_worker".add_job(identifier => $1::text, payload => $2::json, queue_name => $3::text,
  run_at => $4::timestamptz, max_attempts => $5::int, job_key => $6::text, priority => $7::int, flags => $8::text[], job_key_mode => $9::text)`;

async function graphile(server: BenchServer, batch: number): Promise<Phase[]> {
  const db = await server.freshDatabase('empty');
  const { runMigrations, Logger } = await import('graphile-worker');
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  pool.on('error', () => {});
  await runMigrations({ pgPool: pool, logger: new Logger(() => () => {}) });
  await pool.end();
  const client = new pg.Client({ connectionString: db.url });
  client.on('error', () => {});
  await client.connect();
  const reader = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    // What the worker does at start (taskIdentifiers.js): register its task identifiers, read their ids.
    await client.query(`insert into "graphile_worker"._private_tasks as tasks (identifier) values ('noop') on conflict do nothing`);
    const { rows: [task] } = await client.query(`select id from "graphile_worker"._private_tasks where identifier = 'noop'`);
    const getJobs = graphileGetJobs(batch);
    const held: string[][] = [];
    const flush = async () => { await client.query('select pg_stat_force_next_flush()'); await client.query('select 1'); };
    return await measure(reader, flush, [
      ['enqueue (add_job, one call per job)', async () => {
        for (let i = 0; i < N; i++) await client.query(GRAPHILE_ADD_JOB, ['noop', JSON.stringify(payload(i)), null, null, null, null, null, null, null]);
      }],
      [`claim (get_job, batch ${batch})`, async () => {
        for (let w = 0; held.flat().length < N; w++) {
          const { rows } = await client.query(getJobs, [`lc-${w}`, [task.id]]);
          if (rows.length === 0) throw new Error(`get_job returned nothing with ${held.flat().length} of ${N} held`);
          held.push(rows.map((r) => String(r.id)));
        }
      }],
      ['complete (complete_job / complete_jobs per batch)', async () => {
        for (const b of held) {
          if (b.length === 1) await client.query('delete from "graphile_worker"._private_jobs as jobs where id = $1::bigint', [b[0]]);
          else await client.query('delete from "graphile_worker"._private_jobs as jobs using unnest($1::bigint[]) n(n) where id = n', [b]);
        }
      }],
    ]);
  } finally {
    await client.end().catch(() => {});
    await reader.end({ timeout: 5 });
    await db.drop();
  }
}

// ---------------------------------------------------------------------------------------------------

const sum = (p: Phase, f: (c: Counters, rel: string) => number) => [...p.tables].reduce((s, [rel, c]) => s + f(c, rel), 0);
const int = (x: number) => x.toLocaleString('en-US');
const per = (x: number) => (x / N).toFixed(2);
const JOB_QUEUE = 'public.job_queue';

function totalOf(phases: Phase[]): Phase {
  const tables = new Map<string, Counters>();
  for (const p of phases) {
    for (const [rel, c] of p.tables) {
      const t = tables.get(rel) ?? zero();
      tables.set(rel, { ins: t.ins + c.ins, upd: t.upd + c.upd, hot: t.hot + c.hot, del: t.del + c.del });
    }
  }
  return { name: '**whole life cycle**', tables, walBytes: phases.reduce((s, p) => s + p.walBytes, 0), fpi: phases.reduce((s, p) => s + p.fpi, 0) };
}

function row(system: string, batch: number, p: Phase, jobTable: string): string {
  const jq = p.tables.get(jobTable) ?? zero();
  return `| ${system} | ${batch} | ${p.name} | ${per(sum(p, (c) => c.ins))} | ${per(sum(p, (c) => c.upd))} | ${per(sum(p, (c) => c.hot))} | ${per(sum(p, (c) => c.del))} `
    + `| ${per(jq.upd)} / ${per(jq.hot)} | ${Math.round(p.walBytes / N).toLocaleString('en-US')} | ${per(p.fpi)} |`;
}

function breakdown(system: string, batch: number, phases: Phase[]): string[] {
  const out: string[] = [];
  for (const p of phases) {
    const parts = [...p.tables].sort((a, b) => a[0].localeCompare(b[0]))
      .map(([rel, c]) => `${rel} ${[c.ins && `ins ${per(c.ins)}`, c.upd && `upd ${per(c.upd)} (HOT ${per(c.hot)})`, c.del && `del ${per(c.del)}`].filter(Boolean).join(', ')}`);
    out.push(`| ${system} | ${batch} | ${p.name} | ${parts.join('; ') || 'nothing'} |`);
  }
  return out;
}

export async function runLifecycleBench(server: BenchServer): Promise<string> {
  const t0 = Date.now();
  const rows: string[] = [];
  const detail: string[] = [];
  for (const [batch, jobs] of RUNS_BY_BATCH) {
    N = jobs;
    const s0 = Date.now();
    const sq = await supaqueue(server, batch);
    log(`supaqueue batch ${batch}: ${((Date.now() - s0) / 1000).toFixed(0)} s`);
    const g0 = Date.now();
    const gw = await graphile(server, batch);
    log(`graphile-worker batch ${batch}: ${((Date.now() - g0) / 1000).toFixed(0)} s`);
    for (const p of [...sq, totalOf(sq)]) rows.push(row('supaqueue', batch, p, JOB_QUEUE));
    for (const p of [...gw, totalOf(gw)]) rows.push(row('graphile-worker', batch, p, 'graphile_worker._private_jobs'));
    detail.push(...breakdown('supaqueue', batch, sq), ...breakdown('graphile-worker', batch, gw));
    const beats = sq.find((p) => p.name.includes('heartbeats'))!;
    const jq = beats.tables.get(JOB_QUEUE) ?? zero();
    rows.push(`| | | _${int(N)} jobs per run at batch ${batch}_ | | | | | | | |`);
    record({
      group: 'engine', section: 'lifecycle', met: jq.upd === 0,
      target: `heartbeats write no job record (batch ${batch}: \`public.job_queue\` n_tup_upd during ${HEARTBEATS} heartbeats = 0)`,
      measured: `${jq.upd} updates of job_queue for ${N} jobs (${per(jq.upd)}/job, HOT ${per(jq.hot)}); all tables ${per(sum(beats, (c) => c.upd))} upd/job, ${Math.round(beats.walBytes / N)} WAL bytes/job`,
    });
  }
  return [
    '## Write cost per job life cycle (issue 11)',
    '',
    `${RUNS_BY_BATCH.map(([b, n]) => `${int(n)} jobs at batch ${b}`).join(', ')}, each run in a fresh database; per-job values = the phase's totals / jobs. supaqueue: \`enqueue_job\` one call per job (${TENANTS} tenants round-robin), `
      + `\`claim_jobs\` in batches (one worker id per batch), ${HEARTBEATS} rounds of one heartbeat call per held batch (\`${notes.heartbeat}\`), \`complete_jobs\` per batch; all as service_role, one connection. `
      + 'graphile-worker 0.18: `add_job` one call per job (the query of `addJob`), its worker\'s `get_job` query (batch 1: no local queue; batch > 1: the local queue\'s batch fetch) '
      + 'and its complete query (`delete` of the job row), copied from the installed package; graphile-worker has no heartbeats (a job is locked for 4 hours; nothing is renewed). '
      + 'Counters: `n_tup_ins`, `n_tup_upd`, `n_tup_hot_upd`, `n_tup_del` of `pg_stat_user_tables` summed over every table of the database (after `pg_stat_force_next_flush()` on the working connection); '
      + '"job table upd / HOT" is the durable job record alone (`public.job_queue`, `graphile_worker._private_jobs`). WAL = `pg_current_wal_insert_lsn()` difference; FPI = full-page images (`pg_stat_wal.wal_fpi`, server-wide). '
      + 'Autovacuum is off on the measured tables during the run; one CHECKPOINT before the first phase.',
    '',
    '| queue | batch | phase | ins / job | upd / job | HOT upd / job | del / job | job table upd / HOT per job | WAL bytes / job | FPI / job |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    '### Which tables each phase wrote (per job)',
    '',
    '| queue | batch | phase | tables |',
    '|---|---:|---|---|',
    ...detail,
    '',
    `_Life cycle section took ${Math.round((Date.now() - t0) / 1000)} s._`,
    '',
  ].join('\n');
}
