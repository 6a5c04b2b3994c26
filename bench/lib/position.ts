/**
 * Issue 12: the cost of a queue position (`supaqueue.job_position`, as service_role) on a built backlog,
 * for a job at the front of the ready line, the 1,000th, the middle and the back. The line order is the
 * claim's: supaqueue.job_ready by (priority desc, fair_key), the index job_position walks.
 */
import { performance } from 'node:perf_hooks';
import type postgres from 'postgres';

export const POSITION_CALLS = 30;
const WARMUP = 3;

export interface PositionTiming { label: string; rank: number; ready: number; ahead: number | null; capped: boolean | null; medianMs: number; p95Ms: number }

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

/** Times POSITION_CALLS calls per picked job (after WARMUP untimed ones); the answer is from the last call. */
export async function timePositions(sql: postgres.Sql): Promise<PositionTiming[]> {
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from supaqueue.job_ready`;
  const picks: [string, number][] = [['front', 0], ['1,000th', 999], ['middle', Math.floor(n / 2)], ['back', n - 1]];
  const out: PositionTiming[] = [];
  for (const [label, offset] of picks.filter(([, o]) => o < n)) {
    const [{ job_id }] = await sql<{ job_id: string }[]>`
      select job_id from supaqueue.job_ready order by priority desc, fair_key offset ${offset} limit 1`;
    await sql`set role service_role`;
    const times: number[] = [];
    let answer: { ahead?: number; capped?: boolean } | null = null;
    for (let i = 0; i < WARMUP + POSITION_CALLS; i++) {
      const start = performance.now();
      const [row] = await sql<{ p: { ahead?: number; capped?: boolean } | null }[]>`select supaqueue.job_position(${job_id}::uuid) as p`;
      const ms = performance.now() - start;
      if (i >= WARMUP) times.push(ms);
      answer = row.p;
    }
    await sql`reset role`;
    out.push({ label, rank: offset + 1, ready: n, ahead: answer?.ahead ?? null, capped: answer?.capped ?? null, medianMs: quantile(times, 0.5), p95Ms: quantile(times, 0.95) });
  }
  return out;
}
