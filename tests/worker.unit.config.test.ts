/**
 * Worker options without a database: what is rejected at configuration time, the defaults a claim
 * carries, and logLevel.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { createWorker, WorkerConfigError, type Worker, type WorkerOptions } from '../worker/index.ts';
import { FakeSource, fakeJob, waitFor } from './helpers/worker.ts';

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});

const handlers = { 'u.mine': async () => null };
const silent = pino({ level: 'silent' });

function configError(opts: Partial<WorkerOptions>): string {
  try {
    createWorker({ dataSource: new FakeSource(), handlers, logger: silent, ...opts } as WorkerOptions);
  } catch (e) {
    expect(e).toBeInstanceOf(WorkerConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a WorkerConfigError');
}

/** A pino logger at `level` whose lines the test can read. */
function capture(level: string): { logger: pino.Logger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  return { lines, logger: pino({ level }, { write: (line: string) => { lines.push(JSON.parse(line)); } }) };
}

describe('rejected at configuration time', () => {
  it('types without a handler', () => {
    expect(configError({ types: ['u.mine', 'u.other'] })).toMatch(/types without a handler: u\.other/);
  });

  it('a handler key that is not a job type', () => {
    expect(configError({ handlers: { 'Not A Type': async () => null } })).toMatch(/handler keys must be job types .*, not: Not A Type/);
  });

  it('neither or both of connection and dataSource', () => {
    expect(configError({ dataSource: undefined })).toMatch(/exactly one of connection and dataSource/);
    expect(configError({ connection: 'postgres://localhost/x' })).toMatch(/exactly one of connection and dataSource/);
  });

  it('an unknown log level', () => {
    expect(configError({ logLevel: 'verbose' as never })).toMatch(/logLevel/);
  });
});

describe('defaults', () => {
  it('a claim asks for a 15 s lease', async () => {
    const source = new FakeSource();
    const w = createWorker({ dataSource: source, handlers, logger: silent, maintenanceIntervalMs: false });
    workers.push(w);
    await w.start();
    await waitFor(() => source.claims.length > 0);
    expect(source.claims[0].req.leaseSeconds).toBe(15);
  });
});

describe('logLevel', () => {
  it('raises the worker\'s level above its logger\'s', async () => {
    const { logger, lines } = capture('info');
    const w = createWorker({ dataSource: new FakeSource(), handlers, logger, logLevel: 'warn', maintenanceIntervalMs: false });
    workers.push(w);
    await w.start();
    await w.stop();
    expect(lines.filter((l) => l.level < 40)).toEqual([]);
  });

  it('lowers it to debug', async () => {
    const { logger, lines } = capture('info');
    const source = new FakeSource();
    const [job] = source.add(fakeJob('u.mine'));
    const w = createWorker({ dataSource: source, handlers, logger, logLevel: 'debug', maintenanceIntervalMs: false });
    workers.push(w);
    await w.start();
    await waitFor(() => source.completed.has(job.id));
    await w.stop();
    expect(lines.filter((l) => l.level === 20).map((l) => l.msg)).toContain('job completed');
  });
});
