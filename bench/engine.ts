/**
 * Issue 3: the queue engine benchmark (`npx tsx bench/run.ts engine`). Two parts, one server, one run:
 *  1. claim + complete throughput, supaqueue vs a raw SKIP LOCKED loop on a bare table (the ceiling);
 *  2. claim latency as the backlog and the number of tenants grow (must stay flat).
 * Speeds are only compared within this run: the machines are shared and noisy.
 */
import type { BenchServer } from './lib/db.ts';
import { CONNECTIONS, ENGINE, JOBS, RAW, timedRun } from './engine-throughput.ts';
import { BATCH, CALLS, measureLatency, type LatencyCase, type LatencyResult } from './engine-latency.ts';

const BATCHES = [1, 50];
const RUNS = 3;
const TARGET = 0.8;
const LATENCY_CASES: LatencyCase[] = [
  { backlog: 1_000, tenants: 100 },
  { backlog: 100_000, tenants: 100 },
  { backlog: 1_000_000, tenants: 100 },
  { backlog: 100_000, tenants: 10 },
  { backlog: 100_000, tenants: 1_000 },
  { backlog: 100_000, tenants: 10_000 },
  { backlog: 100_000, tenants: 1_000, limited: true },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const log = (m: string) => process.stderr.write(`[engine bench] ${m}\n`);

async function throughput(server: BenchServer): Promise<string[]> {
  const rows: string[] = [];
  for (const batch of BATCHES) {
    const raw: number[] = [];
    const engine: number[] = [];
    // Alternate the two so a burst of load from elsewhere on the machine hits both alike.
    for (let r = 0; r < RUNS; r++) {
      raw.push(await timedRun(server, RAW, batch));
      engine.push(await timedRun(server, ENGINE, batch));
      log(`batch ${batch} run ${r + 1}: raw ${int(raw[r])} jobs/s, engine ${int(engine[r])} jobs/s`);
    }
    const ratio = median(engine) / median(raw);
    rows.push(`| ${batch} | ${int(median(raw))} | ${int(median(engine))} | ${(ratio * 100).toFixed(0)}% | ${ratio >= TARGET ? 'yes' : 'no'} | ${raw.map(int).join(' / ')} | ${engine.map(int).join(' / ')} |`);
  }
  return rows;
}

async function latency(server: BenchServer): Promise<string[]> {
  const rows: string[] = [];
  for (const c of LATENCY_CASES) {
    const r: LatencyResult = await measureLatency(server, c);
    log(`latency backlog ${int(c.backlog)} tenants ${int(c.tenants)}${c.limited ? ' (limited)' : ''}: median ${r.medianMs.toFixed(2)} ms (setup ${r.setupS.toFixed(1)} s)`);
    rows.push(`| ${int(c.backlog)} | ${int(c.tenants)}${c.limited ? ' (all with max_concurrent_jobs)' : ''} | ${r.medianMs.toFixed(2)} | ${r.p95Ms.toFixed(2)} |`);
  }
  return rows;
}

export async function runEngineBench(server: BenchServer): Promise<string> {
  const t0 = Date.now();
  const tp = await throughput(server);
  const lat = await latency(server);
  return [
    '## Engine (issue 3)',
    '',
    `### Claim + complete throughput: ${int(JOBS)} jobs per run, ${CONNECTIONS} connections, median of ${RUNS} runs`,
    '',
    'Each connection loops claim(batch) → complete(those jobs) until the queue is empty; jobs are enqueued',
    'before the clock starts (supaqueue: through `enqueue_jobs`, 10 tenants round-robin), then `CHECKPOINT`.',
    'supaqueue calls `claim_jobs` / `complete_jobs` as `service_role` (each connection ran `set role service_role`).',
    'The ceiling is a raw `UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING *` claim and an',
    '`UPDATE ... WHERE id = ANY(...)` complete on a bare table of the same row shape with one partial claim index',
    'and no tenancy, leases, limits or fairness. Same driver (`postgres`), same settings, a fresh database per run.',
    '',
    `| batch | raw ceiling (jobs/s) | supaqueue (jobs/s) | supaqueue / ceiling | ≥ ${TARGET * 100}% | raw runs | supaqueue runs |`,
    '|---:|---:|---:|---:|:-:|---|---|',
    ...tp,
    '',
    `### Claim latency: median and p95 ms per \`claim_jobs\` call (batch ${BATCH}, one connection, ${CALLS} calls after warm-up)`,
    '',
    'Backlogs are built with one `INSERT ... SELECT generate_series` of valid pending jobs spread round-robin over',
    'the tenants with the fair tags enqueue would give them; `VACUUM ANALYZE` and `CHECKPOINT` before measuring.',
    '',
    '| pending backlog | tenants | median ms | p95 ms |',
    '|---:|---:|---:|---:|',
    ...lat,
    '',
    `_Engine section took ${Math.round((Date.now() - t0) / 1000)} s._`,
    '',
  ].join('\n');
}
