/**
 * Live job status, database side (20261130000500_supaqueue_realtime.sql), against Realtime's database
 * interface from the bootstrap (realtime.messages, realtime.topic(), realtime.send(); the Realtime
 * server itself cannot run here): which topics get which message on every transition, the progress
 * throttle, that a failed broadcast never fails the job, the authorization matrix run the way the
 * Realtime server runs it, and the publication (the DELETE leak).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ROOT } from '../scripts/lib/stack.ts';
import { addMember, asService, asUser, createTestDatabase, enqueueMany, makeSuperAdmin, makeTenant, makeUser, userClaims, type TestDatabase } from './helpers/db.ts';
import { claim, complete, fail, heartbeat, type Lease } from './engine.helpers.ts';
import { broadcasts, canRead, canWrite, jobTopic, tenantTopic, type Broadcast } from './realtime.helpers.ts';

const MIGRATION = path.join(ROOT, 'supabase/migrations/20261130000500_supaqueue_realtime.sql');

let db: TestDatabase;
let A: string;
let B: string;
let alice: string; // member of A
let bob: string; // member of B
let root: string; // super admin, member of nothing

beforeAll(async () => {
  db = await createTestDatabase();
  [A, B] = [await makeTenant(db.sql), await makeTenant(db.sql)];
  [alice, bob, root] = [await makeUser(db.sql), await makeUser(db.sql), await makeUser(db.sql)];
  await addMember(db.sql, A, alice);
  await addMember(db.sql, B, bob);
  await makeSuperAdmin(db.sql, root);
});
afterAll(async () => { await db?.drop(); });

const type = () => `rt.${randomUUID().slice(0, 8)}`;

/** Enqueues one job of a type of its own for tenant A. */
async function newJob(spec: Record<string, unknown> = {}): Promise<{ id: string; type: string }> {
  const t = type();
  const [id] = await enqueueMany(db.sql, A, 1, { type: t, ...spec });
  return { id, type: t };
}

async function claimOne(t: string, lease = 30, worker = 'rt-worker'): Promise<Lease> {
  const [j] = await claim(db.sql, worker, 1, { types: [t], lease });
  return j;
}

/**
 * The job's broadcasts, as its tenant's topic saw them. The job's own topic carries the same messages in
 * the same order, except the first (its creation: nobody can watch a job before its id is known).
 */
async function statesOf(id: string, tenant = A): Promise<string[]> {
  const own = await broadcasts(db.sql, [jobTopic(id)]);
  const onTenant = (await broadcasts(db.sql, [tenantTopic(tenant)])).filter((m) => m.job?.id === id);
  expect(onTenant[0]?.job).toMatchObject({ id, status: 'pending', attempts: 0 });
  expect(own.map((m) => m.job)).toEqual(onTenant.slice(1).map((m) => m.job));
  return onTenant.map(describe);
}

const describe = (m: Broadcast) => [m.job.status, m.job.attempts, m.job.progress?.percent ?? '-', m.job.cancel_requested_at ? 'cancelling' : ''].join(':');

async function progress(j: Lease, percent: number): Promise<boolean> {
  const [r] = await asService(db.sql, (tx) => tx`select public.set_job_progress(${j.id}::uuid, ${j.lease_id}::uuid, ${tx.json({ percent })}) as ok`);
  return r.ok as boolean;
}

// ---------------------------------------------------------------------------------------------------
// Which topics receive which messages
// ---------------------------------------------------------------------------------------------------

test('a job run to completion: one message per transition on the job topic and the same on the tenant topic', async () => {
  const { id, type: t } = await newJob();
  const j = await claimOne(t);
  await progress(j, 40);
  await complete(db.sql, [j]);
  expect(await statesOf(id)).toEqual(['pending:0:-:', 'processing:1:-:', 'processing:1:40:', 'completed:1:40:']);
});

test('every message is a private broadcast with event job', async () => {
  const { id } = await newJob();
  const all = await broadcasts(db.sql, [jobTopic(id), tenantTopic(A)]);
  expect(all.length).toBeGreaterThan(0);
  for (const m of all) expect([m.event, m.private, m.extension]).toEqual(['job', true, 'broadcast']);
});

test('retry after failure, then permanent failure, then a manual retry: each transition once', async () => {
  const { id, type: t } = await newJob({ max_attempts: 2, backoff_base_ms: 0 });
  expect(await fail(db.sql, await claimOne(t), 'boom', true)).toBe('pending');
  expect(await fail(db.sql, await claimOne(t), 'boom again', true)).toBe('failed');
  await asUser(db.sql, alice, (tx) => tx`select * from public.retry_job(${id}::uuid, 1)`);
  expect(await statesOf(id)).toEqual(['pending:0:-:', 'processing:1:-:', 'pending:1:-:', 'processing:2:-:', 'failed:2:-:', 'pending:2:-:']);
});

test('cancelling: a pending job is cancelled at once; a running job shows the request, then ends cancelled', async () => {
  const pending = await newJob();
  await asUser(db.sql, alice, (tx) => tx`select * from public.cancel_job(${pending.id}::uuid)`);
  expect(await statesOf(pending.id)).toEqual(['pending:0:-:', 'cancelled:0:-:']);

  const running = await newJob();
  const j = await claimOne(running.type);
  await asUser(db.sql, alice, (tx) => tx`select * from public.cancel_job(${running.id}::uuid)`);
  await fail(db.sql, j, 'aborted', true);
  expect(await statesOf(running.id)).toEqual(['pending:0:-:', 'processing:1:-:', 'processing:1:-:cancelling', 'cancelled:1:-:']);
});

test('a released job and a job whose lease expired go back to pending, once each', async () => {
  const released = await newJob();
  const r = await claimOne(released.type);
  await asService(db.sql, (tx) => tx`select public.release_jobs(${[r.id]}::uuid[], ${[r.lease_id]}::uuid[])`);
  expect((await statesOf(released.id)).at(-1)).toBe('pending:0:-:');

  const expired = await newJob();
  await claimOne(expired.type, 0.1, 'rt-dying-worker'); // a lease is its worker's: this one stops renewing
  await new Promise((res) => setTimeout(res, 250));
  await asService(db.sql, (tx) => tx`select public.reclaim_expired_jobs()`);
  expect(await statesOf(expired.id)).toEqual(['pending:0:-:', 'processing:1:-:', 'pending:1:-:']);
});

test('heartbeats and the promotion of a delayed job change no watched column and send nothing', async () => {
  const { id, type: t } = await newJob();
  const j = await claimOne(t);
  const before = (await broadcasts(db.sql, [jobTopic(id)])).length;
  await heartbeat(db.sql, [j]);
  await heartbeat(db.sql, [j]);
  expect((await broadcasts(db.sql, [jobTopic(id)])).length).toBe(before);

  const delayed = await newJob({ delay_ms: 1 });
  await new Promise((res) => setTimeout(res, 20));
  await claim(db.sql, 'rt-worker', 1, { types: ['no.such.type'] }); // promotes every due job, claims none
  expect(await statesOf(delayed.id)).toEqual(['pending:0:-:']);
});

test('a bulk enqueue sends one message per job on the tenant topic, none on the new jobs\' own topics', async () => {
  const t = type();
  const ids = await enqueueMany(db.sql, B, 25, { type: t });
  const own = await broadcasts(db.sql, ids.map(jobTopic));
  const onTenant = (await broadcasts(db.sql, [tenantTopic(B)])).filter((m) => m.job.type === t);
  expect(own).toHaveLength(0);
  expect(onTenant.map((m) => m.job.id).sort()).toEqual([...ids].sort());
});

test('a job is only ever broadcast to its own tenant topic', async () => {
  const { id } = await newJob();
  const onB = (await broadcasts(db.sql, [tenantTopic(B)])).filter((m) => m.job.id === id);
  expect(onB).toEqual([]);
  expect(await statesOf(id, A)).toHaveLength(1);
});

// ---------------------------------------------------------------------------------------------------
// What a message carries
// ---------------------------------------------------------------------------------------------------

test('the payload is what a status view renders, never queue internals, payload or result', async () => {
  const { id, type: t } = await newJob({ payload: { secret: 'payload' } });
  const j = await claimOne(t);
  await asService(db.sql, (tx) => tx`select * from public.complete_jobs(${[j.id]}::uuid[], ${[j.lease_id]}::uuid[], array[${tx.json({ secret: 'result' })}]::jsonb[])`);
  const [m] = (await broadcasts(db.sql, [jobTopic(id)])).slice(-1);
  expect(Object.keys(m.job).sort()).toEqual(['attempts', 'cancel_requested_at', 'completed_at', 'created_at', 'id',
    'last_error', 'max_attempts', 'progress', 'scheduled_at', 'started_at', 'status', 'tenant_id', 'type', 'updated_at']);
  expect(JSON.stringify(m.payload)).not.toMatch(/secret|fair_key|lease_id|locked_until|worker_id/);
  expect(m.job).toMatchObject({ id, tenant_id: A, type: t, status: 'completed', attempts: 1 });
});

test('last_error is cut to 1000 characters in a message', async () => {
  const { id, type: t } = await newJob();
  await fail(db.sql, await claimOne(t), 'x'.repeat(5000), false);
  const [m] = (await broadcasts(db.sql, [jobTopic(id)])).slice(-1);
  expect(m.job.last_error).toHaveLength(1000);
});

// ---------------------------------------------------------------------------------------------------
// Progress throttle
// ---------------------------------------------------------------------------------------------------

test('a chatty handler: 50 progress updates within the interval send one message, the next status change carries the last', async () => {
  const { id, type: t } = await newJob();
  const j = await claimOne(t);
  // One transaction: its now() is fixed, so all 50 updates fall inside the interval however loaded the
  // machine is (the throttle compares transaction times).
  await asService(db.sql, async (tx) => {
    for (let p = 1; p <= 50; p++) await tx`select public.set_job_progress(${j.id}::uuid, ${j.lease_id}::uuid, ${tx.json({ percent: p })})`;
  });
  await complete(db.sql, [j]);
  expect(await statesOf(id)).toEqual(['pending:0:-:', 'processing:1:-:', 'processing:1:1:', 'completed:1:50:']);
});

test('progress is sent again once the interval has passed since the last progress message', async () => {
  const { id, type: t } = await newJob();
  const j = await claimOne(t);
  await asService(db.sql, async (tx) => { // one transaction: 10 and 20 fall in one interval, however slow the machine
    for (const percent of [10, 20]) await tx`select public.set_job_progress(${j.id}::uuid, ${j.lease_id}::uuid, ${tx.json({ percent })})`;
  });
  await new Promise((res) => setTimeout(res, 1100));
  await progress(j, 30);
  expect(await statesOf(id)).toEqual(['pending:0:-:', 'processing:1:-:', 'processing:1:10:', 'processing:1:30:']);
});

test('the throttle keeps one row per running job and forgets a job when it ends', async () => {
  const { id, type: t } = await newJob();
  const j = await claimOne(t);
  await progress(j, 10);
  const rows = () => db.sql`select job_id from supaqueue.job_progress_broadcasts where job_id = ${id}`;
  expect(await rows()).toHaveLength(1);
  await complete(db.sql, [j]);
  expect(await rows()).toHaveLength(0);
});

// ---------------------------------------------------------------------------------------------------
// A broadcast failure never fails the job's transaction
// ---------------------------------------------------------------------------------------------------

test('with no partition for the messages (Realtime\'s janitor behind), transitions still commit and nothing is sent', async () => {
  const { id, type: t } = await newJob();
  await db.sql`alter table realtime.messages detach partition realtime.messages_default`;
  try {
    const j = await claimOne(t);
    await progress(j, 50);
    expect(await complete(db.sql, [j])).toEqual([id]);
  } finally {
    await db.sql`alter table realtime.messages attach partition realtime.messages_default default`;
  }
  const [row] = await db.sql`select status from public.job_queue where id = ${id}`;
  expect(row.status).toBe('completed');
  expect(await statesOf(id)).toEqual(['pending:0:-:']);
});

test('a user path (cancel_job as a member) broadcasts too, through the trigger\'s own rights', async () => {
  const { id } = await newJob();
  await asUser(db.sql, alice, (tx) => tx`select * from public.cancel_job(${id}::uuid)`);
  expect((await statesOf(id)).at(-1)).toBe('cancelled:0:-:');
});

// ---------------------------------------------------------------------------------------------------
// Authorization, as the Realtime server checks it on join
// ---------------------------------------------------------------------------------------------------

const claimsOf = (who: 'alice' | 'bob' | 'root' | 'anon' | 'nobody'): Record<string, unknown> | null =>
  who === 'anon' ? null : userClaims(who === 'alice' ? alice : who === 'bob' ? bob : who === 'root' ? root : randomUUID());

test('authorization matrix: members of the tenant and super admins receive; other tenants, strangers and anon do not', async () => {
  const { id } = await newJob();
  const matrix: Record<string, [boolean, boolean]> = {};
  for (const who of ['alice', 'bob', 'root', 'nobody', 'anon'] as const) {
    matrix[who] = [(await canRead(db.sql, jobTopic(id), claimsOf(who))).broadcast,
      (await canRead(db.sql, tenantTopic(A), claimsOf(who))).broadcast];
  }
  expect(matrix).toEqual({ alice: [true, true], bob: [false, false], root: [true, true], nobody: [false, false], anon: [false, false] });
});

test('nobody can send on supaqueue topics: member, other tenant, super admin, anon', async () => {
  const { id } = await newJob();
  for (const who of ['alice', 'bob', 'root', 'anon'] as const) {
    expect([who, await canWrite(db.sql, jobTopic(id), claimsOf(who)), await canWrite(db.sql, tenantTopic(A), claimsOf(who))])
      .toEqual([who, false, false]);
  }
});

test('realtime.send by a signed-in user on a supaqueue topic stores nothing', async () => {
  const topic = tenantTopic(A);
  const before = (await broadcasts(db.sql, [topic])).length;
  await asUser(db.sql, alice, (tx) => tx`select realtime.send(${tx.json({ job: { id: 'forged' } })}, 'job', ${topic}, true)`);
  expect((await broadcasts(db.sql, [topic])).length).toBe(before);
});

test('presence is not granted on supaqueue topics (broadcast only)', async () => {
  expect((await canRead(db.sql, tenantTopic(A), claimsOf('alice'))).presence).toBe(false);
});

test('a removed member stops being authorized at once', async () => {
  const carol = await makeUser(db.sql);
  await addMember(db.sql, A, carol);
  expect((await canRead(db.sql, tenantTopic(A), userClaims(carol))).broadcast).toBe(true);
  await db.sql`delete from public.tenant_members where tenant_id = ${A} and user_id = ${carol}`;
  expect((await canRead(db.sql, tenantTopic(A), userClaims(carol))).broadcast).toBe(false);
});

test('malformed or unknown supaqueue topics are refused without an error', async () => {
  for (const topic of ['supaqueue:job:not-a-uuid', `supaqueue:job:${randomUUID()}`, `supaqueue:tenant:${A}`, 'supaqueue:', `supaqueue:job:${A}x`]) {
    expect([topic, (await canRead(db.sql, topic, claimsOf('alice'))).broadcast]).toEqual([topic, false]);
  }
});

test('a project-wide "anyone may read and send" policy does not open supaqueue topics, and still works for the app\'s own topics', async () => {
  const { id } = await newJob();
  await db.sql.begin(async (tx) => {
    await tx`create policy app_all_read on realtime.messages for select to anon, authenticated using (true)`;
    await tx`create policy app_all_send on realtime.messages for insert to anon, authenticated with check (true)`;
  });
  try {
    expect((await canRead(db.sql, jobTopic(id), claimsOf('bob'))).broadcast).toBe(false);
    expect((await canRead(db.sql, tenantTopic(A), claimsOf('anon'))).broadcast).toBe(false);
    expect(await canWrite(db.sql, tenantTopic(A), claimsOf('alice'))).toBe(false);
    expect((await canRead(db.sql, 'room:lobby', claimsOf('bob'))).broadcast).toBe(true);
    expect((await canRead(db.sql, 'room:lobby', claimsOf('anon'))).broadcast).toBe(true);
    expect(await canWrite(db.sql, 'room:lobby', claimsOf('anon'))).toBe(true);
  } finally {
    await db.sql`drop policy app_all_read on realtime.messages`;
    await db.sql`drop policy app_all_send on realtime.messages`;
  }
});

// ---------------------------------------------------------------------------------------------------
// The publication (DELETE leak) and re-running the migration
// ---------------------------------------------------------------------------------------------------

async function published(): Promise<string[]> {
  const rows = await db.sql`select schemaname || '.' || tablename as t from pg_publication_tables where pubname = 'supabase_realtime'`;
  return rows.map((r) => r.t as string);
}

test('job_queue is not in the supabase_realtime publication', async () => {
  const [pub] = await db.sql`select count(*)::int as n from pg_publication where pubname = 'supabase_realtime'`;
  expect(pub.n).toBe(1);
  expect(await published()).not.toContain('public.job_queue');
});

test('re-running the migration takes job_queue out of the publication again and keeps one trigger and policy set', async () => {
  await db.sql`alter publication supabase_realtime add table public.job_queue`;
  expect(await published()).toContain('public.job_queue');
  await db.sql.unsafe(fs.readFileSync(MIGRATION, 'utf8'));
  expect(await published()).not.toContain('public.job_queue');
  const triggers = await db.sql`select tgname from pg_trigger where tgrelid = 'public.job_queue'::regclass and tgname like 'job_queue_realtime%' order by 1`;
  expect(triggers.map((t) => t.tgname)).toEqual(['job_queue_realtime_insert', 'job_queue_realtime_update']);
  const { id } = await newJob();
  expect(await statesOf(id)).toEqual(['pending:0:-:']);
});

test('without Realtime\'s schema the migration installs no trigger and says so', async () => {
  const notices: string[] = [];
  const postgres = (await import('postgres')).default;
  const sql = postgres(db.url, { max: 1, onnotice: (n) => notices.push(n.message) });
  try {
    await sql.begin(async (tx) => {
      await tx`alter schema realtime rename to realtime_away`;
      await tx.unsafe(fs.readFileSync(MIGRATION, 'utf8'));
      const triggers = await tx`select count(*)::int as n from pg_trigger where tgrelid = 'public.job_queue'::regclass and tgname like 'job_queue_realtime%'`;
      expect(triggers[0].n).toBe(0);
      throw new Error('rollback');
    }).catch((e) => { if ((e as Error).message !== 'rollback') throw e; });
  } finally {
    await sql.end();
  }
  expect(notices.some((n) => n.includes('Realtime'))).toBe(true);
});
