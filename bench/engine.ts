/**
 * Issue 3: the queue engine benchmark (`npx tsx bench/run.ts engine`). Two parts, one server, one run:
 *  1. claim + complete throughput, supaqueue vs a raw SKIP LOCKED loop on a bare table (the ceiling);
 *  2. claim latency as the backlog and the number of tenants grow (must stay flat).
 * Speeds are only compared within this run: the machines are shared and noisy.
 */
import type { BenchServer } from './lib/db.ts';
import { CONNECTIONS, ENGINE, JOBS, RAW, timedRun } from './engine-throughput.ts';
import { BATCH, CALLS, FILL_CHUNK, SUBMITTERS, SUBMITTER_TIER, measureLatency, plannerOverrides, type LatencyCase, type LatencyResult } from './engine-latency.ts';
import { POSITION_CALLS } from './lib/position.ts';
import { checksOf, record, summaryTable } from './lib/targets.ts';

const BATCHES = [1, 50];
const RUNS = 3;
const TARGET = 0.8;
/** BENCH_LATENCY_SCALE (e.g. 0.01) shrinks every backlog while developing the benchmark. */
const SCALE = Number(process.env.BENCH_LATENCY_SCALE ?? 1);
const FIXED_TENANTS = 100;
const FIXED_BACKLOG = 100_000;
const BACKLOGS = [1_000, 10_000, 100_000, 1_000_000];
const TENANT_COUNTS = [10, 100, 1_000, 10_000];
/** "Flat": the largest median of a series is at most this many times its smallest. */
const FLAT_RATIO = 2;
const BIGGEST = (xs: number[]) => Math.max(...xs);
const LATENCY_CASES: LatencyCase[] = [
  ...BACKLOGS.map((backlog) => ({ backlog, tenants: FIXED_TENANTS, positions: backlog === BIGGEST(BACKLOGS) })),
  ...TENANT_COUNTS.filter((t) => t !== FIXED_TENANTS).map((tenants) => ({ backlog: FIXED_BACKLOG, tenants, positions: tenants === BIGGEST(TENANT_COUNTS) })),
  { backlog: FIXED_BACKLOG, tenants: 1_000, limited: true },
  { backlog: FIXED_BACKLOG, tenants: FIXED_TENANTS, userLimited: true },
].map((c) => ({ ...c, backlog: Math.max(1_000, Math.round(c.backlog * SCALE)) }));

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
    record({
      group: 'engine', section: 'engine', met: ratio >= TARGET,
      target: `claim + complete ≥ ${TARGET * 100}% of the raw SKIP LOCKED ceiling, batch ${batch}`,
      measured: `${(ratio * 100).toFixed(0)}% (${int(median(engine))} vs ${int(median(raw))} jobs/s, medians of ${RUNS})`,
    });
    rows.push(`| ${batch} | ${int(median(raw))} | ${int(median(engine))} | ${(ratio * 100).toFixed(0)}% | ${ratio >= TARGET ? 'yes' : 'no'} | ${raw.map(int).join(' / ')} | ${engine.map(int).join(' / ')} |`);
  }
  return rows;
}

const ms = (x: number) => x.toFixed(2);

/** Flatness of one series of cases (medians after ANALYZE, and right after the burst). */
function flatness(what: string, rs: LatencyResult[], key: (r: LatencyResult) => number): void {
  for (const [when, pick] of [['after ANALYZE', (r: LatencyResult) => r.analyzed.medianMs], ['right after the burst', (r: LatencyResult) => r.burst.medianMs]] as const) {
    const xs = rs.map(pick);
    const spread = Math.max(...xs) / Math.min(...xs);
    record({
      group: 'engine', section: 'engine', met: spread <= FLAT_RATIO,
      target: `claim cost flat ${what} (${when}; largest median ≤ ${FLAT_RATIO}× smallest)`,
      measured: `${rs.map((r) => `${int(key(r))}: ${ms(pick(r))}`).join(', ')} ms (${spread.toFixed(2)}×)`,
    });
  }
}

/** The label of a case in the claim latency table. */
const caseLabel = (c: LatencyCase) => `${int(c.backlog)}${c.userLimited ? ', every job\'s submitter limited (counters exist)' : ''} | ${int(c.tenants)}${c.limited ? ' (all with max_concurrent_jobs)' : ''}`;

async function latency(server: BenchServer): Promise<{ rows: string[]; fills: string[]; positions: string[] }> {
  const rows: string[] = [];
  const positions: string[] = [];
  const results: LatencyResult[] = [];
  for (const c of LATENCY_CASES) {
    const r: LatencyResult = await measureLatency(server, c);
    results.push(r);
    log(`latency backlog ${int(c.backlog)} tenants ${int(c.tenants)}${c.limited ? ' (limited)' : ''}${c.userLimited ? ' (submitters limited)' : ''}: burst ${ms(r.burst.medianMs)} ms, analyzed ${ms(r.analyzed.medianMs)} ms (fill ${r.setupS.toFixed(1)} s, ${int(r.jobsPerS)} jobs/s)`);
    rows.push(`| ${caseLabel(c)} | ${ms(r.burst.firstMs)} | ${ms(r.burst.medianMs)} | ${ms(r.burst.p95Ms)} | ${ms(r.analyzed.medianMs)} | ${ms(r.analyzed.p95Ms)} | ${r.setupS.toFixed(0)} s |`);
    for (const p of r.positionTimes ?? []) {
      positions.push(`| ${int(c.backlog)} (${int(p.ready)} ready) | ${int(c.tenants)} | ${p.label} (#${int(p.rank)}) | ${p.ahead === null ? '-' : int(p.ahead)} | ${p.capped === null ? '-' : p.capped ? 'yes' : 'no'} | ${ms(p.medianMs)} | ${ms(p.p95Ms)} |`);
    }
  }
  const plain = results.filter((r) => !r.limited && !r.userLimited);
  const byBacklog = plain.filter((r) => r.tenants === FIXED_TENANTS).sort((a, b) => a.backlog - b.backlog);
  const fixed = LATENCY_CASES.find((c) => c.tenants !== FIXED_TENANTS)!.backlog;
  const byTenants = plain.filter((r) => r.backlog === fixed).sort((a, b) => a.tenants - b.tenants);
  flatness(`from ${int(byBacklog[0].backlog)} to ${int(byBacklog[byBacklog.length - 1].backlog)} pending (${FIXED_TENANTS} tenants)`, byBacklog, (r) => r.backlog);
  flatness(`from ${int(byTenants[0].tenants)} to ${int(byTenants[byTenants.length - 1].tenants)} tenants (${int(fixed)} pending)`, byTenants, (r) => r.tenants);
  const worst = results.reduce((w, r) => (r.burst.medianMs / r.analyzed.medianMs > w.burst.medianMs / w.analyzed.medianMs ? r : w));
  const burstRatio = worst.burst.medianMs / worst.analyzed.medianMs;
  record({
    group: 'engine', section: 'engine', met: burstRatio <= FLAT_RATIO,
    target: `right after a burst (no ANALYZE yet) a claim costs ≤ ${FLAT_RATIO}× its cost after ANALYZE, at every size (no planner override needed)`,
    measured: `worst ${burstRatio.toFixed(2)}× (${int(worst.backlog)} pending, ${int(worst.tenants)} tenants: ${ms(worst.burst.medianMs)} vs ${ms(worst.analyzed.medianMs)} ms)`,
  });
  const users = results.find((r) => r.userLimited);
  const same = users && plain.find((r) => r.backlog === users.backlog && r.tenants === users.tenants);
  if (users && same) {
    const ratio = users.analyzed.medianMs / same.analyzed.medianMs;
    record({
      group: 'engine', section: 'engine', met: ratio <= FLAT_RATIO,
      target: `per-user limits do not slow claims: every submitter limited costs ≤ ${FLAT_RATIO}× the same backlog without (after ANALYZE)`,
      measured: `${ratio.toFixed(2)}× (${ms(users.analyzed.medianMs)} vs ${ms(same.analyzed.medianMs)} ms, ${int(users.backlog)} pending, ${int(users.tenants)} tenants)`,
    });
  }
  const big = results.reduce((b, r) => (r.backlog > b.backlog ? r : b));
  return { rows, positions, fills: [`${int(big.backlog)} jobs through \`enqueue_jobs\` took ${big.setupS.toFixed(0)} s (${int(big.jobsPerS)} jobs/s)`] };
}

async function overrides(server: BenchServer): Promise<void> {
  const list = await plannerOverrides(server);
  record({
    group: 'engine', section: 'engine', met: list.length === 0 ? true : null,
    target: 'no planner override without a measured reason in a comment (count of functions with `enable_*` settings; the reasons are for review)',
    measured: list.length === 0 ? 'none' : `${list.length}: ${list.map((f) => `\`${f}\``).join(', ')}`,
  });
}

export async function runEngineBench(server: BenchServer): Promise<string> {
  const t0 = Date.now();
  const tp = await throughput(server);
  const lat = await latency(server);
  await overrides(server);
  return [
    '## Engine (issues 3 and 11)',
    '',
    ...summaryTable(checksOf((c) => c.section === 'engine')),
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
    `### Claim latency: ms per \`claim_jobs\` call (batch ${BATCH}, one connection, ${CALLS} calls after 10 warm-up calls)`,
    '',
    `Backlogs are built the way producers build them: \`enqueue_jobs\` as service_role in chunks of ${int(FILL_CHUNK)}, tenants`,
    'round-robin (Realtime broadcast triggers off while filling; statistics triggers on). "Right after the burst":',
    'measured as soon as the fill returns, with autovacuum off on the queue tables during the fill, so no ANALYZE',
    'has seen the backlog (the case planner overrides are written for); "first call" is the very first claim.',
    '"After ANALYZE": the same backlog after `VACUUM ANALYZE` and `CHECKPOINT`. Each case is a fresh database.',
    `${lat.fills.join('; ')}.`,
    '',
    '| pending backlog | tenants | first call ms (burst) | median ms (burst) | p95 ms (burst) | median ms (after ANALYZE) | p95 ms (after ANALYZE) | fill |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...lat.rows,
    '',
    `"Every job's submitter limited": each job names one of ${int(SUBMITTERS)} users (\`submitted_by\`); the backlog is built with no tier,`,
    `then every tenant is put on tier '${SUBMITTER_TIER}' and each (tenant, user) gets its \`supaqueue.user_active_jobs\` row with the exact`,
    'count, as `reserve_user_slot` would have made it (each user is far over the limit; claims and completes only move counters).',
    '',
    `### Queue position: ms per \`supaqueue.job_position\` call (${POSITION_CALLS} calls per job, after ANALYZE)`,
    '',
    `Called as service_role on the claim latency case's backlog after its ANALYZE pass; jobs picked from \`supaqueue.job_ready\``,
    'ordered by (priority desc, fair_key), the claim order, at offsets 0, 999, half and the last; `ahead`/`capped` as answered.',
    '',
    '| pending backlog (ready when measured) | tenants | job (place in the ready line) | ahead | capped | median ms | p95 ms |',
    '|---:|---:|---|---:|:-:|---:|---:|',
    ...lat.positions,
    '',
    `_Engine section took ${Math.round((Date.now() - t0) / 1000)} s._`,
    '',
  ].join('\n');
}
