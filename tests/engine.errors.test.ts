/**
 * Argument validation: every engine function rejects bad input with our SQLSTATEs (never a raw Postgres
 * error), and the SQLSTATE table in supabase/functions/_supaqueue/errors.ts matches what the SQL raises.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { TransactionSql } from 'postgres';
import { beforeAll, describe, expect, test } from 'vitest';
import { ERROR_CODES } from '../supabase/functions/_supaqueue/errors.ts';
import { ROOT } from '../scripts/lib/stack.ts';
import { asRole, asUser, makeWorld, sqlState, useTestDatabase } from './helpers/db.ts';

const db = useTestDatabase();
let tenant: string;
let member: string;
beforeAll(async () => { ({ tenant, member } = await makeWorld(db.sql, { member: 'member' })); });

/** Runs a call as the service role in a transaction that is rolled back; resolves with its SQLSTATE. */
const serviceCode = (fn: (tx: TransactionSql) => Promise<unknown>) =>
  sqlState(asRole(db.sql, 'service_role', { role: 'service_role' }, fn, { rollback: true }));

type Spec = Record<string, unknown>;
const job = (extra: Spec = {}): Spec => ({ tenant_id: tenant, type: 'valid.job', ...extra });
const enqueueJobs = (jobs: unknown) => (tx: TransactionSql) => tx`select * from public.enqueue_jobs(${tx.json(jobs as never)})`;
const big = (bytes: number) => ({ blob: 'x'.repeat(bytes) });

describe('enqueue_jobs rejects each bad spec', () => {
  const cases: [string, () => unknown, string][] = [
    ['jobs not an array', () => ({ tenant_id: tenant, type: 'a.b' }), 'QJ001'],
    ['a job that is not an object', () => [1], 'QJ001'],
    ['more than 10,000 jobs', () => Array.from({ length: 10_001 }, () => job()), 'QJ001'],
    ['an unknown field', () => [job({ colour: 'red' })], 'QJ001'],
    ['no tenant_id', () => [{ type: 'a.b' }], 'QJ001'],
    ['a tenant_id that is not a UUID', () => [job({ tenant_id: 'tenant-1' })], 'QJ001'],
    ['a tenant_id of the wrong type', () => [job({ tenant_id: 42 })], 'QJ001'],
    ['an unknown tenant', () => [job({ tenant_id: randomUUID() })], 'QJ002'],
    ['no type', () => [{ tenant_id: tenant }], 'QJ001'],
    ['a type with spaces and capitals', () => [job({ type: 'Send Email' })], 'QJ001'],
    ['a type of 129 characters', () => [job({ type: 'a'.repeat(129) })], 'QJ001'],
    ['a numeric type', () => [job({ type: 123 })], 'QJ001'],
    ['a string payload', () => [job({ payload: 'hello' })], 'QJ001'],
    ['a boolean payload', () => [job({ payload: true })], 'QJ001'],
    ['a payload over 256 KiB', () => [job({ payload: big(300 * 1024) })], 'QJ007'],
    ['priority 101', () => [job({ priority: 101 })], 'QJ001'],
    ['priority -101', () => [job({ priority: -101 })], 'QJ001'],
    ['a fractional priority', () => [job({ priority: 1.5 })], 'QJ001'],
    ['a priority beyond integer range', () => [job({ priority: 1e12 })], 'QJ001'],
    ['a string priority', () => [job({ priority: 'high' })], 'QJ001'],
    ['max_attempts 0', () => [job({ max_attempts: 0 })], 'QJ001'],
    ['max_attempts over max_attempts_limit()', () => [job({ max_attempts: 1001 })], 'QJ001'],
    ['a negative delay_ms', () => [job({ delay_ms: -1 })], 'QJ001'],
    ['a delay_ms over a year', () => [job({ delay_ms: 400 * 86_400_000 })], 'QJ001'],
    ['a delay_ms beyond any interval', () => [job({ delay_ms: 9e18 })], 'QJ001'],
    ['a non-numeric delay_ms', () => [job({ delay_ms: 'soon' })], 'QJ001'],
    ['run_at that is not a timestamp', () => [job({ run_at: 'tomorrow-ish' })], 'QJ001'],
    ['run_at more than a day in the past', () => [job({ run_at: new Date(Date.now() - 2 * 86_400_000).toISOString() })], 'QJ001'],
    ['run_at more than a year ahead', () => [job({ run_at: new Date(Date.now() + 400 * 86_400_000).toISOString() })], 'QJ001'],
    ['both run_at and delay_ms', () => [job({ run_at: new Date().toISOString(), delay_ms: 10 })], 'QJ001'],
    ['an empty idempotency_key', () => [job({ idempotency_key: '' })], 'QJ001'],
    ['an idempotency_key of 256 characters', () => [job({ idempotency_key: 'k'.repeat(256) })], 'QJ001'],
    ['a trace_id of 129 characters', () => [job({ trace_id: 't'.repeat(129) })], 'QJ001'],
    ['a negative backoff_base_ms', () => [job({ backoff_base_ms: -1 })], 'QJ001'],
    ['backoff_max_ms below backoff_base_ms', () => [job({ backoff_base_ms: 5000, backoff_max_ms: 1000 })], 'QJ001'],
    ['backoff_max_ms over 7 days', () => [job({ backoff_max_ms: 604_800_001 })], 'QJ001'],
    ['one bad job among good ones', () => [job(), job(), job({ priority: 1000 })], 'QJ001'],
  ];
  test.each(cases)('%s', async (_name, jobs, code) => {
    expect(await serviceCode(enqueueJobs(jobs()))).toBe(code);
  });

  test('a rejected batch inserts none of its jobs', async () => {
    const before = (await db.sql`select count(*)::int as n from public.job_queue`)[0].n;
    await sqlState(asRole(db.sql, 'service_role', { role: 'service_role' }, enqueueJobs([job(), job({ priority: 1000 })])));
    expect((await db.sql`select count(*)::int as n from public.job_queue`)[0].n).toBe(before);
  });
});

describe('enqueue_job and the member path validate the same way', () => {
  test.each([
    ['a null tenant_id', (tx: TransactionSql) => tx`select * from public.enqueue_job(null, 'a.b')`, 'QJ001'],
    ['a null type', (tx: TransactionSql) => tx`select * from public.enqueue_job(${tenant}::uuid, null)`, 'QJ001'],
    ['priority 500', (tx: TransactionSql) => tx`select * from public.enqueue_job(${tenant}::uuid, 'a.b', priority => 500)`, 'QJ001'],
    ['a negative delay', (tx: TransactionSql) => tx`select * from public.enqueue_job(${tenant}::uuid, 'a.b', delay_ms => -5)`, 'QJ001'],
    ['an unknown tenant', (tx: TransactionSql) => tx`select * from public.enqueue_job(${randomUUID()}::uuid, 'a.b')`, 'QJ002'],
    ['an oversized payload', (tx: TransactionSql) => tx`select * from public.enqueue_job(${tenant}::uuid, 'a.b', ${tx.json(big(270_000))})`, 'QJ007'],
  ])('enqueue_job with %s', async (_name, call, code) => {
    expect(await serviceCode(call)).toBe(code);
  });

  // Specs are built lazily: `tenant` exists only once beforeAll has run.
  test.each([
    ['a tenant_id that is not a UUID', () => [job({ tenant_id: 'nope' })], 'QJ001'],
    ['an unknown field', () => [job({ colour: 'red' })], 'QJ001'],
    ['an oversized payload', () => [job({ payload: big(300 * 1024) })], 'QJ007'],
    ['an unknown tenant', () => [job({ tenant_id: randomUUID() })], 'QJ002'],
  ])('a member enqueueing %s', async (_name, jobs, code) => {
    expect(await sqlState(asUser(db.sql, member, enqueueJobs(jobs())))).toBe(code);
  });
});

describe('worker, retry/cancel and maintenance functions reject bad arguments with QJ001', () => {
  const id = randomUUID();
  const cases: [string, (tx: TransactionSql) => Promise<unknown>, string][] = [
    ['claim_jobs: empty worker_id', (tx) => tx`select * from public.claim_jobs('', null, 10, 30)`, 'QJ001'],
    ['claim_jobs: null worker_id', (tx) => tx`select * from public.claim_jobs(null, null, 10, 30)`, 'QJ001'],
    ['claim_jobs: worker_id of 201 characters', (tx) => tx`select * from public.claim_jobs(${'w'.repeat(201)}, null, 10, 30)`, 'QJ001'],
    ['claim_jobs: batch_size 0', (tx) => tx`select * from public.claim_jobs('w', null, 0, 30)`, 'QJ001'],
    ['claim_jobs: batch_size 1001', (tx) => tx`select * from public.claim_jobs('w', null, 1001, 30)`, 'QJ001'],
    ['claim_jobs: null batch_size', (tx) => tx`select * from public.claim_jobs('w', null, null, 30)`, 'QJ001'],
    ['claim_jobs: lease_seconds 0', (tx) => tx`select * from public.claim_jobs('w', null, 10, 0)`, 'QJ001'],
    ['claim_jobs: lease_seconds over a day', (tx) => tx`select * from public.claim_jobs('w', null, 10, 86401)`, 'QJ001'],
    ['complete_jobs: null ids', (tx) => tx`select * from public.complete_jobs(null, array[${id}]::uuid[])`, 'QJ001'],
    ['complete_jobs: arrays of different lengths', (tx) => tx`select * from public.complete_jobs(array[${id}]::uuid[], '{}')`, 'QJ001'],
    ['complete_jobs: results of another length', (tx) => tx`select * from public.complete_jobs(array[${id}]::uuid[], array[${id}]::uuid[], '{}')`, 'QJ001'],
    ['complete_jobs: a result over 1 MiB', (tx) => tx`select * from public.complete_jobs(array[${id}]::uuid[], array[${id}]::uuid[], array[${tx.json(big(1_100_000))}]::jsonb[])`, 'QJ007'],
    ['fail_jobs: errors of another length', (tx) => tx`select * from public.fail_jobs(array[${id}]::uuid[], array[${id}]::uuid[], '{}')`, 'QJ001'],
    ['fail_jobs: retryable of another length', (tx) => tx`select * from public.fail_jobs(array[${id}]::uuid[], array[${id}]::uuid[], array['e'], array[true, false])`, 'QJ001'],
    ['release_jobs: arrays of different lengths', (tx) => tx`select * from public.release_jobs(array[${id}]::uuid[], null)`, 'QJ001'],
    ['heartbeat_jobs: arrays of different lengths', (tx) => tx`select * from public.heartbeat_jobs(array[${id}]::uuid[], '{}')`, 'QJ001'],
    ['heartbeat_jobs: lease_seconds 0', (tx) => tx`select * from public.heartbeat_jobs(array[${id}]::uuid[], array[${id}]::uuid[], 0)`, 'QJ001'],
    ['set_job_progress: null progress', (tx) => tx`select public.set_job_progress(${id}::uuid, ${id}::uuid, null)`, 'QJ001'],
    ['retry_job: null job_id', (tx) => tx`select * from public.retry_job(null)`, 'QJ001'],
    ['retry_job: negative extra_attempts', (tx) => tx`select * from public.retry_job(${id}::uuid, -1)`, 'QJ001'],
    ['retry_job: extra_attempts 101', (tx) => tx`select * from public.retry_job(${id}::uuid, 101)`, 'QJ001'],
    ['cancel_job: null job_id', (tx) => tx`select * from public.cancel_job(null)`, 'QJ001'],
    ['reclaim_expired_jobs: max_jobs 0', (tx) => tx`select public.reclaim_expired_jobs(0)`, 'QJ001'],
    ['reclaim_expired_jobs: max_jobs 100001', (tx) => tx`select public.reclaim_expired_jobs(100001)`, 'QJ001'],
    ['purge_finished_jobs: a negative retention', (tx) => tx`select public.purge_finished_jobs('-1 day', 10)`, 'QJ001'],
    ['purge_finished_jobs: null max_jobs', (tx) => tx`select public.purge_finished_jobs('1 day', null)`, 'QJ001'],
    ['run_maintenance: max_jobs 0', (tx) => tx`select public.run_maintenance('1 day', 0)`, 'QJ001'],
  ];
  test.each(cases)('%s', async (_name, call, code) => {
    expect(await serviceCode(call)).toBe(code);
  });

  test('a member retrying with bad extra_attempts gets QJ001 before any job lookup', async () => {
    expect(await sqlState(asUser(db.sql, member, (tx) => tx`select * from public.retry_job(${randomUUID()}::uuid, -3)`))).toBe('QJ001');
  });
});

describe('the SQLSTATE table', () => {
  const migrations = path.join(ROOT, 'supabase/migrations');
  const sqlText = fs.readdirSync(migrations).filter((f) => f.endsWith('.sql')).map((f) => fs.readFileSync(path.join(migrations, f), 'utf8')).join('\n');
  const raisedInSql = new Set([...sqlText.matchAll(/errcode\s*=\s*'(QJ\d{3})'/g)].map((m) => m[1]));
  // Raised by the edge API's rate limiter in TypeScript, never by SQL.
  const RAISED_OUTSIDE_SQL = ['QJ009'];

  test('every QJ code raised in the migrations is in errors.ts, and errors.ts has no code the SQL does not raise', () => {
    const table = new Set(Object.keys(ERROR_CODES));
    expect([...raisedInSql].sort()).toEqual([...table].filter((c) => !RAISED_OUTSIDE_SQL.includes(c)).sort());
  });

  test('the codes kept for the edge API are really not raised by SQL', () => {
    for (const code of RAISED_OUTSIDE_SQL) {
      expect(raisedInSql.has(code)).toBe(false);
      expect(Object.keys(ERROR_CODES)).toContain(code);
    }
  });

  test('the code tables in the migrations\' headers (the engine\'s, continued by later ones) match errors.ts', () => {
    const documented = Object.fromEntries([...sqlText.matchAll(/^--\s+(QJ\d{3})\s+([A-Z_]+)\s/gm)].map((m) => [m[1], m[2]]));
    expect(documented).toEqual(Object.fromEntries(Object.entries(ERROR_CODES).map(([c, v]) => [c, v.name])));
  });
});
