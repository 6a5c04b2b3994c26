/**
 * Limits the edge functions enforce that must agree with the SQL engine or be tuned in one place.
 * Pure constants, no imports: Node tests import this file too.
 */

/**
 * Deepest nesting of a stored JSON value (a job's payload or result, a schedule's payload): a scalar
 * is depth 0, `{}` or `[]` depth 1, `{"a":[1]}` depth 2. The SQL engine refuses deeper values with the
 * same number; the API refuses them before they reach the database driver, whose serialisation
 * recurses (a 12,000-level payload overflowed the stack and answered 500).
 */
export const MAX_JSON_DEPTH = 32;

/**
 * Longest the planning of one schedule (its latest due slot and its next slot) may take. Past it the
 * schedule is reported as an error (and disabled by SQL with the message) instead of costing every
 * scheduler pass that long again. Croner answers in about a millisecond; this is a safety net.
 */
export const CRON_PLAN_MAX_MS = 1000;
