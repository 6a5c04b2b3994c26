/**
 * Liveness without a database: every call has a deadline, and the worker fences itself. A job whose
 * lease it could not renew is aborted (lease-lost) before the lease ends; a claim answered after the
 * lease ended is never started. Leases here are 0.9 s (heartbeat every 300 ms, fence 90 ms before the
 * end, measured from when the claim was sent), call deadlines 300 ms.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { createWorker, DeadlineError, type Handlers, type JobAbortedError, type Worker, type WorkerOptions } from '../worker/index.ts';
import { FakeSource, fakeJob, stall, waitFor } from './helpers/worker.ts';

const LEASE_MS = 900;
const DEADLINE_MS = LEASE_MS / 3;
const never = () => new Promise<never>(() => {});

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});

async function run(source: FakeSource, handlers: Handlers, opts: Partial<WorkerOptions> = {}): Promise<Worker> {
  const w = createWorker({
    dataSource: source, handlers, logger: pino({ level: 'silent' }), leaseSeconds: LEASE_MS / 1000, callTimeoutMs: DEADLINE_MS,
    pollIntervalMs: 60_000, maintenanceIntervalMs: false, ...opts,
  });
  workers.push(w);
  await w.start();
  return w;
}

/** A handler that waits for its signal and records when and why it was aborted. */
function waitForAbort(seen: { at?: number; reason?: JobAbortedError }): Handlers[string] {
  return (_job, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => {
    seen.at = performance.now();
    seen.reason = ctx.signal.reason;
    reject(ctx.signal.reason);
  }, { once: true }));
}

describe('heartbeats that hang', () => {
  it('abort the job with lease-lost before its lease ends, and release it', async () => {
    const source = new FakeSource();
    const [job] = source.add(fakeJob('u.fence'));
    source.heartbeatHook = never;
    const seen: { at?: number; reason?: JobAbortedError } = {};
    await run(source, { 'u.fence': waitForAbort(seen) });
    await waitFor(() => seen.reason, { timeoutMs: 5000, intervalMs: 5 });
    const claimSent = source.claims[0].at;
    expect(seen.reason!.kind).toBe('lease-lost');
    expect(seen.at! - claimSent).toBeLessThan(LEASE_MS);
    expect(seen.at! - claimSent).toBeGreaterThanOrEqual(LEASE_MS * 0.9 - 5); // not before its fence
    await waitFor(() => source.released.has(job.id), { timeoutMs: 2000 });
  });

  it('are abandoned at their deadline, and the next one is sent', async () => {
    const source = new FakeSource();
    source.add(fakeJob('u.hang'));
    const abandoned: number[] = [];
    const reasons: unknown[] = [];
    source.heartbeatHook = (_items, signal) => {
      const sent = performance.now();
      signal.addEventListener('abort', () => { abandoned.push(performance.now() - sent); reasons.push(signal.reason); }, { once: true });
      return never();
    };
    await run(source, { 'u.hang': waitForAbort({}) });
    await waitFor(() => abandoned.length >= 2, { timeoutMs: 5000, intervalMs: 5 });
    for (const ms of abandoned) {
      expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS - 5);
      expect(ms).toBeLessThan(DEADLINE_MS + 250);
    }
    for (const r of reasons) expect(r).toBeInstanceOf(DeadlineError);
    expect(source.heartbeats.length).toBeGreaterThanOrEqual(2);
  });
});

describe('heartbeats that answer', () => {
  it('keep a job running well past its first lease', async () => {
    const source = new FakeSource();
    const [job] = source.add(fakeJob('u.long'));
    await run(source, { 'u.long': async (_job, ctx) => { await sleep(LEASE_MS * 2, undefined, { signal: ctx.signal }); return 'ok'; } });
    await waitFor(() => source.completed.has(job.id), { timeoutMs: 10_000 });
    expect(source.completed.get(job.id)).toBe('ok');
    expect(source.heartbeats.length).toBeGreaterThanOrEqual(4);
  });

  it('that come late but before the fence still renew it', async () => {
    const source = new FakeSource();
    const [job] = source.add(fakeJob('u.slowbeat'));
    // Each answer takes most of its deadline: renewal is measured from when each was sent.
    source.heartbeatHook = async (items) => {
      await sleep(DEADLINE_MS - 60);
      return items.map((i) => ({ id: i.id, lease_valid: true, cancel_requested: false }));
    };
    await run(source, { 'u.slowbeat': async (_job, ctx) => { await sleep(LEASE_MS * 2, undefined, { signal: ctx.signal }); return 'ok'; } });
    await waitFor(() => source.completed.has(job.id), { timeoutMs: 10_000 });
    expect(source.completed.get(job.id)).toBe('ok');
  });
});

describe('claims', () => {
  it('answered after the lease ended (the process stalled) are released, never started', async () => {
    const source = new FakeSource();
    const job = fakeJob('u.stale');
    let ran = false;
    let first = true;
    source.claimHook = () => {
      if (!first) return [];
      first = false;
      stall(LEASE_MS + 100); // the answer is processed after the lease it granted has ended
      return [job];
    };
    await run(source, { 'u.stale': async () => { ran = true; return null; } });
    await waitFor(() => source.released.has(job.id), { timeoutMs: 5000 });
    expect(ran).toBe(false);
    expect(source.completed.size + source.failed.size).toBe(0);
  });

  it('that hang are abandoned at their deadline and retried', async () => {
    const source = new FakeSource();
    const [job] = source.add(fakeJob('u.retry'));
    let abandonedAfter: number | undefined;
    let first = true;
    source.claimHook = (req, signal) => {
      if (!first) return source.ready.splice(0, req.count);
      first = false;
      const sent = performance.now();
      signal.addEventListener('abort', () => { abandonedAfter = performance.now() - sent; }, { once: true });
      return never();
    };
    await run(source, { 'u.retry': async () => 'ran' });
    await waitFor(() => source.completed.has(job.id), { timeoutMs: 5000 });
    // The deadline's timer starts just before the call is made (a microtask later): under load that gap
    // was measured at 7 ms, so the lower bound allows 20.
    expect(abandonedAfter).toBeGreaterThanOrEqual(DEADLINE_MS - 20);
    expect(abandonedAfter).toBeLessThan(DEADLINE_MS + 250);
    expect(source.claims.length).toBeGreaterThanOrEqual(2);
  });
});
