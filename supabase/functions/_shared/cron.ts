/**
 * Cron evaluation for recurring jobs, shared by the jobs-scheduler function and the schedules API.
 * Pure functions over cron-parser (Luxon time zones, DST-aware); SQL stores what these compute.
 *
 * Accepted expressions: five fields (minute hour day-of-month month day-of-week) or one of the macros
 * below. Rejected on purpose: a seconds field (the scheduler ticks once a minute) and `H` (random
 * values would differ between the API and the scheduler).
 */
import { CronExpressionParser } from 'cron-parser';

const MACROS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@hourly']);
// The same shape the job_schedule_cron_format constraint checks in SQL.
const FIELD = /^[0-9A-Za-z*/,?#-]+$/;
// `H` as a value (not the H of THU).
const HASH = /(^|[^A-Za-z])H(?![A-Za-z])/i;

export class CronError extends Error {
  override name = 'CronError';
}

/** Trims and collapses whitespace, then checks the shape; throws CronError. Returns the stored form. */
export function normalizeCron(expression: string): string {
  const text = expression.trim().replace(/\s+/g, ' ');
  if (text.length === 0 || text.length > 200) throw new CronError('cron must be 1-200 characters');
  if (text.startsWith('@')) {
    if (!MACROS.has(text.toLowerCase())) throw new CronError(`unsupported macro ${text}; use ${[...MACROS].join(', ')}`);
    return text.toLowerCase();
  }
  const fields = text.split(' ');
  if (fields.length !== 5) throw new CronError('cron must have five fields: minute hour day-of-month month day-of-week');
  if (!fields.every((f) => FIELD.test(f))) throw new CronError('cron fields may contain only digits, names and * / , - ? L W #');
  if (fields.some((f) => HASH.test(f))) throw new CronError('H (hashed values) is not supported');
  return text;
}

/** True when the runtime knows the IANA zone (SQL separately checks pg_timezone_names). */
export function isValidTimeZone(timeZone: string): boolean {
  if (!timeZone || timeZone.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

function parse(cron: string, timeZone: string, currentDate: Date) {
  try {
    return CronExpressionParser.parse(cron, { currentDate, tz: timeZone });
  } catch (e) {
    throw new CronError(`invalid cron expression: ${(e as Error).message}`);
  }
}

/** The first slot strictly after `after`. */
export function nextSlot(cron: string, timeZone: string, after: Date): Date {
  try {
    return parse(cron, timeZone, after).next().toDate();
  } catch (e) {
    throw e instanceof CronError ? e : new CronError(`cron has no next run: ${(e as Error).message}`);
  }
}

/** The latest slot at or before `at` (null if there is none). */
export function latestSlot(cron: string, timeZone: string, at: Date): Date | null {
  try {
    // prev() is strictly before currentDate; one millisecond later includes a slot exactly at `at`.
    return parse(cron, timeZone, new Date(at.getTime() + 1)).prev().toDate();
  } catch (e) {
    if (e instanceof CronError) throw e;
    return null;
  }
}

/** Validates an expression and zone together; returns the normalised expression and its next slot. */
export function checkSchedule(cron: string, timeZone: string, now: Date): { cron: string; nextRunAt: Date } {
  const normalized = normalizeCron(cron);
  if (!isValidTimeZone(timeZone)) throw new CronError('time_zone must be an IANA time zone name, e.g. Europe/Berlin');
  return { cron: normalized, nextRunAt: nextSlot(normalized, timeZone, now) };
}

export interface DueSchedule {
  id: string;
  cron: string;
  time_zone: string;
  next_run_at: Date;
}

/** One entry for supaqueue.fire_schedules. */
export type FirePlan =
  | { id: string; slot: string | null; next_run_at: string }
  | { id: string; error: string };

/**
 * The catch-up policy, "run once, not a burst": of all slots in [next_run_at, now] only the latest
 * fires; next_run_at moves to the first slot after now. When no slot lies in that window (next_run_at
 * was set to "from now on" rather than to a slot), nothing fires and next_run_at just moves.
 * A schedule whose cron or zone cannot be evaluated gets an error entry (the SQL side disables it).
 */
export function planFire(schedule: DueSchedule, now: Date): FirePlan {
  try {
    if (!isValidTimeZone(schedule.time_zone)) throw new CronError(`unknown time zone ${schedule.time_zone}`);
    const cron = normalizeCron(schedule.cron);
    const latest = latestSlot(cron, schedule.time_zone, now);
    const slot = latest && latest.getTime() >= schedule.next_run_at.getTime() ? latest.toISOString() : null;
    return { id: schedule.id, slot, next_run_at: nextSlot(cron, schedule.time_zone, now).toISOString() };
  } catch (e) {
    if (!(e instanceof CronError)) throw e;
    return { id: schedule.id, error: e.message };
  }
}
