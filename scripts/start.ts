/**
 * `npm start`: the local stack, without Docker.
 *
 *   1. Postgres: embedded Postgres 17 on 127.0.0.1:54322 with its data in .data/pg (kept across restarts);
 *      or DATABASE_URL, in which case nothing is bootstrapped or reset (apply migrations there yourself).
 *   2. First start: Supabase platform bootstrap, then `supabase db reset` (migrations + seed).
 *      Later starts: bootstrap (idempotent) and `supabase migration up` (only new migrations; data kept).
 *   3. Edge functions served by the real Deno binary under http://127.0.0.1:54321/functions/v1/<name>.
 *   4. A worker running the demo job types, and the scheduler function invoked every minute, as
 *      pg_cron + pg_net would on a hosted project.
 * Prints what `supabase start` prints; Ctrl-C stops everything.
 */
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { apiKey, LOCAL_API_PORT, LOCAL_API_URL, LOCAL_JWT_SECRET, userToken } from './lib/keys.ts';
import { portInUse, startEmbeddedPostgres, type EmbeddedHandle } from './lib/pg.ts';
import { bootstrapSupabasePlatform, resetDatabase, ROOT, runSupabase } from './lib/stack.ts';
import { serveFunctions } from './lib/functions.ts';
import { createWorker } from '../worker/index.ts';
import demoHandlers from '../worker/examples/demo-handlers.ts';

const DB_PORT = Number(process.env.SUPAQUEUE_DB_PORT ?? 54322);
const DEMO_USER_ID = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const SCHEDULER_PERIOD_MS = 60_000;

async function startDatabase(): Promise<{ url: string; embedded?: EmbeddedHandle }> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL };
  if (await portInUse(DB_PORT)) {
    throw new Error(`port ${DB_PORT} is in use (another \`npm start\` or \`supabase start\`?). Stop it, or set SUPAQUEUE_DB_PORT or DATABASE_URL.`);
  }
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(ROOT, '.data/pg'), port: DB_PORT });
  await bootstrapSupabasePlatform(embedded.url);
  // Fresh = no migration was ever recorded (not "no data directory"): a first start that stopped
  // before its reset finished is reset again instead of being left without a seed.
  if (!(await migrationsRecorded(embedded.url))) {
    log('applying migrations and seed (supabase db reset)');
    await resetDatabase(embedded.url);
  } else {
    log('applying new migrations, keeping data (supabase migration up)');
    await runSupabase(['migration', 'up', `--remote=${embedded.url}`, '--include-all']);
  }
  return { url: embedded.url, embedded };
}

async function migrationsRecorded(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [t] = await sql<{ exists: boolean }[]>`select to_regclass('supabase_migrations.schema_migrations') is not null as exists`;
    if (!t.exists) return false;
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from supabase_migrations.schema_migrations`;
    return row.n > 0;
  } finally {
    await sql.end();
  }
}

function log(msg: string): void {
  process.stderr.write(`[supaqueue] ${msg}\n`);
}

async function invokeScheduler(serviceKey: string): Promise<void> {
  try {
    const res = await fetch(`${LOCAL_API_URL}/functions/v1/jobs-scheduler`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${serviceKey}`, apikey: serviceKey, 'content-type': 'application/json' },
      body: '{}',
      signal: AbortSignal.timeout(30_000),
    });
    if (res.status !== 404) log(`scheduler: ${res.status} ${(await res.text()).slice(0, 300)}`);
  } catch (e) {
    log(`scheduler call failed: ${(e as Error).message}`);
  }
}

async function main(): Promise<void> {
  const db = await startDatabase();
  const anonKey = await apiKey('anon');
  const serviceKey = await apiKey('service_role');
  const functions = await serveFunctions({
    port: LOCAL_API_PORT,
    env: {
      SUPABASE_URL: LOCAL_API_URL,
      SUPABASE_DB_URL: db.url,
      SUPABASE_JWT_SECRET: LOCAL_JWT_SECRET,
      SUPABASE_ANON_KEY: anonKey,
      SUPABASE_SERVICE_ROLE_KEY: serviceKey,
      SUPAQUEUE_CORS_ORIGINS: process.env.SUPAQUEUE_CORS_ORIGINS ?? 'http://127.0.0.1:3000,http://localhost:3000,http://127.0.0.1:5173,http://localhost:5173',
    },
  });
  const worker = createWorker({ connection: db.url, handlers: demoHandlers, concurrency: 5 });
  await worker.start();
  const hasScheduler = fs.existsSync(path.join(ROOT, 'supabase/functions/jobs-scheduler/index.ts'));
  const timer = hasScheduler ? setInterval(() => void invokeScheduler(serviceKey), SCHEDULER_PERIOD_MS) : undefined;
  if (hasScheduler) void invokeScheduler(serviceKey);

  const demoToken = await userToken(DEMO_USER_ID, { email: 'demo@acme.test', expiresIn: 24 * 3600 });
  console.log(`
supaqueue local stack is running.

         API URL: ${LOCAL_API_URL}
   Functions URL: ${LOCAL_API_URL}/functions/v1   (jobs${hasScheduler ? ', jobs-scheduler' : ''})
          DB URL: ${db.url}
      JWT secret: ${LOCAL_JWT_SECRET}
        anon key: ${anonKey}
service_role key: ${serviceKey}
  demo user: demo@acme.test (${DEMO_USER_ID}), admin of tenant Acme
  demo access token (24 h): ${demoToken}

Try:  curl -H "Authorization: Bearer <demo access token>" ${LOCAL_API_URL}/functions/v1/jobs
Worker: running demo.echo, demo.report, demo.flaky, demo.email. Ctrl-C stops everything.
`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    if (timer) clearInterval(timer);
    await worker.stop().catch((e) => log(`worker stop: ${(e as Error).message}`));
    await functions.stop().catch((e) => log(`functions stop: ${(e as Error).message}`));
    if (db.embedded) await db.embedded.stop().catch((e) => log(`postgres stop: ${(e as Error).message}`));
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
