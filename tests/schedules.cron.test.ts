/**
 * Cron evaluation in time zones, with the module the jobs-scheduler function and the schedules API
 * use (supabase/functions/_supaqueue/cron.ts). Europe/Berlin switches to summer time on the last Sunday of
 * March (2026-03-29) and back on the last Sunday of October (2026-10-25): 09:00 local is 08:00Z in
 * winter and 07:00Z in summer.
 */
import { expect, test } from 'vitest';
import { checkSchedule, CronError, nextSlot, normalizeCron, planFire } from '../supabase/functions/_supaqueue/cron.ts';

const at = (iso: string) => new Date(iso);

test('0 9 * * * in Europe/Berlin runs at 08:00Z on the Saturday before the March change', () => {
  expect(nextSlot('0 9 * * *', 'Europe/Berlin', at('2026-03-27T12:00:00Z')).toISOString()).toBe('2026-03-28T08:00:00.000Z');
});

test('0 9 * * * in Europe/Berlin runs at 07:00Z on the Sunday of the March change', () => {
  expect(nextSlot('0 9 * * *', 'Europe/Berlin', at('2026-03-28T12:00:00Z')).toISOString()).toBe('2026-03-29T07:00:00.000Z');
});

test('0 9 * * * in Europe/Berlin runs at 07:00Z on the Saturday before the October change', () => {
  expect(nextSlot('0 9 * * *', 'Europe/Berlin', at('2026-10-23T12:00:00Z')).toISOString()).toBe('2026-10-24T07:00:00.000Z');
});

test('0 9 * * * in Europe/Berlin runs at 08:00Z on the Sunday of the October change', () => {
  expect(nextSlot('0 9 * * *', 'Europe/Berlin', at('2026-10-24T12:00:00Z')).toISOString()).toBe('2026-10-25T08:00:00.000Z');
});

test('02:30 local, repeated when clocks go back in October, fires once that night', () => {
  const a = nextSlot('30 2 * * *', 'Europe/Berlin', at('2026-10-24T12:00:00Z'));
  const b = nextSlot('30 2 * * *', 'Europe/Berlin', a);
  expect(b.getTime() - a.getTime()).toBeGreaterThan(12 * 3600_000);
});

test('catch-up across the March change fires the latest slot in summer time (07:00Z)', () => {
  const plan = planFire({ id: 's', cron: '0 9 * * *', time_zone: 'Europe/Berlin', next_run_at: at('2026-03-27T08:00:00Z') },
    at('2026-03-29T12:00:00Z'));
  expect(plan).toEqual({ id: 's', slot: '2026-03-29T07:00:00.000Z', next_run_at: '2026-03-30T07:00:00.000Z' });
});

test('the same expression gives different UTC times in different zones', () => {
  const from = at('2026-01-15T00:00:00Z');
  expect(nextSlot('0 9 * * *', 'America/New_York', from).toISOString()).toBe('2026-01-15T14:00:00.000Z');
  expect(nextSlot('0 9 * * *', 'UTC', from).toISOString()).toBe('2026-01-15T09:00:00.000Z');
});

test('a slot exactly at now is due now, not skipped', () => {
  const plan = planFire({ id: 's', cron: '*/5 * * * *', time_zone: 'UTC', next_run_at: at('2026-05-01T10:00:00Z') }, at('2026-05-01T10:00:00Z'));
  expect(plan).toMatchObject({ slot: '2026-05-01T10:00:00.000Z', next_run_at: '2026-05-01T10:05:00.000Z' });
});

test.each([
  ['six fields (seconds)', '0 0 9 * * *'],
  ['hashed values', 'H 9 * * *'],
  ['an unsupported macro', '@secondly'],
  ['an impossible date', '0 0 30 2 *'],
  ['an out-of-range minute', '61 * * * *'],
  ['empty', '   '],
])('rejects %s', (_what, cron) => {
  expect(() => checkSchedule(cron, 'UTC', at('2026-01-01T00:00:00Z'))).toThrow(CronError);
});

test('rejects an unknown time zone', () => {
  expect(() => checkSchedule('0 9 * * *', 'Europe/Atlantis', at('2026-01-01T00:00:00Z'))).toThrow(CronError);
});

test('normalises whitespace and macro case to the form SQL stores', () => {
  expect(normalizeCron('  0   9 *\t* MON-FRI ')).toBe('0 9 * * MON-FRI');
  expect(normalizeCron('@Daily')).toBe('@daily');
});
