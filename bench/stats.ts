/**
 * Issue 13: the dashboard's stats (`npx tsx bench/run.ts stats`). Two parts, one server, one run:
 *  1. the cost of public.job_stats (the overview endpoint's SQL) at 1M jobs and 10,000 tenants, as a
 *     member of the largest tenant, of a small one, and as a super admin (all tenants), next to the
 *     naive `count(*) ... group by status` it replaces;
 *  2. what the statistics triggers cost the hot path: claim + complete throughput and enqueue time with
 *     the triggers on and off (alternating runs, fresh databases).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import type { BenchServer } from './lib/db.ts';
import { ENGINE, JOBS, timedRun, type Contender } from './engine-throughput.ts';

const TOTAL = 1_000_000;
const TENANTS = 10_000;
const BIG_SHARE = 0.3; // the largest tenant holds 30% of all jobs
const HISTORY_TENANTS = 1_000; // tenants with a full 24 h per-minute history
const CALLS = 30;
const RUNS = 3;
const TRIGGERS = ['job_queue_stats_insert', 'job_queue_stats_update', 'job_queue_stats_delete'];

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const log = (m: string) => process.stderr.write(`[stats bench] ${m}\n`);
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

/**
 * 1M jobs: 30% in one tenant, the rest round-robin over 9,999; 60% completed in the last 24 h, 5% failed,
 * 5% cancelled, 30% pending (ready, with fair tags), 200 running. Counters come from the real triggers
 * (one bulk INSERT); per-minute history is written directly for HISTORY_TENANTS tenants and the totals.
 */
export async function fill(sql: postgres.Sql, TOTAL = 1_000_000, TENANTS = 10_000, HISTORY_TENANTS = 1_000): Promise<{ big: string; small: string }> {
  await sql`insert into public.tenants (name, max_concurrent_jobs, max_queued_jobs)
            select 'bench-' || g, 50, 100000 from generate_series(1, ${TENANTS}) g`;
  const [{ big, small }] = await sql`select min(id::text) as big, max(id::text) as small from public.tenants`;
  // Other row triggers on job_queue (e.g. Realtime broadcasts) are off while filling: they would cost
  // minutes per million rows and are not what this benchmark measures. The stats triggers stay on.
  const others = (await sql`select tgname from pg_trigger where tgrelid = 'public.job_queue'::regclass
                            and not tgisinternal and tgname not like 'job_queue_stats_%'`).map((r) => r.tgname as string);
  for (const t of others) await sql.unsafe(`alter table public.job_queue disable trigger ${t}`);
  // Tenants numbered 0..TENANTS-1, joined to the jobs by number.
  await sql`create temporary table bench_tenants as select id, (row_number() over (order by id))::int - 1 as k from public.tenants`;
  // Since the hot-path migration (20261130000600) scheduling state lives in private tables: the fair tag
  // in supaqueue.job_ready, leases in supaqueue.job_leases (+ the worker's row). Detected at run time.
  const [{ split }] = await sql`select to_regclass('supaqueue.job_ready') is not null as split`;
  await sql.unsafe(`
    insert into public.job_queue (tenant_id, type, status, payload, ${split ? '' : 'fair_key, locked_until, '}completed_at, attempts, worker_id, lease_id, started_at, created_at)
    select case when x.g < ${TOTAL * BIG_SHARE}::int then '${big}'::uuid else t.id end,
           (array['email.send', 'report.generate', 'webhook.deliver', 'image.resize'])[1 + x.g % 4],
           x.status, jsonb_build_object('customer', x.g % 5000),
           ${split ? '' : `case when x.status = 'pending' then x.g end, case when x.status = 'processing' then now() + interval '1 hour' end,`}
           case when x.status in ('completed', 'failed', 'cancelled') then now() - make_interval(secs => x.g % 86400) end,
           case when x.status = 'pending' then 0 else 1 end,
           case when x.status = 'processing' then 'bench' end, case when x.status = 'processing' then gen_random_uuid() end,
           case when x.status <> 'pending' then now() - make_interval(secs => x.g % 86400) end,
           now() - make_interval(secs => x.g % 86400)
    from (select g, (case when g % 5000 = 1 then 'processing' when g % 20 < 12 then 'completed' when g % 20 = 12 then 'failed'
                          when g % 20 = 13 then 'cancelled' else 'pending' end)::public.job_status as status
          from generate_series(0, ${TOTAL - 1}::int) g) x
    join bench_tenants t on t.k = x.g % ${TENANTS}::int`);
  if (split) {
    await sql`insert into supaqueue.job_ready (job_id, tenant_id, type, priority, fair_key)
              select id, tenant_id, type, priority, row_number() over (order by created_at desc, id)
                from public.job_queue where status = 'pending'`;
    await sql`insert into supaqueue.workers (id, expires_at) values ('bench', now() + interval '1 hour')`;
    await sql`insert into supaqueue.job_leases (job_id, lease_id, worker_id, tenant_id, claimed_at)
              select id, lease_id, worker_id, tenant_id, started_at from public.job_queue where status = 'processing'`;
  }
  for (const t of others) await sql.unsafe(`alter table public.job_queue enable trigger ${t}`);
  await sql`
    insert into supaqueue.job_minute_stats (tenant_id, minute, completed, failed)
    select x.id, date_trunc('minute', now()) - make_interval(mins => m), 10 + m % 30, m % 3
    from generate_series(0, 24 * 60) m,
         (select supaqueue.all_tenants() as id union all (select id from public.tenants order by id limit ${HISTORY_TENANTS})) x`;
  await sql`select supaqueue.fold_job_stats(1000000)`;
  await sql`vacuum analyze`;
  await sql`checkpoint`;
  return { big, small };
}

async function timeCalls(sql: postgres.Sql, run: () => Promise<unknown>): Promise<{ median: number; p95: number }> {
  const times: number[] = [];
  for (let i = 0; i < CALLS + 3; i++) {
    const t0 = performance.now();
    await run();
    if (i >= 3) times.push(performance.now() - t0);
  }
  return { median: quantile(times, 0.5), p95: quantile(times, 0.95) };
}

/** Runs as a signed-in user on its own session, the way the API runs a request (role + claims). */
async function asUser(url: string, userId: string): Promise<postgres.Sql> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  await sql`select set_config('request.jwt.claims', ${JSON.stringify({ sub: userId, role: 'authenticated' })}, false)`;
  await sql`set role authenticated`;
  return sql;
}

async function statsCost(server: BenchServer): Promise<string[]> {
  const db = await server.freshDatabase('migrated');
  const owner = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const t0 = performance.now();
    const { big, small } = await fill(owner);
    log(`filled ${int(TOTAL)} jobs / ${int(TENANTS)} tenants in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const [member, admin] = [randomUUID(), randomUUID()];
    await owner`insert into auth.users (id, aud, role, email) values (${member}, 'authenticated', 'authenticated', 'm@bench'), (${admin}, 'authenticated', 'authenticated', 'a@bench')`;
    await owner`insert into public.tenant_members (tenant_id, user_id) values (${big}, ${member}), (${small}, ${member})`;
    await owner`insert into supaqueue.super_admins (user_id) values (${admin})`;
    const [bigJobs] = await owner`select count(*)::int as n from public.job_queue where tenant_id = ${big}`;
    const m = await asUser(db.url, member);
    const a = await asUser(db.url, admin);
    const rows: string[] = [];
    const row = async (what: string, sql: postgres.Sql, run: () => Promise<unknown>) => {
      const r = await timeCalls(sql, run);
      log(`${what}: median ${r.median.toFixed(2)} ms`);
      rows.push(`| ${what} | ${r.median.toFixed(2)} | ${r.p95.toFixed(2)} |`);
    };
    await row(`job_stats, member, largest tenant (${int(bigJobs.n)} jobs), last hour`, m, () => m`select public.job_stats(${big}::uuid, 1)`);
    await row('job_stats, member, largest tenant, 24 h', m, () => m`select public.job_stats(${big}::uuid, 24)`);
    await row('job_stats, member, a small tenant, last hour', m, () => m`select public.job_stats(${small}::uuid, 1)`);
    await row(`job_stats, super admin, all ${int(TENANTS)} tenants, last hour`, a, () => a`select public.job_stats(null, 1)`);
    await row('job_stats, super admin, all tenants, 24 h', a, () => a`select public.job_stats(null, 24)`);
    await row('for comparison: count(*) by status, largest tenant', owner, () => owner`select status, count(*) from public.job_queue where tenant_id = ${big} group by 1`);
    await row('for comparison: count(*) by status, all jobs', owner, () => owner`select status, count(*) from public.job_queue group by 1`);
    await Promise.all([m.end(), a.end()]);
    return rows;
  } finally {
    await owner.end({ timeout: 5 });
    await db.drop();
  }
}

/** ENGINE with the statistics triggers disabled: the hot path as it was before this migration. */
const ENGINE_WITHOUT_STATS: Contender = {
  ...ENGINE,
  name: 'supaqueue without statistics triggers',
  async prepare(url) {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      for (const t of TRIGGERS) await sql.unsafe(`alter table public.job_queue disable trigger ${t}`);
    } finally {
      await sql.end();
    }
    await ENGINE.prepare(url);
  },
};

/** Seconds to enqueue `n` jobs one enqueue_job call at a time (service role), triggers on or off. */
async function enqueueSeconds(server: BenchServer, withStats: boolean, n: number): Promise<number> {
  const db = await server.freshDatabase('migrated');
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    if (!withStats) for (const t of TRIGGERS) await sql.unsafe(`alter table public.job_queue disable trigger ${t}`);
    const [t] = await sql`insert into public.tenants (name) values ('enqueue') returning id`;
    await sql`set role service_role`;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await sql`select public.enqueue_job(${t.id}::uuid, 'bench.job', ${sql.json({ i })})`;
    return (performance.now() - t0) / 1000;
  } finally {
    await sql.end({ timeout: 5 });
    await db.drop();
  }
}

async function triggerOverhead(server: BenchServer): Promise<string[]> {
  const rows: string[] = [];
  for (const batch of [10, 50]) {
    const on: number[] = [];
    const off: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      // Which goes first alternates too, so neither side always gets the fresher machine.
      if (r % 2 === 0) off.push(await timedRun(server, ENGINE_WITHOUT_STATS, batch));
      on.push(await timedRun(server, ENGINE, batch));
      if (r % 2 === 1) off.push(await timedRun(server, ENGINE_WITHOUT_STATS, batch));
      log(`claim+complete batch ${batch} run ${r + 1}: without ${int(off[r])}, with ${int(on[r])} jobs/s`);
    }
    const [a, b] = [quantile(off, 0.5), quantile(on, 0.5)];
    rows.push(`| claim + complete, batch ${batch} (jobs/s, ${int(JOBS)} jobs, 10 connections) | ${int(a)} | ${int(b)} | ${((b / a - 1) * 100).toFixed(1)}% | ${off.map(int).join(' / ')} → ${on.map(int).join(' / ')} |`);
  }
  const N = 2000;
  const off: number[] = [];
  const on: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    if (r % 2 === 0) off.push(N / await enqueueSeconds(server, false, N));
    on.push(N / await enqueueSeconds(server, true, N));
    if (r % 2 === 1) off.push(N / await enqueueSeconds(server, false, N));
    log(`single enqueue run ${r + 1}: without ${int(off[r])}, with ${int(on[r])} jobs/s`);
  }
  const [a, b] = [quantile(off, 0.5), quantile(on, 0.5)];
  rows.push(`| enqueue_job one at a time (jobs/s, ${int(N)} calls, 1 connection) | ${int(a)} | ${int(b)} | ${((b / a - 1) * 100).toFixed(1)}% | ${off.map(int).join(' / ')} → ${on.map(int).join(' / ')} |`);
  return rows;
}

/**
 * Per-call cost on one connection, triggers toggled in interleaved blocks on the same database (so the
 * machine's noise hits both alike): one enqueue_job, and one claim_jobs(10) + complete_jobs cycle.
 */
async function perCall(server: BenchServer): Promise<string[]> {
  const db = await server.freshDatabase('migrated');
  const owner = postgres(db.url, { max: 1, onnotice: () => {} });
  const svc = postgres(db.url, { max: 1, onnotice: () => {} });
  const BLOCKS = 10;
  const PER_BLOCK = 40;
  try {
    const [t] = await owner`insert into public.tenants (name) values ('per-call') returning id`;
    await owner`select count(*) from public.enqueue_jobs((select jsonb_agg(jsonb_build_object('tenant_id', ${t.id}::uuid, 'type', 'bench.job')) from generate_series(1, 5000)))`;
    await owner`vacuum analyze public.job_queue`;
    await svc`set role service_role`;
    const times = { on: { enqueue: [] as number[], cycle: [] as number[] }, off: { enqueue: [] as number[], cycle: [] as number[] } };
    for (let b = 0; b < BLOCKS; b++) {
      const state = b % 2 === 0 ? 'off' : 'on';
      for (const tg of TRIGGERS) await owner.unsafe(`alter table public.job_queue ${state === 'on' ? 'enable' : 'disable'} trigger ${tg}`);
      for (let i = 0; i < PER_BLOCK; i++) {
        let t0 = performance.now();
        await svc`select public.enqueue_job(${t.id}::uuid, 'bench.job', '{}'::jsonb)`;
        times[state].enqueue.push(performance.now() - t0);
        t0 = performance.now();
        const jobs = await svc`select id, lease_id from public.claim_jobs('per-call', null, 10, 30::float8)`;
        await svc`select count(*) from public.complete_jobs(${jobs.map((j) => j.id)}::uuid[], ${jobs.map((j) => j.lease_id)}::uuid[])`;
        times[state].cycle.push(performance.now() - t0);
      }
    }
    const row = (what: string, off: number[], on: number[]) => {
      const [a, c] = [quantile(off, 0.5), quantile(on, 0.5)];
      log(`${what}: off ${a.toFixed(3)} ms, on ${c.toFixed(3)} ms`);
      return `| ${what} (ms per call, median of ${off.length}) | ${a.toFixed(3)} | ${c.toFixed(3)} | ${((c / a - 1) * 100).toFixed(1)}% | +${(c - a).toFixed(3)} ms |`;
    };
    return [row('enqueue_job, one job', times.off.enqueue, times.on.enqueue), row('claim_jobs(10) + complete_jobs', times.off.cycle, times.on.cycle)];
  } finally {
    await Promise.all([owner.end({ timeout: 5 }), svc.end({ timeout: 5 })]);
    await db.drop();
  }
}

export async function runStatsBench(server: BenchServer): Promise<string> {
  const t0 = Date.now();
  const cost = await statsCost(server);
  const calls = await perCall(server);
  const overhead = await triggerOverhead(server);
  return [
    '## Dashboard stats (issue 13)',
    '',
    `### Cost of the stats endpoint's SQL at ${int(TOTAL)} jobs and ${int(TENANTS)} tenants (ms per call, ${CALLS} calls after warm-up)`,
    '',
    `\`public.job_stats\` (what \`GET /jobs/stats\` runs) as a signed-in user: counts by status and type from the`,
    'trigger-kept counters, the per-minute rollup, running jobs from the lease index and the oldest waiting job',
    `from each tenant's ready line. ${int(HISTORY_TENANTS)} tenants and the totals carry a full 24 h history.`,
    '',
    '| call | median ms | p95 ms |',
    '|---|---:|---:|',
    ...cost,
    '',
    `### What the statistics triggers cost the hot path (median of ${RUNS} runs each, alternating which goes first, fresh databases)`,
    '',
    'Per call, one connection, triggers switched off and on in interleaved blocks on one database:',
    '',
    '| call | triggers off | triggers on | change | added |',
    '|---|---:|---:|---:|---:|',
    ...calls,
    '',
    'Throughput, 10 connections (noisier: whole runs on fresh databases):',
    '',
    '| workload | triggers off | triggers on | change | runs (off → on) |',
    '|---|---:|---:|---:|---|',
    ...overhead,
    '',
    `_Stats section took ${Math.round((Date.now() - t0) / 1000)} s._`,
    '',
  ].join('\n');
}
