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
 * Prints what `supabase start` prints; Ctrl-C stops everything (exit 0 after a clean stop).
 * If something cannot start (a port in use, a function that fails to boot) it says what and why, stops
 * what it had started, and exits 1.
 *
 * Ports and data folder: SUPAQUEUE_DB_PORT (54322), SUPAQUEUE_API_PORT (54321), SUPAQUEUE_DASHBOARD_PORT (54323),
 * SUPAQUEUE_DATA_DIR (.data).
 * Every other SUPAQUEUE_* variable of the environment is passed to the edge functions (their settings).
 */
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { apiKey, LOCAL_API_PORT, LOCAL_JWT_SECRET, userToken } from './lib/keys.ts';
import { portInUse, startEmbeddedPostgres } from './lib/pg.ts';
import { bootstrapSupabasePlatform, resetDatabase, ROOT, runSupabase } from './lib/stack.ts';
import { serveFunctions } from './lib/functions.ts';
import { DASHBOARD_PORT, serveDashboard } from './lib/dashboard.ts';
import { createWorker } from '../worker/index.ts';
import demoHandlers from '../worker/examples/demo-handlers.ts';

const DB_PORT = Number(process.env.SUPAQUEUE_DB_PORT ?? 54322);
const API_PORT = Number(process.env.SUPAQUEUE_API_PORT ?? LOCAL_API_PORT);
const API_URL = `http://127.0.0.1:${API_PORT}`;
const DATA_DIR = path.resolve(ROOT, process.env.SUPAQUEUE_DATA_DIR ?? '.data');
const OWN_SETTINGS = new Set(['SUPAQUEUE_DB_PORT', 'SUPAQUEUE_API_PORT', 'SUPAQUEUE_DATA_DIR', 'SUPAQUEUE_DASHBOARD_PORT']);
const DEMO_USER_ID = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const SCHEDULER_PERIOD_MS = 60_000;

async function startDatabase(): Promise<{ url: string }> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL };
  if (await portInUse(DB_PORT)) {
    throw new Error(`port ${DB_PORT} is in use (another \`npm start\` or \`supabase start\`?). Stop it, or set SUPAQUEUE_DB_PORT or DATABASE_URL.`);
  }
  if (await portInUse(API_PORT)) {
    throw new Error(`port ${API_PORT} is in use (another \`npm start\` or \`supabase start\`?). Stop it, or set SUPAQUEUE_API_PORT.`);
  }
  const embedded = await startEmbeddedPostgres({ dataDir: path.join(DATA_DIR, 'pg'), port: DB_PORT });
  cleanups.push(() => embedded.stop());
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
  return { url: embedded.url };
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
    const res = await fetch(`${API_URL}/functions/v1/jobs-scheduler`, {
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

/** The functions' settings: the stack's own values, then any SUPAQUEUE_* variable the user set. */
function functionsEnv(dbUrl: string, anonKey: string, serviceKey: string): Record<string, string> {
  const env: Record<string, string> = {
    SUPABASE_URL: API_URL,
    SUPABASE_DB_URL: dbUrl,
    SUPABASE_JWT_SECRET: LOCAL_JWT_SECRET,
    SUPABASE_ANON_KEY: anonKey,
    SUPABASE_SERVICE_ROLE_KEY: serviceKey,
    SUPAQUEUE_CORS_ORIGINS: 'http://127.0.0.1:3000,http://localhost:3000,http://127.0.0.1:5173,http://localhost:5173',
  };
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('SUPAQUEUE_') && !OWN_SETTINGS.has(key) && value !== undefined) env[key] = value;
  }
  return env;
}

/** What is running so far, stopped in reverse order on Ctrl-C or when a later step fails. */
const cleanups: (() => Promise<unknown>)[] = [];

async function stopAll(): Promise<boolean> {
  let clean = true;
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup().catch((e) => { clean = false; log(`stop: ${(e as Error).message}`); });
  }
  return clean;
}

async function main(): Promise<void> {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    process.exit((await stopAll()) ? 0 : 1);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  const db = await startDatabase();
  const anonKey = await apiKey('anon');
  const serviceKey = await apiKey('service_role');
  const functions = await serveFunctions({ port: API_PORT, env: functionsEnv(db.url, anonKey, serviceKey) });
  cleanups.push(() => functions.stop());
  const worker = createWorker({ connection: db.url, handlers: demoHandlers, concurrency: 5 });
  await worker.start();
  cleanups.push(() => worker.stop());
  const hasScheduler = functions.functions.includes('jobs-scheduler');
  if (hasScheduler) {
    const timer = setInterval(() => void invokeScheduler(serviceKey), SCHEDULER_PERIOD_MS);
    cleanups.push(async () => clearInterval(timer));
    void invokeScheduler(serviceKey);
  }

  const demoToken = await userToken(DEMO_USER_ID, { email: 'demo@acme.test', expiresIn: 24 * 3600, issuer: `${API_URL}/auth/v1` });
  // The dashboard (dashboard/, built now): signs the demo user in with the token in the URL fragment.
  const dashboard = await serveDashboard({ projectUrl: API_URL, port: Number(process.env.SUPAQUEUE_DASHBOARD_PORT ?? DASHBOARD_PORT) })
    .catch((e) => { throw new Error(`the dashboard could not start on port ${process.env.SUPAQUEUE_DASHBOARD_PORT ?? DASHBOARD_PORT}: ${(e as Error).message}`); });
  cleanups.push(() => dashboard.stop());
  console.log(`
supaqueue local stack is running.

         API URL: ${API_URL}
   Functions URL: ${API_URL}/functions/v1   (${functions.functions.join(', ')})
          DB URL: ${db.url}
      JWT secret: ${LOCAL_JWT_SECRET}
        anon key: ${anonKey}
service_role key: ${serviceKey}
  demo user: demo@acme.test (${DEMO_USER_ID}), admin of tenant Acme
  demo access token (24 h): ${demoToken}

       Dashboard: ${dashboard.signInUrl(demoToken)}
                  (signs the demo user in; ${dashboard.url} alone asks for a token)

Try:
curl -H "Authorization: Bearer ${demoToken}" ${API_URL}/functions/v1/jobs

Worker: running demo.echo, demo.report, demo.flaky, demo.email. Ctrl-C stops everything.
`);
}

main().catch(async (e) => {
  console.error(`[supaqueue] npm start failed: ${e instanceof Error ? e.message : String(e)}`);
  await stopAll();
  process.exit(1);
});
