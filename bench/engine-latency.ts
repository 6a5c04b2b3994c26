/**
 * Claim latency against the size of the queue: median ms per claim_jobs call (batch 10, one connection,
 * as service_role) with backlogs from 1k to 1M pending jobs and from 10 to 10,000 tenants. A fair queue
 * must not get slower as one of these grows, so the numbers should stay flat.
 *
 * Each case is measured twice on the same backlog: right after the burst that built it (no ANALYZE ran:
 * autovacuum is off on the queue tables while loading, so the planner still has the freshly migrated
 * database's statistics; the case planner overrides were written for), then after VACUUM ANALYZE.
 */
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import type { BenchServer } from './lib/db.ts';
import { timePositions, type PositionTiming } from './lib/position.ts';

export const CALLS = 60;
const WARMUP = 10;
export const BATCH = 10;
/** Jobs per enqueue_jobs call while building a backlog. */
export const FILL_CHUNK = 5_000;

/** Distinct submitters of a userLimited case's jobs. */
export const SUBMITTERS = 1_000;
/** The tier a userLimited case's tenants get (its max_active_jobs_per_user is far below each user's backlog). */
export const SUBMITTER_TIER = 'pro';

/**
 * limited: every tenant has max_concurrent_jobs. userLimited: every job has a submitter (SUBMITTERS users)
 * on tier SUBMITTER_TIER, with their counter rows. positions: also time job_position (after ANALYZE).
 */
export interface LatencyCase { backlog: number; tenants: number; limited?: boolean; userLimited?: boolean; positions?: boolean }
export interface Timing { medianMs: number; p95Ms: number; firstMs: number }
export interface LatencyResult extends LatencyCase { burst: Timing; analyzed: Timing; setupS: number; jobsPerS: number; positionTimes?: PositionTiming[] }

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

/** Tables of the queue (public + private schema): autovacuum off while loading, back on after. */
async function setAutovacuum(sql: postgres.Sql, on: boolean): Promise<void> {
  const tables = await sql<{ t: string }[]>`
    select format('%I.%I', n.nspname, c.relname) as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind = 'r' and n.nspname in ('public', 'supaqueue')`;
  for (const { t } of tables) await sql.unsafe(`alter table ${t} ${on ? 'reset (autovacuum_enabled)' : 'set (autovacuum_enabled = false)'}`);
}

/**
 * Builds the backlog the way producers do: `enqueue_jobs` as service_role in chunks of FILL_CHUNK,
 * tenants round-robin (so enqueue itself writes every row and table it writes for a real job, fair tags
 * and ready line included). Only the Realtime broadcast triggers are off while filling (they write
 * realtime.messages, nothing the claim reads; at ~2 messages per job they would make 1M jobs take
 * many minutes); the statistics triggers stay on. Returns jobs/s of the fill.
 */
async function fill(sql: postgres.Sql, c: LatencyCase, count = c.backlog): Promise<number> {
  if (count === c.backlog) {
    await sql`insert into public.tenants (name, max_concurrent_jobs)
              select 'bench-' || lpad(g::text, 5, '0'), ${c.limited ? 1000 : null}::int from generate_series(1, ${c.tenants}) g`;
  }
  const broadcast = (await sql<{ tgname: string }[]>`select tgname from pg_trigger where tgrelid = 'public.job_queue'::regclass
                            and not tgisinternal and tgname like '%realtime%'`).map((r) => r.tgname);
  for (const t of broadcast) await sql.unsafe(`alter table public.job_queue disable trigger ${t}`);
  await setAutovacuum(sql, false);
  const tenants = (await sql<{ id: string }[]>`select id from public.tenants order by name`).map((r) => r.id);
  // The same SUBMITTERS ids on every fill of a case (no foreign key: any uuid is a user id here).
  const users = c.userLimited ? Array.from({ length: SUBMITTERS }, (_, u) => `00000000-0000-4000-8000-${u.toString(16).padStart(12, '0')}`) : [];
  await sql`set role service_role`;
  const t0 = performance.now();
  for (let i = 0; i < count; i += FILL_CHUNK) {
    const specs = Array.from({ length: Math.min(FILL_CHUNK, count - i) }, (_, k) => ({
      tenant_id: tenants[(i + k) % c.tenants], type: 'bench.job', ...(c.userLimited ? { submitted_by: users[(i + k) % SUBMITTERS] } : {}),
    }));
    await sql`select count(*) from public.enqueue_jobs(${JSON.stringify(specs)}::text::jsonb)`;
  }
  const rate = count / ((performance.now() - t0) / 1000);
  await sql`reset role`;
  for (const t of broadcast) await sql.unsafe(`alter table public.job_queue enable trigger ${t}`);
  return rate;
}

/**
 * userLimited cases: the backlog is built with no tier (service-role enqueues naming a user count
 * against the user's limit, and each user has far more than SUBMITTER_TIER allows); then every tenant
 * gets the tier and every submitter the counter row reserve_user_slot would have made, with its exact
 * count of pending + processing jobs. limit = false takes the tier off again (before a refill).
 */
async function limitSubmitters(sql: postgres.Sql, limit: boolean): Promise<void> {
  await sql`update public.tenants set tier = ${limit ? SUBMITTER_TIER : null}`;
  if (!limit) return;
  await sql`delete from supaqueue.user_active_jobs`;
  await sql`insert into supaqueue.user_active_jobs (tenant_id, user_id, active)
            select tenant_id, submitted_by, count(*) from public.job_queue
             where submitted_by is not null and status in ('pending', 'processing') group by 1, 2`;
}

/** WARMUP + CALLS claims of BATCH (each completed, untimed); the first call is reported on its own. */
async function timeClaims(sql: postgres.Sql): Promise<Timing> {
  await sql`set role service_role`;
  const times: number[] = [];
  let firstMs = NaN;
  for (let i = 0; i < WARMUP + CALLS; i++) {
    const start = performance.now();
    const jobs = await sql`select id, lease_id from public.claim_jobs('latency', null, ${BATCH}::int, 30::float8)`;
    const ms = performance.now() - start;
    if (jobs.length !== BATCH) throw new Error(`claim returned ${jobs.length} of ${BATCH}`);
    if (i === 0) firstMs = ms;
    if (i >= WARMUP) times.push(ms);
    await sql`select count(*) from public.complete_jobs(${jobs.map((j) => j.id)}::uuid[], ${jobs.map((j) => j.lease_id)}::uuid[])`;
  }
  await sql`reset role`;
  return { medianMs: quantile(times, 0.5), p95Ms: quantile(times, 0.95), firstMs };
}

/**
 * One case on a fresh database: right after the burst, then (the claimed jobs enqueued again, so the
 * backlog has its size) after VACUUM ANALYZE + CHECKPOINT.
 */
export async function measureLatency(server: BenchServer, c: LatencyCase): Promise<LatencyResult> {
  const db = await server.freshDatabase('migrated');
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const t0 = performance.now();
    const jobsPerS = await fill(sql, c);
    const setupS = (performance.now() - t0) / 1000;
    if (c.userLimited) await limitSubmitters(sql, true);
    const burst = await timeClaims(sql);
    if (c.userLimited) await limitSubmitters(sql, false);
    await fill(sql, c, BATCH * (WARMUP + CALLS)); // the same backlog again for the second pass
    if (c.userLimited) await limitSubmitters(sql, true);
    await setAutovacuum(sql, true);
    await sql`vacuum analyze`;
    await sql`checkpoint`;
    const analyzed = await timeClaims(sql);
    const positionTimes = c.positions ? await timePositions(sql) : undefined;
    return { ...c, burst, analyzed, setupS, jobsPerS, positionTimes };
  } finally {
    await sql.end({ timeout: 5 });
    await db.drop();
  }
}

/** Functions that force the planner (enable_* settings in their SET clauses), for the summary. */
export async function plannerOverrides(server: BenchServer): Promise<string[]> {
  const db = await server.freshDatabase('migrated');
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ f: string }[]>`
      select p.oid::regprocedure::text || ' (' || array_to_string(p.proconfig, ', ') || ')' as f
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
       where n.nspname in ('public', 'supaqueue') and exists (select 1 from unnest(p.proconfig) s where s like 'enable\\_%')
       order by 1`;
    return rows.map((r) => r.f);
  } finally {
    await sql.end({ timeout: 5 });
    await db.drop();
  }
}
