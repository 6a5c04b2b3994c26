/**
 * One trace field name (issue 15): the edge functions log a request's trace id as `trace_id` (the
 * column's name); the worker's job logger binds the job's trace id under the same name, so one query
 * finds a job's lines from the API request to the handler.
 */
import pino from 'pino';
import { afterEach, expect, test } from 'vitest';
import { createWorker, type Worker } from '../worker/index.ts';
import { FakeSource, fakeJob, waitFor } from './helpers/worker.ts';

const workers: Worker[] = [];
afterEach(async () => { await Promise.all(workers.splice(0).map((w) => w.stop())); });

test('a handler\'s ctx.logger lines carry the job\'s trace id as trace_id', async () => {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line)); } });
  const source = new FakeSource();
  source.add({ ...fakeJob('trace.log'), trace_id: 'trace-123' });
  const w = createWorker({
    dataSource: source, logger, pollIntervalMs: 10, maintenanceIntervalMs: false,
    handlers: { 'trace.log': async (_job, ctx) => { ctx.logger.info('inside the handler'); return null; } },
  });
  workers.push(w);
  await w.start();
  await waitFor(() => lines.some((l) => l.msg === 'inside the handler'));
  const line = lines.find((l) => l.msg === 'inside the handler')!;
  expect(line).toMatchObject({ trace_id: 'trace-123' });
  expect(line).not.toHaveProperty('traceId');
});
