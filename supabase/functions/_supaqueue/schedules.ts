/**
 * One scheduler pass: maintenance (public.run_maintenance, the pass the worker runs too: reclaim expired
 * leases, promote due jobs, purge finished jobs past the one retention setting supaqueue.retention()),
 * then fire due recurring jobs.
 * Used by the jobs-scheduler edge function; takes a postgres.js client, so tests can run the very same
 * pass from Node against a test database.
 *
 * Safety: every step is bounded and runs in its own short transaction as service_role. Due schedules
 * are fired in batches: one transaction locks a batch (FOR UPDATE SKIP LOCKED), computes slots with
 * cron.ts using the database's clock, and fires them; an overlapping pass skips the locked rows, and
 * SQL refuses a slot that is not later than the schedule's last_run_at, so a slot never fires twice.
 */
import type { Sql, TransactionSql } from 'postgres';
import { planFire, type DueSchedule } from './cron.ts';
import { inTransactionAs } from './role.ts';

export interface SchedulerLimits {
  /** Schedules fired (or moved) per pass at most. */
  maxSchedules: number;
  /** Schedules per transaction (supaqueue.fire_schedules accepts at most 50). */
  batchSize: number;
  /** Jobs reclaimed, promoted and purged per pass at most (each; run_maintenance's max_jobs). */
  maintenanceMax: number;
  /** statement_timeout of each transaction: a stuck statement ends instead of holding locks. */
  statementTimeoutMs: number;
}

export const DEFAULT_LIMITS: SchedulerLimits = Object.freeze({
  maxSchedules: 100, batchSize: 25, maintenanceMax: 1000, statementTimeoutMs: 15_000,
});

export interface FireCounts { due: number; fired: number; moved: number; failed: number; disabled: number; batches: number }

export interface SchedulerSummary {
  /** run_maintenance's counts (null when that step failed) and the retention it purged with. */
  reclaimed: number | null;
  promoted: number | null;
  purged: number | null;
  retention: string | null;
  schedules: FireCounts & { more: boolean };
  duration_ms: number;
  /** Steps that failed, with the database error code: the other steps still ran. */
  errors: { step: 'maintenance' | 'schedules'; code: string }[];
}

/** fn in a transaction as service_role (the role the maintenance functions are granted to). */
function asServiceRole<T>(sql: Sql, timeoutMs: number, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  return inTransactionAs(sql, {
    role: 'service_role', 'request.jwt.claims': '{"role":"service_role"}', statement_timeout: `${timeoutMs}ms`,
  }, fn);
}

/** Locks, plans and fires one batch; null when nothing was due. */
async function fireBatch(sql: Sql, size: number, timeoutMs: number): Promise<Omit<FireCounts, 'batches'> | null> {
  return asServiceRole(sql, timeoutMs, async (tx) => {
    // The database's clock, the same now() the SQL side compares against: no skew with this isolate.
    const [{ now }] = await tx`select now() as now`;
    const due = await tx<DueSchedule[]>`
      select id, cron, time_zone, next_run_at from supaqueue.lock_due_schedules(${size}::int)`;
    if (due.length === 0) return null;
    const plans = due.map((s) => planFire(s, now as Date));
    const [{ counts }] = await tx`select supaqueue.fire_schedules(${tx.json(plans as never)}) as counts`;
    return { due: due.length, ...(counts as Omit<FireCounts, 'due' | 'batches'>) };
  });
}

/** Fires due schedules, batch by batch, until none is due or maxSchedules were handled. */
export async function fireDueSchedules(sql: Sql, limits: Pick<SchedulerLimits, 'maxSchedules' | 'batchSize'> & Partial<SchedulerLimits>): Promise<FireCounts & { more: boolean }> {
  const total: FireCounts = { due: 0, fired: 0, moved: 0, failed: 0, disabled: 0, batches: 0 };
  while (total.due < limits.maxSchedules) {
    const size = Math.min(limits.batchSize, limits.maxSchedules - total.due);
    const batch = await fireBatch(sql, size, limits.statementTimeoutMs ?? DEFAULT_LIMITS.statementTimeoutMs);
    if (!batch) break;
    total.batches += 1;
    total.due += batch.due;
    total.fired += batch.fired;
    total.moved += batch.moved;
    total.failed += batch.failed;
    total.disabled += batch.disabled;
    if (batch.due < size) break;
  }
  return { ...total, more: total.due >= limits.maxSchedules };
}

function errorCode(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' ? code : 'INTERNAL';
}

/** The whole pass. A failing step is reported in `errors` and does not stop the others. */
export async function runScheduler(sql: Sql, limits: SchedulerLimits = DEFAULT_LIMITS): Promise<SchedulerSummary> {
  const started = performance.now();
  const errors: SchedulerSummary['errors'] = [];
  const step = async <T>(name: SchedulerSummary['errors'][number]['step'], fn: () => Promise<T>): Promise<T | null> => {
    try {
      return await fn();
    } catch (e) {
      errors.push({ step: name, code: errorCode(e) });
      return null;
    }
  };

  const maintenance = await step('maintenance', async () => {
    const [r] = await asServiceRole(sql, limits.statementTimeoutMs, (tx) => tx`
      select public.run_maintenance(max_jobs => ${limits.maintenanceMax}::int) as counts, supaqueue.retention()::text as retention`);
    return r as { counts: { reclaimed: number; promoted: number; purged: number }; retention: string };
  });
  const schedules = await step('schedules', () => fireDueSchedules(sql, limits));
  return {
    reclaimed: maintenance?.counts.reclaimed ?? null,
    promoted: maintenance?.counts.promoted ?? null,
    purged: maintenance?.counts.purged ?? null,
    retention: maintenance?.retention ?? null,
    schedules: schedules ?? { due: 0, fired: 0, moved: 0, failed: 0, disabled: 0, batches: 0, more: false },
    duration_ms: Math.round(performance.now() - started),
    errors,
  };
}
