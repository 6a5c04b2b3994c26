/**
 * The dashboard's SQL (migration 20261130000400): counters kept by the job_queue triggers, the
 * per-minute history, public.job_stats scoping, and public.act_on_jobs (bulk retry/cancel).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, asService, asUser, createTestDatabase, enqueueMany, makeSuperAdmin, makeTenant, makeUser, sqlState, type TestDatabase } from './helpers/db.ts';
import { claim, complete, fail } from './engine.helpers.ts';

let db: TestDatabase;
let tenantA: string;
let tenantB: string;
let adminA: string;
let memberA: string;
let memberB: string;
let superAdmin: string;

beforeAll(async () => {
  db = await createTestDatabase();
  tenantA = await makeTenant(db.sql, { name: 'A', maxQueuedJobs: 5000 });
  tenantB = await makeTenant(db.sql, { name: 'B' });
  [adminA, memberA, memberB, superAdmin] = await Promise.all([makeUser(db.sql), makeUser(db.sql), makeUser(db.sql), makeUser(db.sql)]);
  await addMember(db.sql, tenantA, adminA, 'admin');
  await addMember(db.sql, tenantA, memberA, 'member');
  await addMember(db.sql, tenantB, memberB, 'member');
  await makeSuperAdmin(db.sql, superAdmin);
});

afterAll(async () => {
  await db?.drop();
});

type Stats = {
  scope: string;
  counts: { by_status: Record<string, number>; by_type: Record<string, unknown>[] };
  running: { id: string }[];
  oldest_waiting: { job_id: string | null; age_seconds: number | null; partial: boolean };
  history: { step_seconds: number; points: [number, number, number][] };
  limits: Record<string, number | null> | null;
};

function stats(userId: string, tenantId: string | null = null, hours = 1): Promise<Stats> {
  return asUser(db.sql, userId, async (tx) => (await tx`select public.job_stats(${tenantId}::uuid, ${hours}) as s`)[0].s as Stats);
}

/** What a full count of job_queue says, for comparison with the counters. */
async function trueCounts(tenantId: string): Promise<Record<string, number>> {
  const rows = await db.sql`select status::text, count(*)::int as n from public.job_queue where tenant_id = ${tenantId} group by 1`;
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

function nonZero(byStatus: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(byStatus).filter(([, n]) => Number(n) !== 0).map(([k, n]) => [k, Number(n)]));
}

describe('counters', () => {
  it('follow enqueue, claim, complete, fail for good and retry exactly', async () => {
    const type = 'stats.lifecycle';
    await enqueueMany(db.sql, tenantA, 6, { type, max_attempts: 1 });
    const claimed = await claim(db.sql, 'w1', 4, { types: [type] });
    await complete(db.sql, claimed.slice(0, 2));
    await fail(db.sql, claimed[2], 'boom', false);
    const s = await stats(adminA, tenantA);
    expect(nonZero(s.counts.by_status)).toEqual(await trueCounts(tenantA));
  });

  it('ignore statements that change no status (heartbeats write no delta)', async () => {
    const type = 'stats.heartbeat';
    await enqueueMany(db.sql, tenantA, 2, { type });
    const claimed = await claim(db.sql, 'w2', 2, { types: [type] });
    await asService(db.sql, (tx) => tx`select supaqueue.fold_job_stats()`);
    const [before] = await db.sql`select count(*)::int as n from supaqueue.job_stat_deltas`;
    await asService(db.sql, (tx) => tx`select * from public.heartbeat_jobs(${claimed.map((j) => j.id)}::uuid[], ${claimed.map((j) => j.lease_id)}::uuid[], 30)`);
    const [after] = await db.sql`select count(*)::int as n from supaqueue.job_stat_deltas`;
    expect(after.n).toBe(before.n);
  });

  it('follow deletes (retention purge) and a truncate resets them', async () => {
    const other = await makeTenant(db.sql, { name: 'purged' });
    await enqueueMany(db.sql, other, 3, { type: 'stats.purge' });
    await db.sql`delete from public.job_queue where tenant_id = ${other}`;
    await asService(db.sql, (tx) => tx`select supaqueue.fold_job_stats()`);
    const [row] = await db.sql`select coalesce(sum(n), 0)::int as n from supaqueue.job_counts where tenant_id = ${other}`;
    expect(row.n).toBe(0);
  });

  it('record completions and failures per minute in the history', async () => {
    const t = await makeTenant(db.sql, { name: 'history' });
    const u = await makeUser(db.sql);
    await addMember(db.sql, t, u);
    await enqueueMany(db.sql, t, 3, { type: 'stats.history', max_attempts: 1 });
    const claimed = await claim(db.sql, 'w3', 3, { types: ['stats.history'] });
    await complete(db.sql, claimed.slice(0, 2));
    await fail(db.sql, claimed[2], 'x', false);
    const s = await stats(u, t);
    const totals = s.history.points.reduce((acc, [, c, f]) => [acc[0] + c, acc[1] + f], [0, 0]);
    expect({ step: s.history.step_seconds, totals }).toEqual({ step: 60, totals: [2, 1] });
  });
});

describe('counters under concurrency', () => {
  it('equal a full count after concurrent enqueues, claims, settles, retries and cancels', async () => {
    const t = await makeTenant(db.sql, { name: 'concurrent' });
    const type = 'stats.concurrent';
    await Promise.all(Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; i < 15; i++) {
        await enqueueMany(db.sql, t, 3, { type, max_attempts: 2 });
        const jobs = await claim(db.sql, `cw${w}`, 3, { types: [type] });
        if (jobs[0]) await complete(db.sql, [jobs[0]]);
        if (jobs[1]) await fail(db.sql, jobs[1], 'x', i % 2 === 0);
        if (jobs[2]) await asService(db.sql, (tx) => tx`select * from public.cancel_job(${jobs[2].id}::uuid)`);
        const [failed] = await db.sql`select id from public.job_queue where tenant_id = ${t} and status = 'failed' limit 1`;
        if (failed) await asService(db.sql, (tx) => tx`select * from public.retry_job(${failed.id}::uuid, 1)`).catch(() => {});
      }
    }));
    await asService(db.sql, (tx) => tx`select supaqueue.fold_job_stats(1000000)`);
    const [row] = await db.sql`select coalesce(jsonb_object_agg(status, n) filter (where n <> 0), '{}') as c
                               from (select status::text, sum(n)::int as n from supaqueue.job_counts where tenant_id = ${t} group by 1) x`;
    expect(row.c).toEqual(await trueCounts(t));
  });

  it('all-tenant totals equal a full count of every job', async () => {
    await asService(db.sql, (tx) => tx`select supaqueue.fold_job_stats(1000000)`);
    const [totals] = await db.sql`select coalesce(jsonb_object_agg(status, n) filter (where n <> 0), '{}') as c
                                  from (select status::text, sum(n)::int as n from supaqueue.job_counts
                                        where tenant_id = supaqueue.all_tenants() group by 1) x`;
    const [all] = await db.sql`select jsonb_object_agg(status, n) as c from (select status::text, count(*)::int as n from public.job_queue group by 1) x`;
    expect(totals.c).toEqual(all.c);
  });
});

describe('job_stats scope', () => {
  it('a member sees only their tenants', async () => {
    await enqueueMany(db.sql, tenantB, 2, { type: 'stats.b' });
    const s = await stats(memberA);
    expect(s.counts.by_type.map((t) => t.type)).not.toContain('stats.b');
  });

  it("another tenant's stats answer TENANT_NOT_FOUND", async () => {
    expect(await sqlState(stats(memberA, tenantB))).toBe('QJ002');
  });

  it('a super admin sees every tenant', async () => {
    const s = await stats(superAdmin);
    expect(s.scope).toBe('all');
    expect(s.counts.by_type.map((t) => t.type)).toEqual(expect.arrayContaining(['stats.b', 'stats.lifecycle']));
  });

  it("reports the tenant's limits and usage", async () => {
    const s = await stats(adminA, tenantA);
    expect(s.limits).toMatchObject({ max_queued_jobs: 5000, queued: expect.any(Number), running: expect.any(Number) });
  });

  it('reports the oldest waiting job of the tenant', async () => {
    const t = await makeTenant(db.sql, { name: 'oldest' });
    const u = await makeUser(db.sql);
    await addMember(db.sql, t, u);
    const [first] = await enqueueMany(db.sql, t, 3, { type: 'stats.oldest' });
    const s = await stats(u, t);
    expect(s.oldest_waiting.job_id).toBe(first);
  });

  it('refuses a history window other than 1 or 24 hours', async () => {
    expect(await sqlState(stats(adminA, tenantA, 5))).toBe('QJ001');
  });
});

describe('act_on_jobs (bulk)', () => {
  const bulk = (userId: string, action: string, ids: string[], extra = 0) =>
    asUser(db.sql, userId, (tx) => tx`select * from public.act_on_jobs(${action}, ${ids}::uuid[], ${extra})`);

  it('a plain member is refused with FORBIDDEN', async () => {
    const ids = await enqueueMany(db.sql, tenantA, 2, { type: 'stats.bulk.member' });
    expect(await sqlState(bulk(memberA, 'cancel', ids))).toBe('QJ010');
  });

  it('a tenant admin cancels the pending jobs and skips the others', async () => {
    const ids = await enqueueMany(db.sql, tenantA, 3, { type: 'stats.bulk.cancel' });
    await bulk(adminA, 'cancel', [ids[0]]);
    const rows = await bulk(adminA, 'cancel', ids);
    expect(rows.map((r) => r.job_id).sort()).toEqual([ids[1], ids[2]].sort());
  });

  it('a tenant admin retries failed jobs with extra attempts', async () => {
    const type = 'stats.bulk.retry';
    await enqueueMany(db.sql, tenantA, 2, { type, max_attempts: 1 });
    for (const j of await claim(db.sql, 'w4', 2, { types: [type] })) await fail(db.sql, j, 'x', false);
    const ids = (await db.sql`select id from public.job_queue where type = ${type}`).map((r) => r.id as string);
    const rows = await bulk(adminA, 'retry', ids, 1);
    expect(rows.map((r) => r.status)).toEqual(['pending', 'pending']);
  });

  it("jobs of a tenant the admin does not belong to are skipped like missing ones", async () => {
    const ids = await enqueueMany(db.sql, tenantB, 1, { type: 'stats.bulk.other' });
    expect(await bulk(adminA, 'cancel', ids)).toEqual([]);
  });

  it('refuses more than max_bulk_jobs ids', async () => {
    const ids = Array.from({ length: 1001 }, () => crypto.randomUUID());
    expect(await sqlState(bulk(adminA, 'cancel', ids))).toBe('QJ001');
  });
});
