/**
 * jobs-scheduler configuration: the shared function config (database, JWT secret) plus the
 * scheduler's own variables, read once and validated at boot.
 *
 * | variable                          | default | meaning |
 * |-----------------------------------|---------|---------|
 * | SUPABASE_SERVICE_ROLE_KEY         | none    | a bearer equal to it is accepted (set by Supabase; may be an sb_secret_ key) |
 * | SUPAQUEUE_SCHEDULER_MAX_SCHEDULES | 100     | schedules fired per invocation at most (1-1000) |
 * | SUPAQUEUE_SCHEDULER_MAINTENANCE_MAX | 1000  | jobs reclaimed, promoted and purged per invocation at most (each) |
 * How long finished jobs are kept is the database's one retention setting (supaqueue.retention()).
 * Plus everything in ../_supaqueue/config.ts (SUPABASE_URL, SUPABASE_DB_URL, JWT_SECRET, ...).
 */
import { z } from 'zod';
import { loadConfig, type Config } from '../_supaqueue/config.ts';
import type { SchedulerLimits } from '../_supaqueue/schedules.ts';

const intFromEnv = (def: number, min: number, max: number) =>
  z.string().trim().regex(/^\d+$/, 'must be a whole number').optional()
    .transform((v) => (v === undefined || v === '' ? def : Number(v)))
    .pipe(z.number().int().min(min).max(max));

const EnvSchema = z.object({
  SUPABASE_SERVICE_ROLE_KEY: z.string().trim().optional().transform((v) => (v ? v : undefined)),
  SUPAQUEUE_SCHEDULER_MAX_SCHEDULES: intFromEnv(100, 1, 1000),
  SUPAQUEUE_SCHEDULER_MAINTENANCE_MAX: intFromEnv(1000, 1, 100_000),
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
      maintenanceMax: e.SUPAQUEUE_SCHEDULER_MAINTENANCE_MAX,
      statementTimeoutMs: Math.max(base.db.statementTimeoutMs, 15_000),
    }),
  });
}
