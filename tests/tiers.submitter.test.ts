/**
 * Every job records the user who submitted it (issue 12): auth.uid() on user calls (another value is
 * FORBIDDEN, like actor_id), chosen freely by the service role (on behalf of a user) or left out. Members
 * read the column; "my jobs" has an index that holds no status (claims stay HOT). A tier's per-request
 * limits apply to user calls: payload bytes (PAYLOAD_TOO_LARGE) and max_attempts (lowered).
 */
import { beforeAll, expect, test } from 'vitest';
import { asService, asUser, makeWorld, sqlState, useTestDatabase } from './helpers/db.ts';
import { jobRow } from './engine.helpers.ts';

const db = useTestDatabase();
let w: { tenant: string; member: string; peer: string };
beforeAll(async () => { w = await makeWorld(db.sql, { member: 'member', peer: 'member' }); });

const enqueueAs = (user: string, spec: Record<string, unknown> = {}) =>
  asUser(db.sql, user, async (tx) => (await tx`select job_id from public.enqueue_jobs(${tx.json([{ tenant_id: w.tenant, type: 'sub.job', ...spec }] as never)})`)[0].job_id as string);

test('a member\'s job records the member as its submitter', async () => {
  expect((await jobRow(db.sql, await enqueueAs(w.member))).submitted_by).toBe(w.member);
});

test('the attack: a member cannot submit a job as another user (QJ010, nothing stored)', async () => {
  const [{ n: before }] = await db.sql`select count(*)::int as n from public.job_queue`;
  expect(await sqlState(enqueueAs(w.member, { submitted_by: w.peer }))).toBe('QJ010');
  expect((await db.sql`select count(*)::int as n from public.job_queue`)[0].n).toBe(before);
});

test('a member may name themselves as the submitter', async () => {
  expect((await jobRow(db.sql, await enqueueAs(w.member, { submitted_by: w.member }))).submitted_by).toBe(w.member);
});

test('the service role enqueues on behalf of a user', async () => {
  const [{ job_id }] = await asService(db.sql, (tx) => tx`select job_id from public.enqueue_jobs(${tx.json([{ tenant_id: w.tenant, type: 'svc.job', submitted_by: w.peer }] as never)})`);
  expect((await jobRow(db.sql, job_id)).submitted_by).toBe(w.peer);
});

test('a service job enqueued for nobody has no submitter', async () => {
  const [{ job_id }] = await asService(db.sql, (tx) => tx`select job_id from public.enqueue_job(${w.tenant}::uuid, 'svc.job')`);
  expect((await jobRow(db.sql, job_id)).submitted_by).toBeNull();
});

test('a submitted_by that is not a UUID is INVALID_ARGUMENT (QJ001)', async () => {
  expect(await sqlState(asService(db.sql, (tx) => tx`select job_id from public.enqueue_jobs(${tx.json([{ tenant_id: w.tenant, type: 'svc.job', submitted_by: 'alice' }] as never)})`))).toBe('QJ001');
});

test('members read submitted_by (column privilege)', async () => {
  const id = await enqueueAs(w.member);
  const rows = await asUser(db.sql, w.peer, (tx) => tx`select submitted_by from public.job_queue where id = ${id}`);
  expect(rows).toEqual([{ submitted_by: w.member }]);
});

test('"my jobs" is served by the submitter index, in order, without a sort', async () => {
  const plan = await db.sql.begin(async (tx) => {
    await tx`set local enable_seqscan = off`;
    return tx.unsafe(`explain (format json) select id from public.job_queue j
      where j.tenant_id = $1 and j.submitted_by = $2 order by j.created_at desc, j.id desc limit 20`, [w.tenant, w.member]);
  });
  const text = JSON.stringify(plan);
  expect(text).toContain('job_queue_submitted_by_idx');
  expect(text).not.toContain('"Node Type":"Sort"');
});

test('no index this issue added to job_queue holds or filters on status (claims stay HOT)', async () => {
  const [r] = await db.sql`select pg_get_indexdef('public.job_queue_submitted_by_idx'::regclass) as def`;
  expect(r.def).not.toMatch(/status/);
});

test('a tier\'s payload limit refuses a larger payload from a member (PAYLOAD_TOO_LARGE, QJ007)', async () => {
  const { tenant, member } = await makeWorld(db.sql, { member: 'member' });
  await asService(db.sql, (tx) => tx`select tier from public.set_tenant_tier(${tenant}::uuid, 'free')`);
  const big = { blob: 'x'.repeat(70_000) };
  expect(await sqlState(asUser(db.sql, member, (tx) => tx`select job_id from public.enqueue_job(${tenant}::uuid, 'big.job', ${tx.json(big)})`))).toBe('QJ007');
});

test('a tier\'s max_attempts lowers what a member asks for', async () => {
  const { tenant, member } = await makeWorld(db.sql, { member: 'member' });
  await asService(db.sql, (tx) => tx`select tier from public.set_tenant_tier(${tenant}::uuid, 'free')`);
  const [{ job_id }] = await asUser(db.sql, member, (tx) => tx`select job_id from public.enqueue_job(${tenant}::uuid, 'many.job', max_attempts => 50)`);
  expect((await jobRow(db.sql, job_id)).max_attempts).toBe(3);
});
