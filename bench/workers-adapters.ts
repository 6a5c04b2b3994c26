/**
 * The three queues behind one small interface for bench/workers.ts: a producer (bulk and single-job
 * enqueue through each library's own API) and a consumer (prepared first, then started, so start-up
 * work such as pg-boss's start() is outside the timed window where the library allows it).
 */
import { Logger, makeWorkerUtils, run, runMigrations } from 'graphile-worker';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import pino from 'pino';
import postgres from 'postgres';

export type System = 'supaqueue' | 'graphile-worker' | 'pg-boss';
export type OnJob = (payload: Record<string, unknown>, id: string) => void;

export interface Producer {
  /** Enqueues payloads with the library's bulk API (one call). */
  bulk(payloads: object[]): Promise<void>;
  /** Enqueues one payload with the library's single-job API. */
  one(payload: object): Promise<void>;
  close(): Promise<void>;
}

export interface Consumer {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface Variant {
  system: System;
  name: string;
  /** The settings, as listed under the tables. */
  settings: string;
  db: 'migrated' | 'empty';
  /** Installs the library's schema / tenants / queue in a fresh database. */
  setup(url: string): Promise<void>;
  producer(url: string): Promise<Producer>;
  consumer(url: string, onJob: OnJob): Promise<Consumer>;
  /** SQL returning one row { n } = jobs not yet completed. */
  unfinishedSql: string;
  /** Diagnostic variants only: SQL run (as the owner, untimed) after the bulk enqueue. */
  afterEnqueueSql?: string;
}

const TASK = 'noop';
const pgOpts = { onnotice: () => {} } as const;

// ---------------------------------------------------------------------------------------------------
// graphile-worker
// ---------------------------------------------------------------------------------------------------

const silentGraphile = new Logger(() => () => {});

/**
 * A pool of our own for graphile-worker (same settings it would create from connectionString): its own
 * pool is ended without waiting on release, so a database dropped right after stop() could still reach
 * a closing client with no error handler left. Ours keeps its handlers and is awaited.
 */
function graphilePool(url: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on('error', () => {});
  pool.on('connect', (client) => { client.on('error', () => {}); });
  return pool;
}

interface GraphileOptions {
  concurrency: number;
  maxPoolSize: number;
  localQueue?: { size: number; refetchDelay?: { durationMs: number } };
  completeJobBatchDelay?: number;
  failJobBatchDelay?: number;
}

export function graphileVariant(name: string, settings: string, o: GraphileOptions): Variant {
  return {
    system: 'graphile-worker',
    name,
    settings,
    db: 'empty',
    async setup(url) {
      const pool = graphilePool(url, 2);
      try {
        await runMigrations({ pgPool: pool, logger: silentGraphile });
      } finally {
        await pool.end();
      }
    },
    async producer(url) {
      const pool = graphilePool(url, 10);
      const utils = await makeWorkerUtils({ pgPool: pool, logger: silentGraphile });
      return {
        async bulk(payloads) { await utils.addJobs(payloads.map((payload) => ({ identifier: TASK, payload }))); },
        async one(payload) { await utils.addJob(TASK, payload); },
        close: async () => { await utils.release(); await pool.end(); },
      };
    },
    async consumer(url, onJob) {
      let runner: Awaited<ReturnType<typeof run>> | undefined;
      const pool = graphilePool(url, o.maxPoolSize);
      const worker: Record<string, unknown> = {};
      if (o.localQueue) worker.localQueue = o.localQueue;
      if (o.completeJobBatchDelay !== undefined) worker.completeJobBatchDelay = o.completeJobBatchDelay;
      if (o.failJobBatchDelay !== undefined) worker.failJobBatchDelay = o.failJobBatchDelay;
      return {
        async start() {
          runner = await run({
            pgPool: pool,
            concurrency: o.concurrency,
            logger: silentGraphile,
            noHandleSignals: true,
            taskList: {
              [TASK]: async (payload, helpers) => { onJob(payload as Record<string, unknown>, String(helpers.job.id)); },
            },
            preset: { worker },
          });
        },
        async stop() {
          if (runner) {
            await runner.stop();
            await runner.promise.catch(() => {});
          }
          await pool.end();
        },
      };
    },
    unfinishedSql: 'select count(*)::int as n from graphile_worker._private_jobs',
  };
}

// ---------------------------------------------------------------------------------------------------
// pg-boss
// ---------------------------------------------------------------------------------------------------

interface PgBossOptions {
  batchSize: number;
  localConcurrency: number;
  listen: boolean;
}

function quietBoss(boss: PgBoss): PgBoss {
  // An EventEmitter without an 'error' listener throws; the benchmark prints only its tables.
  boss.on('error', () => {});
  boss.on('warning', () => {});
  return boss;
}

export function pgBossVariant(name: string, settings: string, o: PgBossOptions): Variant {
  return {
    system: 'pg-boss',
    name,
    settings,
    db: 'empty',
    async setup(url) {
      const boss = quietBoss(new PgBoss({ connectionString: url, supervise: false, schedule: false }));
      await boss.start();
      await boss.createQueue(TASK, { notify: o.listen });
      await boss.stop({ graceful: false, close: true });
    },
    async producer(url) {
      const boss = quietBoss(new PgBoss({ connectionString: url, supervise: false, schedule: false, migrate: false }));
      await boss.start();
      return {
        async bulk(payloads) { await boss.insert(TASK, payloads.map((data) => ({ data }))); },
        async one(payload) { await boss.send(TASK, payload); },
        close: () => boss.stop({ graceful: false, close: true }),
      };
    },
    async consumer(url, onJob) {
      const boss = quietBoss(new PgBoss({ connectionString: url, useListenNotify: o.listen }));
      await boss.start();
      return {
        async start() {
          await boss.work(TASK, {
            batchSize: o.batchSize,
            localConcurrency: o.localConcurrency,
            burstWhenBatchFull: o.batchSize > 1,
            pollingIntervalSeconds: 0.5,
            notifyPollingIntervalSeconds: 0.5,
          }, async (jobs) => {
            for (const j of jobs) onJob(j.data as Record<string, unknown>, j.id);
          });
        },
        async stop() { await boss.stop({ graceful: true, close: true, timeout: 5000 }); },
      };
    },
    unfinishedSql: `select count(*)::int as n from pgboss.job where name = '${TASK}' and state <> 'completed'`,
  };
}

// ---------------------------------------------------------------------------------------------------
// supaqueue
// ---------------------------------------------------------------------------------------------------

export interface SupaqueueOptions {
  tenants: number;
  afterEnqueueSql?: string;
  /** Options passed to createWorker (besides connection, handlers and logger). */
  worker: Record<string, unknown>;
}

type CreateWorker = (opts: Record<string, unknown>) => { start(): Promise<void>; stop(): Promise<void> };

let createWorkerCache: CreateWorker | null | undefined;

/** The worker library, or null while worker/index.ts does not exist (or fails to load). */
export async function loadSupaqueueWorker(): Promise<{ createWorker: CreateWorker } | { error: string }> {
  try {
    if (createWorkerCache === undefined) {
      const mod = (await import('../worker/index.ts')) as unknown as { createWorker?: CreateWorker };
      createWorkerCache = typeof mod.createWorker === 'function' ? mod.createWorker : null;
    }
    return createWorkerCache ? { createWorker: createWorkerCache } : { error: 'worker/index.ts has no createWorker export' };
  } catch (e) {
    createWorkerCache = undefined;
    return { error: `worker/index.ts not loadable: ${(e as Error).message.split('\n')[0]}` };
  }
}

export function supaqueueVariant(name: string, settings: string, o: SupaqueueOptions): Variant {
  return {
    system: 'supaqueue',
    name,
    settings,
    db: 'migrated',
    async setup(url) {
      const sql = postgres(url, { max: 1, ...pgOpts });
      try {
        await sql`insert into public.tenants (name) select 'bench-' || lpad(g::text, 3, '0') from generate_series(1, ${o.tenants}::int) g`;
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
    async producer(url) {
      // One connection, as the service role (what a backend enqueuing with the service key uses).
      const sql = postgres(url, { max: 1, ...pgOpts, connection: { application_name: 'bench-producer' } });
      await sql`set role service_role`;
      const tenants = (await sql<{ id: string }[]>`select id from public.tenants order by name`).map((r) => r.id);
      let next = 0;
      return {
        async bulk(payloads) {
          const specs = payloads.map((payload) => ({ tenant_id: tenants[next++ % tenants.length], type: TASK, payload }));
          await sql`select count(*) from public.enqueue_jobs(${JSON.stringify(specs)}::text::jsonb)`;
        },
        async one(payload) {
          const tenant = tenants[next++ % tenants.length];
          await sql`select job_id from public.enqueue_job(${tenant}::uuid, ${TASK}, ${JSON.stringify(payload)}::text::jsonb)`;
        },
        close: () => sql.end({ timeout: 5 }),
      };
    },
    async consumer(url, onJob) {
      const lib = await loadSupaqueueWorker();
      if ('error' in lib) throw new Error(lib.error);
      const w = lib.createWorker({
        connection: url,
        handlers: {
          [TASK]: async (job: { id: string; payload: Record<string, unknown> }) => { onJob(job.payload, job.id); return null; },
        },
        logger: pino({ level: 'silent' }),
        ...o.worker,
      });
      return { start: () => w.start(), stop: () => w.stop() };
    },
    unfinishedSql: `select count(*)::int as n from public.job_queue where status <> 'completed'`,
    afterEnqueueSql: o.afterEnqueueSql,
  };
}
