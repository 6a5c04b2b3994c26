/**
 * Hardening (issue 16, item 7): users cannot forge a job's attribution or its retry pacing. On user
 * calls the engine sets actor_id to auth.uid() (another value: QJ010) and refuses backoff_base_ms below
 * supaqueue.min_user_backoff_ms() (QJ001); only the service role sets them freely. trace_id and
 * request_id are correlation ids the caller picks: kept as given, never identity.
 */
import { beforeAll, expect, test } from 'vitest';
import { asService, asUser, makeWorld, sqlState, useTestDatabase } from './helpers/db.ts';
import { jobRow } from './engine.helpers.ts';

const db = useTestDatabase();
let tenant: string;
let member: string;
let superAdmin: string;
beforeAll(async () => { ({ tenant, member, superAdmin } = await makeWorld(db.sql, { member: 'member', superAdmin: 'super_admin' })); });

async function jobCount(): Promise<number> {
  const [r] = await db.sql`select count(*)::int as n from public.job_queue where tenant_id = ${tenant}`;
  return r.n as number;
}

test('the attack: a member cannot enqueue as a super admin (actor_id forged: QJ010, nothing stored)', async () => {
  const before = await jobCount();
  expect(await sqlState(asUser(db.sql, member, (tx) => tx`
    select job_id from public.enqueue_job(${tenant}::uuid, 'forged.job', actor_id => ${superAdmin}, trace_id => 'forged', request_id => 'forged')`))).toBe('QJ010');
  expect(await jobCount()).toBe(before);
});

test('a member cannot pose as a schedule through enqueue_jobs (QJ010)', async () => {
  expect(await sqlState(asUser(db.sql, member, (tx) => tx`
    select job_id from public.enqueue_jobs(${tx.json([{ tenant_id: tenant, type: 'forged.job', actor_id: `schedule:${crypto.randomUUID()}` }] as never)})`))).toBe('QJ010');
});

test('a member\'s job is attributed to the member when no actor_id is sent', async () => {
  const [{ job_id }] = await asUser(db.sql, member, (tx) => tx`select job_id from public.enqueue_job(${tenant}::uuid, 'mine.job')`);
  expect((await jobRow(db.sql, job_id)).actor_id).toBe(member);
});

test('trace_id and request_id from a member are kept as correlation ids', async () => {
  const [{ job_id }] = await asUser(db.sql, member, (tx) => tx`
    select job_id from public.enqueue_job(${tenant}::uuid, 'mine.job', trace_id => 'trace-x', request_id => 'req-x')`);
  expect(await jobRow(db.sql, job_id)).toMatchObject({ trace_id: 'trace-x', request_id: 'req-x', actor_id: member });
});

test('the attack: a member cannot set a zero backoff (QJ001)', async () => {
  expect(await sqlState(asUser(db.sql, member, (tx) => tx`
    select job_id from public.enqueue_jobs(${tx.json([{ tenant_id: tenant, type: 'hot.job', backoff_base_ms: 0, backoff_max_ms: 0 }] as never)})`))).toBe('QJ001');
});

test('a member may choose a slower backoff than the floor', async () => {
  const [{ job_id }] = await asUser(db.sql, member, (tx) => tx`
    select job_id from public.enqueue_job(${tenant}::uuid, 'slow.job', backoff_base_ms => 5000, backoff_max_ms => 60000)`);
  expect(await jobRow(db.sql, job_id)).toMatchObject({ backoff_base_ms: 5000, backoff_max_ms: 60000 });
});

test('the service role sets actor_id and backoff freely', async () => {
  const [{ job_id }] = await asService(db.sql, (tx) => tx`
    select job_id from public.enqueue_job(${tenant}::uuid, 'svc.job', actor_id => 'billing-cron', backoff_base_ms => 0, backoff_max_ms => 0)`);
  expect(await jobRow(db.sql, job_id)).toMatchObject({ actor_id: 'billing-cron', backoff_base_ms: 0 });
});
