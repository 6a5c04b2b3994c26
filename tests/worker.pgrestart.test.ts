/**
 * Postgres stopped and started again mid-run, under two worker processes. This file runs its OWN embedded
 * Postgres (own data dir and port) so the shared server of the other suites is never touched. No worker
 * exits, both recover on their own, and every job completes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startEmbeddedPostgres, type EmbeddedHandle } from '../scripts/lib/pg.ts';
import { bootstrapSupabasePlatform, resetDatabase } from '../scripts/lib/stack.ts';
import { createExecutionsTable, enqueueSpread, killAll, startWorker, statusCounts, waitFor, type WorkerProcess } from './helpers/worker.ts';

const JOBS = 1500;

let dataDir: string;
let port: number;
let pg: EmbeddedHandle | undefined;
let sql: Sql;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'supaqueue-pgrestart-'));
  fs.chmodSync(dataDir, 0o755);
  port = await freePort();
  pg = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'pg'), port, quiet: true });
  await bootstrapSupabasePlatform(pg.url);
  await resetDatabase(pg.url, { seed: false });
  sql = postgres(pg.url, { max: 2, onnotice: () => {} });
  await createExecutionsTable(sql);
}, 120_000);

afterAll(async () => {
  await killAll(workers);
  await sql?.end({ timeout: 1 }).catch(() => {});
  await pg?.stop().catch(() => {});
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

const logged = (w: WorkerProcess, msg: string) => w.logs.some((l) => l.msg === msg);

describe('Postgres restart mid-run', () => {
  it('workers stay up, recover by themselves, and lose no job', async () => {
    const [tenant] = await sql<{ id: string }[]>`insert into public.tenants (name) values ('restart') returning id`;
    // Attempts to spare: a handler whose own recording query dies with the server fails that attempt.
    await enqueueSpread(sql, [tenant.id], JOBS, { type: 'test.sleep', payload: { minMs: 5, maxMs: 15 }, max_attempts: 20, backoff_base_ms: 100, backoff_max_ms: 500 });
    for (let i = 0; i < 2; i += 1) workers.push(await startWorker(pg!.url, { env: { WORKER_CONCURRENCY: 8 } }));
    await waitFor(async () => ((await statusCounts(sql)).completed ?? 0) >= JOBS / 5, { timeoutMs: 30_000, message: 'a fifth done before the restart' });

    await sql.end({ timeout: 1 });
    await pg!.stop();
    await waitFor(() => workers.every((w) => logged(w, 'claim failed; backing off')), { timeoutMs: 20_000, message: 'both workers saw the outage' });
    pg = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'pg'), port, quiet: true });
    sql = postgres(pg.url, { max: 2, onnotice: () => {} });

    await waitFor(async () => (await statusCounts(sql)).completed === JOBS, { timeoutMs: 60_000, intervalMs: 250, message: 'all jobs completed after the restart' });
    expect(await statusCounts(sql)).toEqual({ completed: JOBS });
    expect(workers.map((w) => w.exit), workers.map((w) => w.logs.filter((l) => (l as { level?: number }).level! >= 50).map((l) => JSON.stringify(l)).join('\n') + w.stderr()).join('\n---\n')).toEqual([null, null]);
    expect(workers.every((w) => logged(w, 'claims working again'))).toBe(true);
  }, 90_000);
});
