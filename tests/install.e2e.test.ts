/**
 * The whole user journey in a fresh project: `supabase init`, `npm install <the packed tarball>`,
 * `npx supaqueue install`, `supabase db reset` on an empty database, then a job enqueued through the
 * installed `jobs` edge function (served by Deno from the project's own folder) and processed by a worker
 * the project wrote with `import { createWorker } from 'supaqueue/worker'`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { serveFunctions } from '../scripts/lib/functions.ts';
import { LOCAL_JWT_SECRET, userToken } from '../scripts/lib/keys.ts';
import { freePort } from '../scripts/lib/pg.ts';
import { bootstrapSupabasePlatform, runSupabase, withDatabase } from '../scripts/lib/stack.ts';
import { cleanEnv, npmInstallTarball, packRepo, runOk, supabaseInit, type RunResult } from './fixtures/install/project.ts';

const WORKER_MJS = `// A worker as a user of the package writes it.
import { createWorker } from 'supaqueue/worker';

const worker = createWorker({
  connection: process.env.DATABASE_URL,
  handlers: {
    'report.sum': async (job) => ({ sum: job.payload.a + job.payload.b }),
  },
  pollIntervalMs: 100,
  maintenanceIntervalMs: false,
});
await worker.start();
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => worker.stop().then(() => process.exit(0)));
`;

let tmp: string;
let project: string;
let installRun: RunResult;
let dbName: string;
let dbUrl: string;
let sql: Sql;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'supaqueue-install-e2e-'));
  const tarball = await packRepo(tmp);
  project = path.join(tmp, 'my-app');
  await supabaseInit(project);
  await npmInstallTarball(project, tarball);
  // --no: the bin must come from the project's node_modules, never from the registry.
  installRun = await runOk('npx', ['--no', 'supaqueue', 'install'], project);

  const server = inject('pgServerUrl');
  dbName = `inst_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const admin = postgres(server, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${dbName}`);
  } finally {
    await admin.end();
  }
  dbUrl = withDatabase(server, dbName);
  if (inject('embedded')) await bootstrapSupabasePlatform(dbUrl);
  await runSupabase(['db', 'reset', `--remote=${dbUrl}`, '--yes', '--workdir', project]);
  sql = postgres(dbUrl, { max: 2, onnotice: () => {} });
}, 150_000);

afterAll(async () => {
  await sql?.end({ timeout: 5 });
  if (dbName) {
    const admin = postgres(inject('pgServerUrl'), { max: 1, onnotice: () => {} });
    await admin.unsafe(`drop database if exists ${dbName} with (force)`).finally(() => admin.end());
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('npx supaqueue install puts the migrations and functions into the project', () => {
  expect(installRun.stdout).toContain('Done: supaqueue');
  const migrations = fs.readdirSync(path.join(project, 'supabase/migrations'));
  expect(migrations.length).toBeGreaterThan(0);
  expect(migrations.every((f) => /^\d{14}_supaqueue_[a-z0-9_]+\.sql$/.test(f))).toBe(true);
  expect(fs.existsSync(path.join(project, 'supabase/functions/jobs/index.ts'))).toBe(true);
});

test('supabase db reset of the project builds the schema on an empty database', async () => {
  const [row] = await sql`select to_regclass('public.job_queue') as t, to_regclass('public.tenants') as tenants`;
  expect(row).toEqual({ t: 'job_queue', tenants: 'tenants' });
});

test('supabase db advisors finds nothing to warn about in the installed schema', async () => {
  await expect(runSupabase(['db', 'advisors', `--remote=${dbUrl}`, '--fail-on', 'warn', '--workdir', project])).resolves.toBeTypeOf('string');
});

test('a job enqueued through the installed jobs function is completed by the project\'s own worker', async () => {
  const userId = randomUUID();
  await sql`insert into auth.users (id, aud, role, email) values (${userId}, 'authenticated', 'authenticated', ${`${userId.slice(0, 8)}@example.test`})`;
  const [tenant] = await sql`insert into public.tenants (name) values ('Install Co') returning id`;
  await sql`insert into public.tenant_members (tenant_id, user_id, role) values (${tenant.id}, ${userId}, 'member')`;

  const port = await freePort();
  const apiUrl = `http://127.0.0.1:${port}`;
  const functions = await serveFunctions({
    port,
    functionsDir: path.join(project, 'supabase/functions'),
    only: ['jobs'],
    quiet: true,
    env: { SUPABASE_URL: apiUrl, SUPABASE_DB_URL: dbUrl, SUPAQUEUE_JWT_SECRET: LOCAL_JWT_SECRET },
  });
  fs.writeFileSync(path.join(project, 'worker.mjs'), WORKER_MJS);
  const worker = spawn(process.execPath, ['worker.mjs'], { cwd: project, env: cleanEnv({ DATABASE_URL: dbUrl }), stdio: ['ignore', 'pipe', 'pipe'] });
  let workerLog = '';
  worker.stdout!.on('data', (d) => { workerLog += d; });
  worker.stderr!.on('data', (d) => { workerLog += d; });
  try {
    const token = await userToken(userId, { issuer: `${apiUrl}/auth/v1` });
    const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
    const res = await fetch(`${apiUrl}/functions/v1/jobs`, {
      method: 'POST', headers, body: JSON.stringify({ tenant_id: tenant.id, type: 'report.sum', payload: { a: 2, b: 3 } }),
    });
    const created = await res.json();
    expect(res.status, JSON.stringify(created)).toBe(201);
    const job = await waitForStatus(`${apiUrl}/functions/v1/jobs/${created.data.id}`, headers, 'completed', worker, () => workerLog);
    expect(job.result).toEqual({ sum: 5 });
  } finally {
    await stopChild(worker);
    await functions.stop();
  }
});

/** Polls GET /jobs/:id as the user until the job reaches `status` (or the worker dies, or 45 s pass). */
async function waitForStatus(url: string, headers: Record<string, string>, status: string, worker: ChildProcess, log: () => string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 45_000;
  let last: unknown;
  while (Date.now() < deadline) {
    if (worker.exitCode !== null) throw new Error(`the worker exited with ${worker.exitCode}:\n${log()}`);
    const res = await fetch(url, { headers });
    const body = await res.json();
    const job = body.data as Record<string, unknown> | undefined;
    if (job?.status === status) return job;
    last = body;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`job never reached ${status}; last answer ${JSON.stringify(last)}\nworker log:\n${log()}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}
