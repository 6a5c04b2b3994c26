/**
 * Claim latency against the size of the queue: median ms per claim_jobs call (batch 10, one connection,
 * as service_role) with backlogs from 1k to 1M pending jobs and from 10 to 10,000 tenants. A fair queue
 * must not get slower as one of these grows, so the numbers should stay flat.
 */
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import type { BenchServer } from './lib/db.ts';

export const CALLS = 60;
const WARMUP = 10;
export const BATCH = 10;

export interface LatencyCase { backlog: number; tenants: number; limited?: boolean }
export interface LatencyResult extends LatencyCase { medianMs: number; p95Ms: number; setupS: number }

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

/**
 * Fills a fresh database in one INSERT ... SELECT generate_series: valid pending jobs spread round-robin
 * over the tenants, each with the fair tag enqueue would have given it (its tenant's round number).
 */
async function fill(sql: postgres.Sql, c: LatencyCase): Promise<void> {
  await sql`insert into public.tenants (name, max_concurrent_jobs)
            select 'bench-' || g, ${c.limited ? 1000 : null}::int from generate_series(1, ${c.tenants}) g`;
  await sql`
    insert into public.job_queue (tenant_id, type, payload, fair_key)
    select t.ids[1 + g % ${c.tenants}::int], 'bench.job', '{}'::jsonb, g / ${c.tenants}::int
    from generate_series(0, ${c.backlog - 1}::int) g,
         (select array_agg(id order by id) as ids from public.tenants) t`;
  await sql`vacuum analyze public.job_queue`;
  await sql`checkpoint`;
}

/** One case on a fresh database: warm-up calls, then CALLS timed claims (each completed, untimed). */
export async function measureLatency(server: BenchServer, c: LatencyCase): Promise<LatencyResult> {
  const db = await server.freshDatabase('migrated');
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const t0 = performance.now();
    await fill(sql, c);
    const setupS = (performance.now() - t0) / 1000;
    await sql`set role service_role`;
    const times: number[] = [];
    for (let i = 0; i < WARMUP + CALLS; i++) {
      const start = performance.now();
      const jobs = await sql`select id, lease_id from public.claim_jobs('latency', null, ${BATCH}::int, 30::float8)`;
      const ms = performance.now() - start;
      if (jobs.length !== BATCH) throw new Error(`claim returned ${jobs.length} of ${BATCH}`);
      if (i >= WARMUP) times.push(ms);
      await sql`select count(*) from public.complete_jobs(${jobs.map((j) => j.id)}::uuid[], ${jobs.map((j) => j.lease_id)}::uuid[])`;
    }
    return { ...c, medianMs: quantile(times, 0.5), p95Ms: quantile(times, 0.95), setupS };
  } finally {
    await sql.end({ timeout: 5 });
    await db.drop();
  }
}
