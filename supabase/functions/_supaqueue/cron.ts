/**
 * Cron evaluation for recurring jobs, shared by the jobs-scheduler function and the schedules API.
 * Pure functions over croner (no dependencies, IANA zones through Intl); SQL stores what these compute.
 *
 * Accepted expressions: five fields (minute hour day-of-month month day-of-week) or one of the macros
 * below. Rejected on purpose: a seconds field (the scheduler ticks once a minute) and `H` (random
 * values would differ between the API and the scheduler).
 *
 * Daylight saving time (Vixie cron's rules, as croner applies them): an expression is read on the
 * wall clock of its time zone.
 *   - Fixed-time jobs (no `*` and no step in the minute and hour fields, e.g. `30 2 * * *`,
 *     `0 9,17 * * *`): a time the clock skips (spring forward) runs once at the end of the gap, the
 *     same day; a time the clock shows twice (fall back) runs once, at its first occurrence.
 *   - Interval jobs (`*` or a step in the minute or hour field, e.g. every 15 minutes): they follow
 *     real time; a skipped time does not run and a repeated time runs on both occurrences.
 * Every slot is a real instant, strictly increasing, so "the latest slot not later than last_run_at"
 * never fires twice.
 */
import { Cron } from 'croner';
import { CRON_PLAN_MAX_MS } from './limits.ts';

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

// sloppyRanges: `5/15` (from 5 every 15) is accepted, as cron-parser accepted it before (stored
// schedules keep working). fixedTimeRule: lists count as fixed times (Vixie cron), see above.
const OPTIONS = { paused: true, mode: '5-part', sloppyRanges: true, fixedTimeRule: 'no-wildcard' } as const;

function compile(cron: string, timeZone: string): Cron {
  try {
    return new Cron(cron, { ...OPTIONS, timezone: timeZone });
  } catch (e) {
    throw new CronError(`invalid cron expression: ${(e as Error).message}`);
  }
}

/** The first slot strictly after `after`. Croner searches a bounded horizon; none in it is an error. */
export function nextSlot(cron: string, timeZone: string, after: Date): Date {
  const next = compile(cron, timeZone).nextRun(after);
  if (!next) throw new CronError('cron has no next run (a date that never occurs, such as 30 February?)');
  return next;
}

/** The latest slot at or before `at` (null if there is none). */
export function latestSlot(cron: string, timeZone: string, at: Date): Date | null {
  // previousRuns() is strictly before its reference and works in whole seconds (slots fall on whole
  // minutes): the next whole second after `at` includes a slot exactly at `at`, and nothing later.
  const reference = new Date(Math.floor(at.getTime() / 1000) * 1000 + 1000);
  const [latest] = compile(cron, timeZone).previousRuns(1, reference);
  return latest && latest.getTime() <= at.getTime() ? latest : null;
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
 * A schedule whose cron or zone cannot be evaluated, or whose planning took longer than
 * CRON_PLAN_MAX_MS, gets an error entry (the SQL side disables it with the message).
 */
export function planFire(schedule: DueSchedule, now: Date, opts: { maxMs?: number; clock?: () => number } = {}): FirePlan {
  const clock = opts.clock ?? (() => performance.now());
  const maxMs = opts.maxMs ?? CRON_PLAN_MAX_MS;
  const started = clock();
  try {
    if (!isValidTimeZone(schedule.time_zone)) throw new CronError(`unknown time zone ${schedule.time_zone}`);
    const cron = normalizeCron(schedule.cron);
    const latest = latestSlot(cron, schedule.time_zone, now);
    const slot = latest && latest.getTime() >= schedule.next_run_at.getTime() ? latest.toISOString() : null;
    const next = nextSlot(cron, schedule.time_zone, now).toISOString();
    const took = clock() - started;
    if (took > maxMs) throw new CronError(`planning took ${Math.round(took)} ms, more than ${maxMs} ms`);
    return { id: schedule.id, slot, next_run_at: next };
  } catch (e) {
    if (!(e instanceof CronError)) throw e;
    return { id: schedule.id, error: e.message };
  }
}
