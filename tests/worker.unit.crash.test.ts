/**
 * The worker's failure policy without a database: a loop that crashes on a non-transient error stops
 * the whole worker (no more claims or heartbeats, running jobs aborted and released) and `done` rejects
 * with the error; transient errors are retried after a backoff and `done` stays pending.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { createWorker, type Handlers, type JobAbortedError, type Worker, type WorkerOptions } from '../worker/index.ts';
import { FakeSource, fakeJob, gate, waitFor } from './helpers/worker.ts';

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});

async function run(source: FakeSource, handlers: Handlers, opts: Partial<WorkerOptions> = {}): Promise<Worker> {
  const w = createWorker({
    dataSource: source, handlers, logger: pino({ level: 'silent' }), leaseSeconds: 0.6,
    pollIntervalMs: 20, maintenanceIntervalMs: false, ...opts,
  });
  workers.push(w);
  await w.start();
  return w;
}

/** Settles to 'pending' if the promise has not settled within ms. */
const stateAfter = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => 'resolved', () => 'rejected'), sleep(ms).then(() => 'pending')]);

/** A running job that waits for its abort, and the bug the next claim throws. */
function crashingClaims(source: FakeSource, bug: Error) {
  const job = fakeJob('u.crash');
  let calls = 0;
  source.claimHook = () => {
    calls += 1;
    if (calls === 1) return [job];
    throw bug;
  };
  const running = gate();
  let reason: JobAbortedError | undefined;
  const handlers: Handlers = {
    'u.crash': (_job, ctx) => new Promise((_, reject) => {
      running.open();
      ctx.signal.addEventListener('abort', () => { reason = ctx.signal.reason; reject(reason); }, { once: true });
    }),
  };
  return { job, handlers, running, reason: () => reason };
}

describe('a loop that crashes', () => {
  it('a claim throwing a programming error rejects done with it', async () => {
    const source = new FakeSource();
    const bug = new TypeError('claim is broken');
    const c = crashingClaims(source, bug);
    const w = await run(source, c.handlers, { concurrency: 2 });
    await expect(w.done).rejects.toBe(bug);
  });

  it('stops claims and heartbeats, and aborts and releases the running job', async () => {
    const source = new FakeSource();
    const c = crashingClaims(source, new TypeError('claim is broken'));
    const w = await run(source, c.handlers, { concurrency: 2 });
    await c.running.wait;
    await w.done.catch(() => {});
    expect(c.reason()?.kind).toBe('shutdown');
    expect([...source.released]).toEqual([c.job.id]);
    const seen = { claims: source.claims.length, heartbeats: source.heartbeats.length };
    await sleep(600); // three heartbeat intervals, thirty polls
    expect({ claims: source.claims.length, heartbeats: source.heartbeats.length }).toEqual(seen);
  });

  it('a heartbeat throwing a programming error stops the worker too', async () => {
    const source = new FakeSource();
    source.add(fakeJob('u.beat'));
    const bug = new RangeError('heartbeat is broken');
    source.heartbeatHook = () => { throw bug; };
    const w = await run(source, { 'u.beat': (_job, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) });
    await expect(w.done).rejects.toBe(bug);
    expect(source.released.size).toBe(1);
  });

  it('stop() after the crash resolves, and done stays rejected', async () => {
    const source = new FakeSource();
    const bug = new TypeError('claim is broken');
    const c = crashingClaims(source, bug);
    const w = await run(source, c.handlers);
    await w.done.catch(() => {});
    await expect(w.stop()).resolves.toBeUndefined();
    await expect(w.done).rejects.toBe(bug);
  });
});

describe('transient errors', () => {
  it('a claim failing with a connection error is retried; the worker keeps running', async () => {
    const source = new FakeSource();
    const [job] = source.add(fakeJob('u.flaky-db'));
    let failures = 2;
    const claim = source.claim.bind(source);
    source.claim = async (req, signal) => {
      if (failures > 0) {
        failures -= 1;
        throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      }
      return claim(req, signal);
    };
    const w = await run(source, { 'u.flaky-db': async () => 'ok' });
    await waitFor(() => source.completed.has(job.id), { timeoutMs: 5000 });
    expect(await stateAfter(w.done, 100)).toBe('pending');
  });

  it('a heartbeat failing with a server restart error is retried; the worker keeps running', async () => {
    const source = new FakeSource();
    const [job] = source.add(fakeJob('u.restart'));
    let failures = 2;
    source.heartbeatHook = (items) => {
      if (failures-- > 0) throw Object.assign(new Error('terminating connection due to administrator command'), { name: 'PostgresError', severity: 'FATAL', code: '57P01' });
      return items.map((i) => ({ id: i.id, lease_valid: true, cancel_requested: false }));
    };
    const w = await run(source, { 'u.restart': async (_job, ctx) => { await sleep(900, undefined, { signal: ctx.signal }); return 'ok'; } }, { leaseSeconds: 1.5 });
    await waitFor(() => source.completed.has(job.id), { timeoutMs: 5000 });
    expect(source.heartbeats.length).toBeGreaterThanOrEqual(1);
    expect(await stateAfter(w.done, 100)).toBe('pending');
  });

  it('a claim failing once with an error it cannot classify is retried; the worker keeps running', async () => {
    const source = new FakeSource();
    const [job] = source.add(fakeJob('u.hiccup'));
    source.claimHook = () => {
      source.claimHook = undefined; // once: later claims take the queue's jobs as usual
      throw new Error('driver hiccup while Postgres restarts');
    };
    const w = await run(source, { 'u.hiccup': async () => 'ok' });
    await waitFor(() => source.completed.has(job.id), { timeoutMs: 5000 });
    expect(await stateAfter(w.done, 100)).toBe('pending');
  });
});

describe('done', () => {
  it('resolves after stop()', async () => {
    const source = new FakeSource();
    const w = await run(source, { 'u.done': async () => null });
    await w.stop();
    await expect(w.done).resolves.toBeUndefined();
  });
});
