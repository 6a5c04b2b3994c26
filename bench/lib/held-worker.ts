/**
 * A supaqueue worker in a process of its own, for bench/load.ts's SIGKILL measurement: it claims jobs of
 * type `noop` (concurrency BENCH_CONCURRENCY), prints `{"started":"<job id>"}` on stdout for each and holds
 * them (the handler waits far longer than the measurement) until the parent kills it with SIGKILL.
 * Run as `node --import tsx bench/lib/held-worker.ts` with BENCH_URL set.
 */
import pino from 'pino';
import { createWorker } from '../../worker/index.ts';

const url = process.env.BENCH_URL;
if (!url) throw new Error('BENCH_URL is not set');
const worker = createWorker({
  connection: url,
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? 10),
  logger: pino({ level: 'silent' }),
  handlers: {
    noop: async (job: { id: string }) => {
      process.stdout.write(`${JSON.stringify({ started: job.id })}\n`);
      await new Promise((resolve) => setTimeout(resolve, 600_000));
      return null;
    },
  },
});
await worker.start();
