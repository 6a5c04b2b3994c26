/**
 * jobs-scheduler configuration: the shared function config (database, JWT secret) plus the
 * scheduler's own variables, read once and validated at boot.
 *
 * | variable                          | default | meaning |
 * |-----------------------------------|---------|---------|
 * | SUPABASE_SERVICE_ROLE_KEY         | none    | a bearer equal to it is accepted (set by Supabase; may be an sb_secret_ key) |
 * | SUPAQUEUE_RETENTION_DAYS          | 7       | finished jobs older than this are purged (0-3650, decimals allowed) |
 * | SUPAQUEUE_SCHEDULER_MAX_SCHEDULES | 100     | schedules fired per invocation at most (1-1000) |
 * | SUPAQUEUE_SCHEDULER_PURGE_MAX     | 1000    | finished jobs deleted per invocation at most |
 * | SUPAQUEUE_SCHEDULER_RECLAIM_MAX   | 1000    | expired leases reclaimed per invocation at most |
 * Plus everything in ../_shared/config.ts (SUPABASE_URL, SUPABASE_DB_URL, JWT_SECRET, ...).
 */
import { z } from 'zod';
import { loadConfig, type Config } from '../_shared/config.ts';
import type { SchedulerLimits } from '../_shared/schedules.ts';

const intFromEnv = (def: number, min: number, max: number) =>
  z.string().trim().regex(/^\d+$/, 'must be a whole number').optional()
    .transform((v) => (v === undefined || v === '' ? def : Number(v)))
    .pipe(z.number().int().min(min).max(max));

const EnvSchema = z.object({
  SUPABASE_SERVICE_ROLE_KEY: z.string().trim().optional().transform((v) => (v ? v : undefined)),
  SUPAQUEUE_RETENTION_DAYS: z.string().trim().regex(/^\d+(\.\d+)?$/, 'must be a number of days').optional()
    .transform((v) => (v === undefined || v === '' ? 7 : Number(v)))
    .pipe(z.number().min(0).max(3650)),
  SUPAQUEUE_SCHEDULER_MAX_SCHEDULES: intFromEnv(100, 1, 1000),
  SUPAQUEUE_SCHEDULER_PURGE_MAX: intFromEnv(1000, 1, 100_000),
  SUPAQUEUE_SCHEDULER_RECLAIM_MAX: intFromEnv(1000, 1, 100_000),
});

export interface SchedulerConfig {
  base: Config;
  /** Accepted as a bearer as is (compared in constant time). */
  serviceRoleKey?: string;
  limits: SchedulerLimits;
}

/** Parses an environment; throws an Error naming every bad variable. Pure. */
export function loadSchedulerConfig(env: Record<string, string | undefined>): SchedulerConfig {
  const base = loadConfig(env);
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid function configuration: ${problems}`);
  }
  const e = parsed.data;
  if (!e.SUPABASE_SERVICE_ROLE_KEY && !base.jwt.secret) {
    // Nothing could ever authenticate: fail at boot, not with a 401 per minute forever.
    throw new Error('invalid function configuration: set SUPABASE_SERVICE_ROLE_KEY or the JWT secret');
  }
  return Object.freeze({
    base,
    serviceRoleKey: e.SUPABASE_SERVICE_ROLE_KEY,
    limits: Object.freeze({
      maxSchedules: e.SUPAQUEUE_SCHEDULER_MAX_SCHEDULES,
      batchSize: 25,
      reclaimMax: e.SUPAQUEUE_SCHEDULER_RECLAIM_MAX,
      purgeMax: e.SUPAQUEUE_SCHEDULER_PURGE_MAX,
      retentionDays: e.SUPAQUEUE_RETENTION_DAYS,
      statementTimeoutMs: Math.max(base.db.statementTimeoutMs, 15_000),
    }),
  });
}
