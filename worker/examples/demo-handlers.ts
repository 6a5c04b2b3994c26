/**
 * Handlers for the local stack's demo jobs (supabase/seed.sql enqueues a few of each):
 *   demo.echo    returns its payload
 *   demo.report  ~3 s of "work", reporting progress 0..100; stops early when ctx.signal aborts
 *   demo.flaky   fails its first attempt, succeeds on the second
 *   demo.email   pretends to send; fails permanently when payload.to is missing
 * Run them with `npm run worker -- --handlers worker/examples/demo-handlers.ts`.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { PermanentError, type Handlers } from '../index.ts';

const REPORT_STEPS = 10;
const REPORT_STEP_MS = 300;

export const handlers: Handlers = {
  'demo.echo': async (job) => job.payload,

  'demo.report': async (job, ctx) => {
    for (let step = 0; step <= REPORT_STEPS; step += 1) {
      const percent = Math.round((step / REPORT_STEPS) * 100);
      await ctx.progress({ percent, message: step === REPORT_STEPS ? 'done' : `crunching ${job.payload?.report ?? 'report'}` });
      // Rejects with the abort reason when the job is cancelled, its lease is lost, or the worker stops.
      if (step < REPORT_STEPS) await sleep(REPORT_STEP_MS, undefined, { signal: ctx.signal });
    }
    return { report: job.payload?.report ?? 'report', rows: 42, generatedAt: new Date().toISOString() };
  },

  'demo.flaky': async (_job, ctx) => {
    if (ctx.attempt === 1) throw new Error('flaky: the first attempt always fails (it is retried)');
    return { succeededOnAttempt: ctx.attempt };
  },

  'demo.email': async (job, ctx) => {
    const to = job.payload?.to;
    if (typeof to !== 'string' || to.length === 0) throw new PermanentError('payload.to is required: no recipient, not retrying');
    await sleep(50, undefined, { signal: ctx.signal });
    ctx.logger.info({ to, subject: job.payload?.subject }, 'pretend email sent');
    return { sent: true, to, messageId: randomUUID() };
  },
};

export default handlers;
