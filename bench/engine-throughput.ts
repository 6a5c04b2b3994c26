/**
 * Claim + complete throughput of the engine (claim_jobs / complete_jobs as service_role) against the
 * ceiling: a raw `FOR UPDATE SKIP LOCKED` claim + complete loop on a bare table with no tenancy. Both
 * use the `postgres` driver with the same settings, 10 connections, jobs enqueued before the clock starts
 * and a CHECKPOINT before timing. Runs alternate raw/engine so machine noise hits both alike.
 */
import { performance } from 'node:perf_hooks';
import postgres, { type Sql } from 'postgres';
import type { BenchServer } from './lib/db.ts';

/** BENCH_ENGINE_JOBS shrinks the runs while developing the benchmark. */
export const JOBS = Number(process.env.BENCH_ENGINE_JOBS ?? 20_000);
export const CONNECTIONS = 10;
const TENANTS = 10;
const RUN_CAP_MS = 240_000; // batch 1 runs one claim and one settle per job: 20,000 of them take about a minute

export interface Held { id: string; lease_id?: string }

/** One side of the comparison: how to fill a fresh database, claim a batch, and complete it. */
export interface Contender {
  name: string;
  prepare(url: string): Promise<void>;
  /** Per-connection session setup (e.g. `set role service_role`). */
  session(sql: Sql): Promise<void>;
  claim(sql: Sql, worker: string, batch: number): Promise<Held[]>;
  complete(sql: Sql, jobs: Held[]): Promise<number>;
}

const client = (url: string, max = 1) => postgres(url, { max, onnotice: () => {} });

/** The ceiling: the same job row shape, one claim index, no tenants, leases, limits or fairness. */
export const RAW: Contender = {
  name: 'raw SKIP LOCKED (bare table)',
  async prepare(url) {
    const sql = client(url);
    try {
      await sql.unsafe(`
        create table raw_jobs (
          id uuid primary key default gen_random_uuid(),
          type text not null, status text not null default 'pending', payload jsonb not null default '{}',
          result jsonb, priority smallint not null default 0, attempts integer not null default 0,
          worker_id text, locked_until timestamptz, started_at timestamptz, completed_at timestamptz,
          created_at timestamptz not null default now(), updated_at timestamptz not null default now());
        create index raw_jobs_claim_idx on raw_jobs (priority desc, created_at) where status = 'pending';`);
      await sql`insert into raw_jobs (type, payload) select 'bench.job', jsonb_build_object('i', i) from generate_series(1, ${JOBS}) i`;
      await sql`vacuum analyze raw_jobs`;
    } finally {
      await sql.end();
    }
  },
  async session() {},
  async claim(sql, worker, batch) {
    return (await sql`
      update raw_jobs j
         set status = 'processing', attempts = j.attempts + 1, worker_id = ${worker},
             locked_until = now() + interval '30 seconds', started_at = now(), updated_at = now()
        from (select id from raw_jobs where status = 'pending' order by priority desc, created_at
              limit ${batch} for update skip locked) c
       where j.id = c.id
      returning j.*`) as unknown as Held[];
  },
  async complete(sql, jobs) {
    const r = await sql`
      update raw_jobs set status = 'completed', completed_at = now(), locked_until = null, updated_at = now()
       where id = any(${jobs.map((j) => j.id)}::uuid[]) and status = 'processing'`;
    return r.count;
  },
};

/** supaqueue: the public functions, called exactly as the worker calls them, as service_role. */
export const ENGINE: Contender = {
  name: 'supaqueue claim_jobs + complete_jobs',
  async prepare(url) {
    const sql = client(url);
    try {
      const tenants = (await sql`insert into public.tenants (name) select 'bench-' || g from generate_series(1, ${TENANTS}) g returning id`).map((r) => r.id);
      await sql`set role service_role`;
      // Through the real enqueue, 1,000 per call, tenants round-robin.
      for (let i = 0; i < JOBS; i += 1000) {
        const jobs = Array.from({ length: 1000 }, (_, k) => ({ tenant_id: tenants[(i + k) % TENANTS], type: 'bench.job', payload: { i: i + k } }));
        await sql`select count(*) from public.enqueue_jobs(${sql.json(jobs)})`;
      }
      await sql`reset role`;
      await sql`vacuum analyze public.job_queue`;
    } finally {
      await sql.end();
    }
  },
  async session(sql) {
    await sql`set role service_role`;
  },
  async claim(sql, worker, batch) {
    return (await sql`select * from public.claim_jobs(${worker}, null, ${batch}::int, 30::float8)`) as unknown as Held[];
  },
  async complete(sql, jobs) {
    const r = await sql`select id from public.complete_jobs(${jobs.map((j) => j.id)}::uuid[], ${jobs.map((j) => j.lease_id!)}::uuid[])`;
    return r.length;
  },
};

/** One timed run on a fresh database: jobs/s from the first claim until every job is completed. */
export async function timedRun(server: BenchServer, c: Contender, batch: number): Promise<number> {
  const db = await server.freshDatabase(c === RAW ? 'empty' : 'migrated');
  const conns = Array.from({ length: CONNECTIONS }, () => client(db.url));
  try {
    await c.prepare(db.url);
    await Promise.all(conns.map((s) => c.session(s)));
    const admin = client(db.url);
    await admin`checkpoint`;
    await admin.end();
    let done = 0;
    const deadline = performance.now() + RUN_CAP_MS;
    const t0 = performance.now();
    await Promise.all(conns.map(async (s, w) => {
      for (;;) {
        if (performance.now() > deadline) throw new Error(`${c.name} batch ${batch}: not done within ${RUN_CAP_MS} ms`);
        const jobs = await c.claim(s, `bench-${w}`, batch);
        if (jobs.length === 0) return;
        const n = await c.complete(s, jobs);
        done += n; // not `done += await ...`: that reads `done` before the await and loses updates
      }
    }));
    const secs = (performance.now() - t0) / 1000;
    if (done !== JOBS) throw new Error(`${c.name}: completed ${done} of ${JOBS}`);
    return JOBS / secs;
  } finally {
    await Promise.all(conns.map((s) => s.end({ timeout: 5 })));
    await db.drop();
  }
}
