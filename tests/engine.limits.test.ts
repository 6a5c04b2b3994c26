/** Per-tenant limits: max_concurrent_jobs (exact under concurrent claimers) and max_queued_jobs (quota). */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { asService, createTestDatabase, enqueueMany, makeTenant, sqlState, type TestDatabase } from './helpers/db.ts';
import { clearPendingJobs, claim, closeAll, complete, connections, type ClaimedJob } from './engine.helpers.ts';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db.drop(); });
// Each test starts from an empty ready line, so one test's leftovers cannot fill another's claims.
beforeEach(async () => {
  await clearPendingJobs(db.sql);
});

/** Counter rows vs the real number of processing jobs, per limited tenant. */
async function countersVsReality(tenants: string[]) {
  return db.sql`
    select l.tenant_id, l.running, l.max_running,
           (select count(*)::int from public.job_queue j where j.tenant_id = l.tenant_id and j.status = 'processing') as actual
    from supaqueue.tenant_limits l where l.tenant_id = any(${tenants}::uuid[]) order by l.tenant_id`;
}

describe('max_concurrent_jobs', () => {
  test('a claim takes no more of a tenant\'s jobs than its free slots, and more once a slot frees', async () => {
    const t = await makeTenant(db.sql, { maxConcurrentJobs: 3 });
    await enqueueMany(db.sql, t, 10);
    const first = await claim(db.sql, 'w', 10);
    expect(first).toHaveLength(3);
    expect(await claim(db.sql, 'w', 10)).toHaveLength(0);
    await complete(db.sql, first.slice(0, 1));
    expect(await claim(db.sql, 'w', 10)).toHaveLength(1);
    await complete(db.sql, first.slice(1));
  });

  test('a tenant at its limit does not hold back other tenants', async () => {
    const limited = await makeTenant(db.sql, { maxConcurrentJobs: 1 });
    const free = await makeTenant(db.sql);
    await enqueueMany(db.sql, limited, 20);
    const freeIds = await enqueueMany(db.sql, free, 5);
    const jobs = await claim(db.sql, 'w', 10);
    expect(jobs.filter((j) => j.tenant_id === limited)).toHaveLength(1);
    expect(jobs.filter((j) => j.tenant_id === free).map((j) => j.id).sort()).toEqual([...freeIds].sort());
    await complete(db.sql, jobs);
  });

  test('a claim fills its batch from other tenants when a limited tenant has fewer free slots than ready jobs', async () => {
    const limited = await makeTenant(db.sql, { maxConcurrentJobs: 1 });
    const free = await makeTenant(db.sql);
    await enqueueMany(db.sql, limited, 20);
    await enqueueMany(db.sql, free, 20);
    // Round-robin order interleaves the two tenants, so a single pick of 10 holds 5 of the limited one.
    const jobs = await claim(db.sql, 'w', 10);
    expect(jobs.filter((j) => j.tenant_id === limited)).toHaveLength(1);
    expect(jobs.filter((j) => j.tenant_id === free)).toHaveLength(9);
    await complete(db.sql, jobs);
  });

  test('setting a limit counts the jobs already running', async () => {
    const t = await makeTenant(db.sql);
    await enqueueMany(db.sql, t, 5);
    const running = await claim(db.sql, 'w', 4);
    await db.sql`update public.tenants set max_concurrent_jobs = 4 where id = ${t}`;
    expect(await countersVsReality([t])).toEqual([{ tenant_id: t, running: 4, max_running: 4, actual: 4 }]);
    expect(await claim(db.sql, 'w', 10)).toHaveLength(0);
    await complete(db.sql, running);
    expect(await countersVsReality([t])).toEqual([{ tenant_id: t, running: 0, max_running: 4, actual: 0 }]);
    await complete(db.sql, await claim(db.sql, 'w', 10));
  });

  test('is never exceeded under 6 concurrent claimers, and the running counters match reality', async () => {
    const limits = [1, 2, 3, 5];
    const tenants = await Promise.all(limits.map((n) => makeTenant(db.sql, { maxConcurrentJobs: n })));
    const unlimited = await makeTenant(db.sql);
    for (const t of [...tenants, unlimited]) await enqueueMany(db.sql, t, 150);
    const limitOf = new Map(tenants.map((t, i) => [t, limits[i]]));
    const watched = [...tenants, unlimited];

    const maxSeen = new Map<string, number>();
    let claiming = true;
    const sampler = (async () => {
      // Samples the committed processing count per tenant for as long as the claimers run.
      while (claiming) {
        const rows = await db.sql`select tenant_id, count(*)::int as n from public.job_queue
                                  where status = 'processing' and tenant_id = any(${watched}::uuid[]) group by tenant_id`;
        for (const r of rows) maxSeen.set(r.tenant_id, Math.max(maxSeen.get(r.tenant_id) ?? 0, r.n));
      }
    })();
    const clients = connections(db.url, 6);
    const claimedTotal = { n: 0 };
    try {
      await Promise.all(clients.map(async (c, w) => {
        let empty = 0;
        while (empty < 3) {
          const jobs = await claim(c, `lim-${w}`, 5);
          claimedTotal.n += jobs.length;
          empty = jobs.length === 0 ? empty + 1 : 0;
          // Hold the jobs for a moment, as a handler would, so claimers overlap.
          await new Promise((r) => setTimeout(r, 5 + Math.random() * 10));
          if (jobs.length) await complete(c, jobs);
        }
      }));
    } finally {
      claiming = false;
      await sampler;
      await closeAll(clients);
    }
    expect(claimedTotal.n).toBe(750);
    for (const t of tenants) expect(maxSeen.get(t) ?? 0).toBeLessThanOrEqual(limitOf.get(t)!);
    expect(maxSeen.get(unlimited)).toBeGreaterThan(0);
    expect((await countersVsReality(tenants)).map((r) => [r.running, r.actual])).toEqual(limits.map(() => [0, 0]));
  }, 90_000);

  test('counters match reality while concurrent claimers hold jobs', async () => {
    const limits = [2, 4];
    const tenants = await Promise.all(limits.map((n) => makeTenant(db.sql, { maxConcurrentJobs: n })));
    for (const t of tenants) await enqueueMany(db.sql, t, 30);
    const clients = connections(db.url, 5);
    let held: ClaimedJob[] = [];
    try {
      // Every claimer claims twice without completing anything.
      const got = await Promise.all(clients.map(async (c, w) => [...(await claim(c, `h-${w}`, 3)), ...(await claim(c, `h-${w}`, 3))]));
      held = got.flat();
    } finally {
      await closeAll(clients);
    }
    const rows = await countersVsReality(tenants);
    for (const r of rows) {
      expect(r.running).toBe(r.actual);
      expect(r.running).toBeLessThanOrEqual(r.max_running);
    }
    expect(held.length).toBe(rows.reduce((s, r) => s + r.actual, 0));
    await complete(db.sql, held);
    expect((await countersVsReality(tenants)).map((r) => r.running)).toEqual([0, 0]);
  });
});

describe('max_queued_jobs', () => {
  const enqueue = (tenant: string, n: number) => asService(db.sql, (tx) => tx`
    select * from public.enqueue_jobs(${tx.json(Array.from({ length: n }, () => ({ tenant_id: tenant, type: 'q.job' })))})`);
  const active = async (tenant: string) =>
    (await db.sql`select count(*)::int as n from public.job_queue where tenant_id = ${tenant}`)[0].n as number;

  test('an enqueue past the quota fails with QJ006', async () => {
    const t = await makeTenant(db.sql, { maxQueuedJobs: 5 });
    await enqueue(t, 5);
    expect(await sqlState(enqueue(t, 1))).toBe('QJ006');
    expect(await active(t)).toBe(5);
  });

  test('a bulk enqueue that would pass the quota inserts nothing', async () => {
    const t = await makeTenant(db.sql, { maxQueuedJobs: 5 });
    await enqueue(t, 4);
    expect(await sqlState(enqueue(t, 3))).toBe('QJ006');
    expect(await active(t)).toBe(4);
  });

  test('a bulk enqueue spanning tenants inserts nothing when one tenant is over quota', async () => {
    const capped = await makeTenant(db.sql, { maxQueuedJobs: 1 });
    const free = await makeTenant(db.sql);
    const jobs = [{ tenant_id: free, type: 'q.job' }, { tenant_id: capped, type: 'q.job' }, { tenant_id: capped, type: 'q.job' }];
    expect(await sqlState(asService(db.sql, (tx) => tx`select * from public.enqueue_jobs(${tx.json(jobs)})`))).toBe('QJ006');
    expect(await active(free) + await active(capped)).toBe(0);
  });

  test('repeating an enqueue that already succeeded returns its job even at the quota', async () => {
    const t = await makeTenant(db.sql, { maxQueuedJobs: 2 });
    const spec = (key: string) => ({ tenant_id: t, type: 'q.job', idempotency_key: key });
    const first = await asService(db.sql, (tx) => tx`select * from public.enqueue_jobs(${tx.json([spec('a'), spec('b')])})`);
    const again = await asService(db.sql, (tx) => tx`select * from public.enqueue_jobs(${tx.json([spec('b'), spec('a'), spec('b')])})`);
    expect(again).toEqual([
      { job_id: first[1].job_id, created: false }, { job_id: first[0].job_id, created: false }, { job_id: first[1].job_id, created: false },
    ]);
    expect(await sqlState(asService(db.sql, (tx) => tx`select * from public.enqueue_jobs(${tx.json([spec('a'), spec('c')])})`))).toBe('QJ006');
  });

  test('finished jobs free quota', async () => {
    const t = await makeTenant(db.sql, { maxQueuedJobs: 2 });
    await enqueue(t, 2);
    const jobs = await claim(db.sql, 'w', 10);
    await complete(db.sql, jobs.filter((j) => j.tenant_id === t));
    expect(await enqueue(t, 2)).toHaveLength(2);
  });

  test('is exact under 10 concurrent enqueuers', async () => {
    const t = await makeTenant(db.sql, { maxQueuedJobs: 4 });
    const clients = connections(db.url, 10);
    try {
      const codes = await Promise.all(clients.map((c) => sqlState(asService(c, (tx) => tx`
        select * from public.enqueue_job(${t}::uuid, 'q.race')`))));
      expect(codes.filter((c) => c === undefined)).toHaveLength(4);
      expect(codes.filter((c) => c === 'QJ006')).toHaveLength(6);
    } finally {
      await closeAll(clients);
    }
    expect(await active(t)).toBe(4);
  });
});
