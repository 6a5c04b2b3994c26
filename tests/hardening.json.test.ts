/**
 * Hardening (issue 16, item 5): JSON nested deeper than supaqueue.max_json_depth() (32) is never
 * stored: payloads (enqueue, schedules) and progress are refused with QJ001; a worker's too-deep result
 * fails that attempt instead of being stored (or of losing the job). Depth: a scalar is 0, {} and [] 1.
 */
import { beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { MAX_JSON_DEPTH } from '../supabase/functions/_supaqueue/limits.ts';
import { asService, asUser, enqueueMany, makeWorld, sqlState, useTestDatabase } from './helpers/db.ts';
import { claim, clearPendingJobs, jobRow } from './engine.helpers.ts';

const db = useTestDatabase();
let tenant: string;
let member: string;
let admin: string;
beforeAll(async () => { ({ tenant, member, admin } = await makeWorld(db.sql, { member: 'member', admin: 'admin' })); });
beforeEach(async () => { await clearPendingJobs(db.sql); });

/** An object nested `depth` levels: {"a":{"a":...{}}}. Built as text: JS would recurse on it too. */
function nested(depth: number): string {
  return '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
}
const ATTACK = nested(12_000);

function enqueueRaw(payload: string, as: 'member' | 'service') {
  const run = (tx: Parameters<Parameters<typeof asService>[1]>[0]) =>
    tx`select job_id from public.enqueue_jobs(jsonb_build_array(jsonb_build_object('tenant_id', ${tenant}::uuid, 'type', 'deep.job', 'payload', ${payload}::text::jsonb)))`;
  return as === 'member' ? asUser(db.sql, member, run) : asService(db.sql, run);
}

test('the limit has one value in SQL, and the edge functions mirror it', async () => {
  const [r] = await db.sql`select supaqueue.max_json_depth() as d`;
  expect(r.d).toBe(MAX_JSON_DEPTH);
});

test('the attack: a member\'s 12,000-level payload is refused (QJ001) and nothing is stored', async () => {
  expect(await sqlState(enqueueRaw(ATTACK, 'member'))).toBe('QJ001');
  const [r] = await db.sql`select count(*)::int as n from public.job_queue where type = 'deep.job'`;
  expect(r.n).toBe(0);
});

test('the service path refuses it too', async () => {
  expect(await sqlState(enqueueRaw(ATTACK, 'service'))).toBe('QJ001');
});

test('a payload exactly max_json_depth deep is accepted, one level more is refused', async () => {
  expect(await sqlState(enqueueRaw(nested(MAX_JSON_DEPTH), 'member'))).toBeUndefined();
  expect(await sqlState(enqueueRaw(nested(MAX_JSON_DEPTH + 1), 'member'))).toBe('QJ001');
});

test('arrays count as levels like objects', async () => {
  const deepArray = '['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1);
  expect(await sqlState(enqueueRaw(deepArray, 'member'))).toBe('QJ001');
});

describe('schedules', () => {
  test('create_job_schedule refuses a too-deep payload (QJ001)', async () => {
    expect(await sqlState(asUser(db.sql, admin, (tx) => tx`
      select id from public.create_job_schedule(jsonb_build_object('tenant_id', ${tenant}::uuid, 'name', 'deep',
        'cron', '* * * * *', 'job_type', 'deep.job', 'payload', ${ATTACK}::text::jsonb))`))).toBe('QJ001');
  });

  test('update_job_schedule refuses a too-deep payload (QJ001)', async () => {
    const [s] = await db.sql`insert into public.job_schedules (tenant_id, name, cron, job_type) values (${tenant}, 'shallow', '* * * * *', 'deep.job') returning id`;
    expect(await sqlState(asUser(db.sql, admin, (tx) => tx`
      select id from public.update_job_schedule(${s.id}::uuid, jsonb_build_object('payload', ${ATTACK}::text::jsonb))`))).toBe('QJ001');
  });
});

describe('worker side', () => {
  test('set_job_progress refuses too-deep progress (QJ001)', async () => {
    await enqueueMany(db.sql, tenant, 1);
    const [job] = await claim(db.sql, 'w', 1);
    expect(await sqlState(asService(db.sql, (tx) => tx`
      select public.set_job_progress(${job.id}::uuid, ${job.lease_id}::uuid, jsonb_build_object('detail', ${nested(40)}::text::jsonb))`))).toBe('QJ001');
  });

  test('a too-deep result fails the attempt (not stored, job kept as failed with the reason); the rest of the batch completes', async () => {
    await enqueueMany(db.sql, tenant, 2, { max_attempts: 3 });
    const [deep, fine] = await claim(db.sql, 'w', 2);
    const done = await asService(db.sql, (tx) => tx`
      select id from public.complete_jobs(${[deep.id, fine.id]}::uuid[], ${[deep.lease_id, fine.lease_id]}::uuid[],
        array[${ATTACK}::text::jsonb, '{"ok":true}'::jsonb])`);
    expect(done.map((r) => r.id)).toEqual([fine.id]);
    const row = await jobRow(db.sql, deep.id);
    expect(row).toMatchObject({ status: 'failed', result: null, lease_id: null, attempts: 1 });
    expect(row.last_error).toMatch(/nested deeper/);
    expect(row.errors).toHaveLength(1);
    expect((await jobRow(db.sql, fine.id))).toMatchObject({ status: 'completed', result: { ok: true } });
  });
});
