/**
 * The claim loop without a database (an injected data source, tests/helpers/worker.ts): what it asks
 * for (types, never more than the free slots), what wakes it (a hint, a freed slot), and how it stops.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { createWorker, JobAbortedError, type Handlers, type Worker, type WorkerOptions } from '../worker/index.ts';
import { FakeSource, fakeJob, gate, waitFor } from './helpers/worker.ts';

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});

async function run(source: FakeSource, handlers: Handlers, opts: Partial<WorkerOptions> = {}): Promise<Worker> {
  const w = createWorker({ dataSource: source, handlers, logger: pino({ level: 'silent' }), pollIntervalMs: 60_000, maintenanceIntervalMs: false, ...opts });
  workers.push(w);
  await w.start();
  return w;
}

describe('what it claims', () => {
  it('asks claim_jobs for its handlers\' types only, by default', async () => {
    const source = new FakeSource();
    await run(source, { 'u.a': async () => null, 'u.b': async () => null });
    await waitFor(() => source.claims.length > 0);
    expect(source.claims[0].req.types.sort()).toEqual(['u.a', 'u.b']);
  });

  it('asks for the configured types when types narrows them', async () => {
    const source = new FakeSource();
    await run(source, { 'u.a': async () => null, 'u.b': async () => null }, { types: ['u.b'] });
    await waitFor(() => source.claims.length > 0);
    expect(source.claims[0].req.types).toEqual(['u.b']);
  });

  it('never claims more than its free slots', async () => {
    const source = new FakeSource();
    const jobs = source.add(...Array.from({ length: 40 }, (_, i) => fakeJob('u.work', { ms: 1 + (i % 7) * 3 })));
    let outstanding = 0; // handed out by a claim, handler not finished yet
    let peak = 0;
    const overAsked: Array<{ count: number; free: number }> = [];
    const claim = source.claim.bind(source);
    source.claim = async (req, signal) => {
      if (req.count > 4 - outstanding) overAsked.push({ count: req.count, free: 4 - outstanding });
      const got = await claim(req, signal);
      outstanding += got.length;
      peak = Math.max(peak, outstanding);
      return got;
    };
    await run(source, {
      'u.work': async (job) => { await sleep(job.payload.ms); outstanding -= 1; return null; },
    }, { concurrency: 4, batchSize: 3, pollIntervalMs: 10 });
    await waitFor(() => source.completed.size === jobs.length, { timeoutMs: 10_000 });
    expect(overAsked).toEqual([]);
    expect(peak).toBe(4);
    expect(Math.max(...source.claims.map((c) => c.req.count))).toBe(3); // batchSize caps a claim
  });
});

describe('wake-ups', () => {
  it('a hint wakes an idle loop long before the poll interval', async () => {
    const source = new FakeSource();
    await run(source, { 'u.hint': async () => 'done' });
    await waitFor(() => source.claims.length === 1);
    const [job] = source.add(fakeJob('u.hint'));
    await sleep(150);
    expect(source.claims).toHaveLength(1); // idle: the poll is 60 s away
    const hinted = performance.now();
    source.notify();
    await waitFor(() => source.completed.has(job.id), { timeoutMs: 2000, intervalMs: 5 });
    expect(performance.now() - hinted).toBeLessThan(500);
    expect(source.claims).toHaveLength(2);
  });

  it('a hint that comes while a claim is in flight is not lost', async () => {
    const source = new FakeSource();
    let first = true;
    source.claimHook = (req) => {
      if (first) {
        first = false;
        source.add(fakeJob('u.race')); // enqueued after the claim picked its (empty) answer
        source.notify();
        return [];
      }
      return source.ready.splice(0, req.count);
    };
    await run(source, { 'u.race': async () => null });
    await waitFor(() => source.completed.size === 1, { timeoutMs: 1000, intervalMs: 5 });
    expect(source.claims).toHaveLength(2);
  });

  it('a freed slot claims again at once while the last claim came back full', async () => {
    const source = new FakeSource();
    source.add(fakeJob('u.slot'), fakeJob('u.slot'), fakeJob('u.slot'));
    const started = performance.now();
    await run(source, { 'u.slot': async () => { await sleep(20); return null; } }, { concurrency: 1 });
    await waitFor(() => source.completed.size === 3, { timeoutMs: 2000, intervalMs: 5 });
    expect(performance.now() - started).toBeLessThan(1000); // not one 60 s poll per job
  });
});

describe('stop()', () => {
  it('stops claiming at once, lets running jobs finish within the grace, releases the rest', async () => {
    const source = new FakeSource();
    const [short, long] = source.add(fakeJob('u.stop', { ms: 100 }), fakeJob('u.stop', { ms: 10_000 }));
    let longReason: unknown;
    const w = await run(source, {
      'u.stop': async (job, ctx) => {
        try {
          await sleep(job.payload.ms, undefined, { signal: ctx.signal });
        } catch (e) {
          longReason = ctx.signal.reason;
          throw e;
        }
        return 'finished';
      },
    }, { shutdownGraceMs: 400, pollIntervalMs: 10 });
    await waitFor(() => source.claims.length >= 2);
    const claimsAtStop = source.claims.length;
    const t0 = performance.now();
    await w.stop();
    const took = performance.now() - t0;
    await w.done;
    expect(source.claims).toHaveLength(claimsAtStop);
    expect(source.completed.get(short.id)).toBe('finished');
    expect([...source.released]).toEqual([long.id]);
    expect((longReason as JobAbortedError).kind).toBe('shutdown');
    expect(took).toBeGreaterThanOrEqual(390);
    expect(took).toBeLessThan(1500);
  });

  it('returns at once when nothing runs', async () => {
    const source = new FakeSource();
    const w = await run(source, { 'u.idle': async () => null });
    await waitFor(() => source.claims.length === 1);
    const t0 = performance.now();
    await w.stop();
    expect(performance.now() - t0).toBeLessThan(200);
    expect(source.claims).toHaveLength(1);
  });

  it('releases, never starts, the jobs of a claim that was in flight when stop() came', async () => {
    const source = new FakeSource();
    const inClaim = gate();
    const answer = gate();
    const job = fakeJob('u.late');
    let ran = false;
    source.claimHook = async () => { inClaim.open(); await answer.wait; return [job]; };
    const w = await run(source, { 'u.late': async () => { ran = true; return null; } });
    await inClaim.wait;
    const stopped = w.stop();
    answer.open();
    await stopped;
    expect(ran).toBe(false);
    expect([...source.released]).toEqual([job.id]);
    expect(source.claims).toHaveLength(1);
  });
});
