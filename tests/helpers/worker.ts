/**
 * Helpers for the worker tests: real worker processes (node --import tsx worker/cli.ts), poll-until
 * waits, the executions table the fixture handlers (tests/fixtures/handlers.ts) write to, and an
 * in-memory data source for the unit tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Sql } from 'postgres';
import { afterAll, beforeAll } from 'vitest';
import { ROOT } from '../../scripts/lib/stack.ts';
import { useTestDatabase, type TestDatabase } from './db.ts';
import type { ClaimRequest, CompleteItem, DataSource, FailItem, HeartbeatRow, Job, JobStatus, Lease } from '../../worker/index.ts';

export const FIXTURE_HANDLERS = path.join(ROOT, 'tests/fixtures/handlers.ts');
const CLI = path.join(ROOT, 'worker/cli.ts');

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface WorkerProcess {
  proc: ChildProcess;
  pid: number;
  /** pino JSON lines from stdout, parsed. */
  logs: LogLine[];
  /** Everything on stderr (config errors, crashes). */
  stderr: () => string;
  /** Set once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `node --import tsx worker/cli.ts --handlers <fixture>` against url; env adds WORKER_* settings. */
export function spawnWorker(url: string, opts: { handlers?: string; env?: Record<string, string | number> } = {}): WorkerProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, SUPABASE_DB_URL: url, WORKER_LOG_LEVEL: 'info' };
  for (const [k, v] of Object.entries(opts.env ?? {})) env[k] = String(v);
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, '--handlers', opts.handlers ?? FIXTURE_HANDLERS], {
    cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let stderr = '';
  let partial = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      try { logs.push(JSON.parse(line)); } catch { logs.push({ msg: line }); }
    }
  });
  proc.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const w: WorkerProcess = {
    proc, pid: proc.pid!, logs, stderr: () => stderr, exit: null,
    exited: new Promise((resolve) => proc.on('exit', (code, signal) => { w.exit = { code, signal }; resolve(w.exit); })),
  };
  return w;
}

/** Spawns a worker and waits for its "worker started" log line. */
export async function startWorker(url: string, opts: { handlers?: string; env?: Record<string, string | number> } = {}): Promise<WorkerProcess> {
  const w = spawnWorker(url, opts);
  await waitFor(async () => {
    if (w.exit) throw new Error(`worker exited at start (${JSON.stringify(w.exit)}):\n${w.stderr()}\n${JSON.stringify(w.logs.slice(-5))}`);
    return w.logs.some((l) => l.msg === 'worker started');
  }, { timeoutMs: 30_000, message: 'worker did not start' });
  return w;
}

/** SIGKILLs every worker still running (test cleanup). */
export async function killAll(workers: WorkerProcess[]): Promise<void> {
  await Promise.all(workers.filter((w) => !w.exit).map((w) => { w.proc.kill('SIGKILL'); return w.exited; }));
}

type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/** Polls fn until it returns a truthy value (and returns it); throws with message after timeoutMs. */
export async function waitFor<T>(fn: () => Promise<T> | T, opts: { timeoutMs?: number; intervalMs?: number; message?: string } = {}): Promise<Truthy<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    const v = await fn();
    if (v) return v as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out: ${opts.message ?? 'condition not met'}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/** The table the fixture handlers record every execution in. */
export async function createExecutionsTable(sql: Sql): Promise<void> {
  await sql`create table public.test_executions (
    id bigserial primary key,
    job_id uuid not null,
    attempt integer not null,
    pid integer not null,
    started_at timestamptz not null default clock_timestamp(),
    finished_at timestamptz)`;
  await sql`create index on public.test_executions (job_id)`;
}

/** Enqueues jobs of one type spread round-robin over tenants, in chunks; returns their ids. */
export async function enqueueSpread(sql: Sql, tenants: string[], n: number, spec: Record<string, unknown>): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < n; start += 1000) {
    const jobs = Array.from({ length: Math.min(1000, n - start) }, (_, i) => ({ tenant_id: tenants[(start + i) % tenants.length], ...spec }));
    const rows = await sql.begin(async (tx) => {
      await tx`set local role service_role`;
      return tx<{ job_id: string }[]>`select job_id from public.enqueue_jobs(${tx.json(jobs as never)})`;
    });
    ids.push(...rows.map((r) => r.job_id));
  }
  return ids;
}

/** Job counts by status. */
export async function statusCounts(sql: Sql): Promise<Record<string, number>> {
  const rows = await sql<{ status: string; n: number }[]>`select status::text, count(*)::int as n from public.job_queue group by status`;
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** True once no backend of the given worker process (its pool and its fixture connection) is left. */
export async function sessionsGone(sql: Sql, pid: number): Promise<boolean> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
    where application_name = ${`fixture ${pid}`} or application_name like ${`supaqueue-worker %-${pid}-%`}`;
  return row.n === 0;
}

export const uniqueName = (prefix: string) => `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 10)}`;

// ---------------------------------------------------------------------------------------------------
// An in-memory data source for the unit tests (tests/worker.unit.*.test.ts): no database, no processes.
// ---------------------------------------------------------------------------------------------------

/** A job row as claim_jobs would return it, leased to nobody in particular. */
export function fakeJob(type: string, payload: unknown = {}): Job {
  const now = new Date();
  return {
    id: randomUUID(), tenant_id: randomUUID(), type, status: 'processing', payload, result: null, priority: 0,
    attempts: 1, max_attempts: 3, scheduled_at: now, backoff_base_ms: 0, backoff_max_ms: 0,
    worker_id: 'fake', lease_id: randomUUID(), cancel_requested_at: null, started_at: now,
    completed_at: null, created_at: now, updated_at: now, last_error: null, errors: [], progress: null,
    idempotency_key: null, trace_id: null, actor_id: null, request_id: null,
  };
}

type Hook<A extends unknown[], R> = ((...args: A) => Promise<R> | R) | undefined;

/**
 * The queue's five calls over an array of ready jobs. Records every call; a test can override any call
 * with a hook (hang, throw, stall), and send wake-up hints with notify().
 */
export class FakeSource implements DataSource {
  readonly ready: Job[] = [];
  readonly claims: Array<{ req: ClaimRequest; at: number; signal: AbortSignal }> = [];
  readonly heartbeats: Array<{ items: Lease[]; at: number; signal: AbortSignal }> = [];
  readonly completed = new Map<string, unknown>();
  readonly failed = new Map<string, FailItem>();
  readonly released = new Set<string>();
  claimHook: Hook<[ClaimRequest, AbortSignal], Job[]>;
  heartbeatHook: Hook<[Lease[], AbortSignal], HeartbeatRow[]>;
  private hint: (() => void) | null = null;

  add(...jobs: Job[]): Job[] {
    this.ready.push(...jobs);
    return jobs;
  }

  /** A NOTIFY: new work may be ready. */
  notify(): void {
    this.hint?.();
  }

  async claim(req: ClaimRequest, signal: AbortSignal): Promise<Job[]> {
    this.claims.push({ req, at: performance.now(), signal });
    if (this.claimHook) return this.claimHook(req, signal);
    return this.ready.splice(0, req.count);
  }

  async heartbeat(items: Lease[], _leaseSeconds: number, signal: AbortSignal): Promise<HeartbeatRow[]> {
    this.heartbeats.push({ items, at: performance.now(), signal });
    if (this.heartbeatHook) return this.heartbeatHook(items, signal);
    return items.map((i) => ({ id: i.id, lease_valid: true, cancel_requested: false }));
  }

  async complete(items: CompleteItem[]): Promise<Set<string>> {
    for (const i of items) this.completed.set(i.id, JSON.parse(i.resultJson));
    return new Set(items.map((i) => i.id));
  }

  async fail(items: FailItem[]): Promise<Map<string, JobStatus>> {
    for (const i of items) this.failed.set(i.id, i);
    return new Map(items.map((i) => [i.id, i.retryable ? 'pending' : 'failed']));
  }

  async release(items: Lease[]): Promise<Set<string>> {
    for (const i of items) this.released.add(i.id);
    return new Set(items.map((i) => i.id));
  }

  subscribe(onHint: () => void): { stop(): Promise<void> } {
    this.hint = onHint;
    return { stop: async () => { this.hint = null; } };
  }
}

/** A promise the test resolves: lets a handler wait for the test. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => { open = r; });
  return { wait, open };
}

/** Blocks the event loop for ms, as a stalled process (GC, CPU starvation) would. */
export function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* busy */ }
}

/**
 * The usual setup of a worker-process test file: its own database with the executions table, and a
 * list of the worker processes it starts, all killed after the file's tests.
 */
export function useWorkerProcesses(): { db: TestDatabase; workers: WorkerProcess[] } {
  const workers: WorkerProcess[] = [];
  const db = useTestDatabase();
  beforeAll(async () => { await createExecutionsTable(db.sql); });
  afterAll(async () => { await killAll(workers); });
  return { db, workers };
}
