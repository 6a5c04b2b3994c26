/**
 * Upgrading a live 0.1.0 database keeps every job: the 0.1.0 migrations are applied with the real
 * Supabase CLI (`db reset`), jobs are put in every state (one held by a running worker), then the newer
 * migrations are applied the way users apply them (`migration up`), and a worker drains the queue.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { createWorker } from '../worker/index.ts';
import { bootstrapSupabasePlatform, ROOT, runSupabase, withDatabase } from '../scripts/lib/stack.ts';
import { asService } from './helpers/db.ts';
import { claim, complete, fail, heartbeat } from './engine.helpers.ts';

/** The last migration of release 0.1.0: everything up to it is what 0.1.0 users run. */
const LAST_OF_0_1_0 = '20261123000600_supaqueue_version.sql';
const migrationsDir = path.join(ROOT, 'supabase/migrations');
const all = fs.readdirSync(migrationsDir).filter((f) => f.endsWith('.sql')).sort();
const old = all.filter((f) => f <= LAST_OF_0_1_0);

let workdir: string;
let dbName: string;
let url: string;
let sql: Sql;

function copyMigrations(files: string[]): void {
  for (const f of files) fs.copyFileSync(path.join(migrationsDir, f), path.join(workdir, 'supabase/migrations', f));
}

beforeAll(async () => {
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'supaqueue-upgrade-'));
  fs.mkdirSync(path.join(workdir, 'supabase/migrations'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'supabase/config.toml'), path.join(workdir, 'supabase/config.toml'));
  copyMigrations(old);
  dbName = `upg_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const admin = postgres(inject('pgServerUrl'), { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${dbName}`).finally(() => admin.end());
  url = withDatabase(inject('pgServerUrl'), dbName);
  if (inject('embedded')) await bootstrapSupabasePlatform(url);
  await runSupabase(['db', 'reset', `--remote=${url}`, '--yes', '--no-seed', '--workdir', workdir]);
  sql = postgres(url, { max: 4, onnotice: () => {} });
}, 120_000);

afterAll(async () => {
  await sql?.end({ timeout: 5 });
  if (dbName) {
    const admin = postgres(inject('pgServerUrl'), { max: 1, onnotice: () => {} });
    await admin.unsafe(`drop database if exists ${dbName} with (force)`).finally(() => admin.end());
  }
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

async function enqueue(tenant: string, type: string, extra: Record<string, unknown> = {}): Promise<string> {
  const [row] = await asService(sql, (tx) => tx`select job_id from public.enqueue_jobs(${tx.json([{ tenant_id: tenant, type, payload: {}, ...extra }] as never)})`);
  return row.job_id as string;
}

test('0.1.0 -> current: every pending, delayed, retrying, leased and finished job survives and ends as it would have', async () => {
  expect(old.length).toBeGreaterThan(0);
  expect(all.length).toBeGreaterThan(old.length);
  const [{ v: before }] = await sql`select supaqueue.version() as v`;
  expect(before).toBe('0.1.0');

  const [{ id: tenant }] = await sql`insert into public.tenants (name) values ('Upgrade Co') returning id`;
  // Held by a "running worker" across the upgrade, settled with its 0.1.0 lease afterwards.
  const held = await enqueue(tenant, 'upg.held');
  const [lease] = await claim(sql, 'old-worker', 1, { types: ['upg.held'] });
  expect(lease.id).toBe(held);
  // Retrying: failed once, waiting for its backoff.
  const retrying = await enqueue(tenant, 'upg.retry', { backoff_base_ms: 1000, backoff_max_ms: 1000 });
  const [r1] = await claim(sql, 'old-worker', 1, { types: ['upg.retry'] });
  expect(await fail(sql, r1)).toBe('pending');
  // Finished ones, which must stay as they are.
  const done = await enqueue(tenant, 'upg.done');
  expect(await complete(sql, await claim(sql, 'old-worker', 1, { types: ['upg.done'] }))).toEqual([done]);
  const dead = await enqueue(tenant, 'upg.dead', { max_attempts: 1 });
  expect(await fail(sql, (await claim(sql, 'old-worker', 1, { types: ['upg.dead'] }))[0], 'bad', false)).toBe('failed');
  const cancelled = await enqueue(tenant, 'upg.cancel');
  await asService(sql, (tx) => tx`select * from public.cancel_job(${cancelled}::uuid)`);
  // Waiting ones.
  const pending = await Promise.all(Array.from({ length: 20 }, () => enqueue(tenant, 'upg.run')));
  const delayed = await enqueue(tenant, 'upg.run', { delay_ms: 1500 });
  const [{ n: total }] = await sql`select count(*)::int as n from public.job_queue`;

  copyMigrations(all.filter((f) => !old.includes(f)));
  await runSupabase(['migration', 'up', `--remote=${url}`, '--include-all', '--workdir', workdir]);
  const [{ v: after }] = await sql`select supaqueue.version() as v`;
  expect(after).not.toBe('0.1.0');
  const [{ n: kept }] = await sql`select count(*)::int as n from public.job_queue`;
  expect(kept).toBe(total);

  // The worker that held a lease before the upgrade still heartbeats it as 0.1.0 workers do (no worker
  // id), and can still settle it; a stale one still cannot.
  expect(await heartbeat(sql, [lease], 30)).toEqual([expect.objectContaining({ id: held, lease_valid: true })]);
  expect(await complete(sql, [{ id: held, lease_id: randomUUID() }])).toEqual([]);
  expect(await complete(sql, [lease])).toEqual([held]);

  const worker = createWorker({
    connection: url,
    handlers: { 'upg.run': async () => ({ ok: true }), 'upg.retry': async () => ({ ok: true }) },
    pollIntervalMs: 100,
    maintenanceIntervalMs: false,
    logger: undefined,
  });
  await worker.start();
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [{ n }] = await sql`select count(*)::int as n from public.job_queue where status in ('pending', 'processing')`;
      if (n === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await worker.stop();
  }
  const rows = await sql`select id, status, attempts from public.job_queue`;
  const status = new Map(rows.map((r) => [r.id as string, r.status as string]));
  for (const id of [...pending, delayed, retrying, held, done]) expect(status.get(id), id).toBe('completed');
  expect(status.get(dead)).toBe('failed');
  expect(status.get(cancelled)).toBe('cancelled');
  expect(rows.find((r) => r.id === retrying)!.attempts).toBe(2);
}, 120_000);
