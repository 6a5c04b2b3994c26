/**
 * Queue position (issue 12): public.job_position says how many ready jobs the claim takes before a job
 * (priority, then the fair tag), by a walk of at most position_cap() + 1 index entries; capped beyond.
 * Checked against the claim itself, with priorities and several tenants.
 */
import { beforeEach, expect, test } from 'vitest';
import { asService, asUser, enqueueMany, makeTenant, makeWorld, sqlState, useTestDatabase } from './helpers/db.ts';
import { claim, clearPendingJobs, complete } from './engine.helpers.ts';

const db = useTestDatabase();
beforeEach(async () => { await clearPendingJobs(db.sql); });

const position = (id: string) => asService(db.sql, async (tx) => (await tx`select public.job_position(${id}::uuid) as p`)[0].p);

/** Tenants a (4 jobs, then 1 at priority -5), b (2 jobs, enqueued later), c (1 at priority 10). */
async function mixedLine(): Promise<{ a: string[]; b: string[]; c: string[]; low: string }> {
  const [ta, tb, tc] = [await makeTenant(db.sql), await makeTenant(db.sql), await makeTenant(db.sql)];
  const a = await enqueueMany(db.sql, ta, 4, { type: 'pos.job' });
  const b = await enqueueMany(db.sql, tb, 2, { type: 'pos.job' });
  const c = await enqueueMany(db.sql, tc, 1, { type: 'pos.job', priority: 10 });
  const [low] = await enqueueMany(db.sql, ta, 1, { type: 'pos.job', priority: -5 });
  return { a, b, c, low };
}

test('with several priorities and tenants, every ready job\'s "ahead" is its place in the claim order', async () => {
  // No two jobs share a priority and tag here (ties: next test), so the claim order is fixed.
  const [ta, tb, tc] = [await makeTenant(db.sql), await makeTenant(db.sql), await makeTenant(db.sql)];
  const ids = [
    ...await enqueueMany(db.sql, ta, 3, { type: 'pos.job' }),
    ...await enqueueMany(db.sql, tb, 2, { type: 'pos.job', priority: 5 }),
    ...await enqueueMany(db.sql, tc, 1, { type: 'pos.job', priority: 10 }),
    ...await enqueueMany(db.sql, ta, 1, { type: 'pos.job', priority: -5 }),
  ];
  const ahead = new Map<string, number>();
  for (const id of ids) ahead.set(id, (await position(id)).ahead);
  const claimed: string[] = [];
  for (let i = 0; i < ids.length; i++) claimed.push(...(await claim(db.sql, 'w-pos', 1, { types: ['pos.job'] })).map((j) => j.id));
  expect(claimed.map((id) => ahead.get(id))).toEqual(ids.map((_, i) => i));
});

test('fairness in the numbers: a tenant enqueuing later with no backlog is placed at the front', async () => {
  const line = await mixedLine();
  expect((await position(line.c[0])).ahead).toBe(0);
  // b's first job shares a's first tag (b joined at the front): one of them is 1, the other 2.
  expect([(await position(line.a[0])).ahead, (await position(line.b[0])).ahead].sort()).toEqual([1, 2]);
  expect((await position(line.a[3])).ahead).toBe(6); // behind c, a0, b0, a1, b1, a2
  expect((await position(line.low)).ahead).toBe(7);
});

test('a higher priority job is ahead of a whole backlog', async () => {
  const t = await makeTenant(db.sql);
  await enqueueMany(db.sql, t, 5);
  const [urgent] = await enqueueMany(db.sql, t, 1, { priority: 50 });
  expect(await position(urgent)).toMatchObject({ state: 'ready', ahead: 0, capped: false });
});

test('beyond the cap the answer is "at least 1,000" (capped), and exact up to it', async () => {
  const t = await makeTenant(db.sql);
  const ids = await enqueueMany(db.sql, t, 1002);
  expect(await position(ids[1000])).toMatchObject({ ahead: 1000, capped: false });
  expect(await position(ids[1001])).toMatchObject({ ahead: 1000, capped: true });
});

test('latency_seconds is how long the job at the head of the line has been ready', async () => {
  const t = await makeTenant(db.sql);
  const [head, next] = await enqueueMany(db.sql, t, 2);
  await db.sql`update public.job_queue set scheduled_at = now() - interval '60 seconds' where id = ${head}`;
  const p = await position(next);
  expect(p.latency_seconds).toBeGreaterThanOrEqual(60);
  expect(p.latency_seconds).toBeLessThan(70);
});

test('a delayed job reports when it joins the line', async () => {
  const t = await makeTenant(db.sql);
  const [id] = await enqueueMany(db.sql, t, 1, { delay_ms: 3_600_000 });
  const p = await position(id);
  expect(p.state).toBe('delayed');
  expect(new Date(p.due_at).getTime()).toBeGreaterThan(Date.now() + 3_500_000);
});

test('a running job and a finished job have no position (null)', async () => {
  const t = await makeTenant(db.sql);
  const [id] = await enqueueMany(db.sql, t, 1, { type: 'pos.run' });
  const [held] = await claim(db.sql, 'w-run', 1, { types: ['pos.run'] });
  expect(await position(id)).toBeNull();
  await complete(db.sql, [held]);
  expect(await position(id)).toBeNull();
});

test('a member reads the position of their tenant\'s job', async () => {
  const { tenant, member } = await makeWorld(db.sql, { member: 'member' });
  const [id] = await enqueueMany(db.sql, tenant, 1);
  const [r] = await asUser(db.sql, member, (tx) => tx`select public.job_position(${id}::uuid) as p`);
  expect(r.p).toMatchObject({ state: 'ready', ahead: 0 });
});

test('the attack: another tenant\'s member asking for a job\'s position gets JOB_NOT_FOUND (QJ003)', async () => {
  const { member } = await makeWorld(db.sql, { member: 'member' });
  const [id] = await enqueueMany(db.sql, await makeTenant(db.sql), 1);
  expect(await sqlState(asUser(db.sql, member, (tx) => tx`select public.job_position(${id}::uuid)`))).toBe('QJ003');
});

test('a job that does not exist is JOB_NOT_FOUND (QJ003) for the service role too', async () => {
  expect(await sqlState(position(crypto.randomUUID()))).toBe('QJ003');
});
