/**
 * Cron planning across daylight-saving changes, with the module the jobs-scheduler function and the
 * schedules API use (supabase/functions/_supaqueue/cron.ts), and the bound on planning time.
 *
 * 2026 transitions used (local wall clock):
 *   Australia/Lord_Howe (30-minute shift at 02:00): Sun 5 Apr 02:00 +11 -> 01:30 +10:30 (at 15:00Z on
 *   4 Apr; 01:30-02:00 shown twice); Sun 4 Oct 02:00 +10:30 -> 02:30 +11 (at 15:30Z on 3 Oct; 02:00-02:30
 *   skipped).
 *   Pacific/Chatham (one hour at 02:45/03:45): Sun 5 Apr 03:45 +13:45 -> 02:45 +12:45 (at 14:00Z on
 *   4 Apr; 02:45-03:45 shown twice); Sun 27 Sep 02:45 +12:45 -> 03:45 +13:45 (at 14:00Z on 26 Sep;
 *   02:45-03:45 skipped).
 * Expected behaviour (Vixie cron's): a fixed time in a skipped interval runs at the end of the gap, the
 * same day; a fixed time shown twice runs once, at its first occurrence; interval expressions follow
 * real time.
 */
import { describe, expect, test } from 'vitest';
import { nextSlot, planFire } from '../supabase/functions/_supaqueue/cron.ts';

const at = (iso: string) => new Date(iso);
const iso = (d: Date) => d.toISOString();
/** The next `n` slots after `from`. */
function slots(cron: string, tz: string, from: string, n: number): string[] {
  const out: string[] = [];
  let t = at(from);
  for (let i = 0; i < n; i++) out.push(iso((t = nextSlot(cron, tz, t))));
  return out;
}

describe('Australia/Lord_Howe, clocks back 30 minutes on 5 April', () => {
  test.each([
    ['0 2 * * *', ['2026-04-04T15:30:00.000Z', '2026-04-05T15:30:00.000Z']],
    ['0 3 * * *', ['2026-04-04T16:30:00.000Z', '2026-04-05T16:30:00.000Z']],
    // 01:45 is shown twice (at +11, then at +10:30): it runs once, at the first.
    ['45 1 * * *', ['2026-04-04T14:45:00.000Z', '2026-04-05T15:15:00.000Z']],
  ])('%s runs at its wall-clock times', (cron, expected) => {
    expect(slots(cron, 'Australia/Lord_Howe', '2026-04-04T10:00:00Z', 2)).toEqual(expected);
  });

  test('every 15 minutes keeps a 15-minute rhythm through the repeated half hour', () => {
    expect(slots('*/15 * * * *', 'Australia/Lord_Howe', '2026-04-04T14:20:00Z', 5)).toEqual([
      '2026-04-04T14:30:00.000Z', '2026-04-04T14:45:00.000Z', '2026-04-04T15:00:00.000Z', '2026-04-04T15:15:00.000Z', '2026-04-04T15:30:00.000Z',
    ]);
  });
});

describe('Australia/Lord_Howe, clocks forward 30 minutes on 4 October', () => {
  test.each([
    // 02:00 and 02:15 do not exist that day: they run when the gap ends (02:30 +11).
    ['0 2 * * *', ['2026-10-03T15:30:00.000Z', '2026-10-04T15:00:00.000Z']],
    ['15 2 * * *', ['2026-10-03T15:30:00.000Z', '2026-10-04T15:15:00.000Z']],
    ['0 3 * * *', ['2026-10-03T16:00:00.000Z', '2026-10-04T16:00:00.000Z']],
  ])('%s runs at its wall-clock times', (cron, expected) => {
    expect(slots(cron, 'Australia/Lord_Howe', '2026-10-03T10:00:00Z', 2)).toEqual(expected);
  });

  test('every 15 minutes skips the minutes the clock skips', () => {
    expect(slots('*/15 * * * *', 'Australia/Lord_Howe', '2026-10-03T15:10:00Z', 2)).toEqual(['2026-10-03T15:15:00.000Z', '2026-10-03T15:30:00.000Z']);
  });
});

describe('Pacific/Chatham, clocks forward an hour on 27 September', () => {
  test.each([
    // 03:00 does not exist that day: it runs when the gap ends (03:45 +13:45 = 14:00Z).
    ['0 3 * * *', '2026-09-26T10:00:00Z', ['2026-09-26T14:00:00.000Z', '2026-09-27T13:15:00.000Z']],
    ['0 4 * * *', '2026-09-26T10:00:00Z', ['2026-09-26T14:15:00.000Z', '2026-09-27T14:15:00.000Z']],
    // Midnight, asked just after the change (what cron-parser took 11 s to fail on).
    ['@daily', '2026-09-26T14:00:00Z', ['2026-09-27T10:15:00.000Z', '2026-09-28T10:15:00.000Z']],
  ])('%s from %s runs at its wall-clock times', (cron, from, expected) => {
    expect(slots(cron, 'Pacific/Chatham', from, 2)).toEqual(expected);
  });
});

describe('Pacific/Chatham, clocks back an hour on 5 April', () => {
  test('03:00, shown twice, runs once at its first occurrence', () => {
    expect(slots('0 3 * * *', 'Pacific/Chatham', '2026-04-04T10:00:00Z', 2)).toEqual(['2026-04-04T13:15:00.000Z', '2026-04-05T14:15:00.000Z']);
  });

  test('a catch-up after both occurrences fires the first one once', () => {
    const plan = planFire({ id: 's', cron: '0 3 * * *', time_zone: 'Pacific/Chatham', next_run_at: at('2026-04-04T13:15:00Z') }, at('2026-04-04T14:30:00Z'));
    expect(plan).toEqual({ id: 's', slot: '2026-04-04T13:15:00.000Z', next_run_at: '2026-04-05T14:15:00.000Z' });
  });
});

describe('the scheduler plans daily crons next to a change instead of disabling them', () => {
  test.each([
    ['0 2 * * *', 'Australia/Lord_Howe', '2026-04-04T15:30:00Z', '2026-04-05T15:30:00.000Z'],
    ['0 3 * * *', 'Australia/Lord_Howe', '2026-04-04T16:30:00Z', '2026-04-05T16:30:00.000Z'],
    ['0 2 * * *', 'Australia/Lord_Howe', '2026-10-03T15:30:00Z', '2026-10-04T15:00:00.000Z'],
    ['0 3 * * *', 'Pacific/Chatham', '2026-09-26T14:00:00Z', '2026-09-27T13:15:00.000Z'],
  ])('%s in %s, due at %s', (cron, tz, due, next) => {
    const plan = planFire({ id: 's', cron, time_zone: tz, next_run_at: at(due) }, at(due));
    expect(plan).toEqual({ id: 's', slot: at(due).toISOString(), next_run_at: next });
  });
});

// ---- every zone's 2026 changes against a minute-by-minute reading of the wall clock ----------------

const wallFormats = new Map<string, Intl.DateTimeFormat>();
/** Minutes since the epoch of the wall clock in tz at t, as if it were UTC. */
function wallMinutes(t: number, tz: string): number {
  let f = wallFormats.get(tz);
  if (!f) wallFormats.set(tz, (f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric' })));
  const p = Object.fromEntries(f.formatToParts(new Date(t)).map((x) => [x.type, Number(x.value)]));
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute) / 60_000;
}
const offset = (t: number, tz: string) => wallMinutes(t, tz) - Math.floor(t / 60_000);

/** The instants (whole minutes) in 2026 where tz's offset changes. */
function transitions(tz: string): number[] {
  const out: number[] = [];
  const day = 86_400_000;
  for (let t = Date.UTC(2026, 0, 1, 12); t < Date.UTC(2027, 0, 1, 12); t += day) {
    if (offset(t, tz) === offset(t + day, tz)) continue;
    let [lo, hi] = [t, t + day]; // offset(lo) != offset(hi): narrow to the first minute of the new one
    while (hi - lo > 60_000) {
      const mid = lo + Math.floor((hi - lo) / 120_000) * 60_000;
      if (offset(mid, tz) === offset(lo, tz)) lo = mid; else hi = mid;
    }
    out.push(hi);
  }
  return out;
}

/** Reference: the first whole minute after `from` whose wall clock reads hh:mm, else (skipped) the gap's end. */
function expectedFixed(tz: string, from: number, hh: number, mm: number, change: number): number {
  for (let t = from + 60_000; t < from + 6 * 3600_000; t += 60_000) {
    const w = wallMinutes(t, tz) % 1440;
    if (w === hh * 60 + mm) return t;
  }
  return change;
}

const dstZones = Intl.supportedValuesOf('timeZone').filter((tz) => offset(Date.UTC(2026, 0, 15), tz) !== offset(Date.UTC(2026, 6, 15), tz));

/** True when the skipped interval at `change` ends on the next calendar day (America/Nuuk: 23:00 -> 00:00). */
const gapCrossesMidnight = (tz: string, change: number) => Math.floor(wallMinutes(change, tz) / 1440) !== Math.floor(wallMinutes(change - 60_000, tz) / 1440);

test('every zone with DST: a fixed time inside each 2026 change runs where the wall clock says', () => {
  expect(dstZones).toEqual(expect.arrayContaining(['Australia/Lord_Howe', 'Pacific/Chatham', 'Europe/Berlin', 'America/Santiago']));
  const wrong: string[] = [];
  let checked = 0;
  for (const tz of dstZones) {
    for (const change of transitions(tz)) {
      const shift = offset(change, tz) - offset(change - 60_000, tz);
      if (shift > 0 && gapCrossesMidnight(tz, change)) continue; // the next test
      // Forward: a wall time 15 minutes into the gap (never shown). Back: 15 minutes before the change (shown twice).
      const wall = (shift > 0 ? wallMinutes(change - 60_000, tz) + 16 : wallMinutes(change - 15 * 60_000, tz)) % 1440;
      const [hh, mm] = [Math.floor(wall / 60), wall % 60];
      const from = change - 2 * 3600_000;
      const expected = iso(new Date(expectedFixed(tz, from, hh, mm, change)));
      let got: string;
      try {
        got = iso(nextSlot(`${mm} ${hh} * * *`, tz, new Date(from)));
      } catch (e) {
        got = `error: ${(e as Error).message}`;
      }
      checked++;
      if (got !== expected) wrong.push(`${tz} ${mm} ${hh} * * * from ${iso(new Date(from))}: ${got}, expected ${expected}`);
    }
  }
  expect(checked).toBeGreaterThan(100);
  expect(wrong).toEqual([]);
});

test('known limit: a time skipped by a gap that ends at midnight (America/Nuuk) runs the next day, not at the gap end', () => {
  // Nuuk: Sat 28 Mar 2026 23:00 -02 -> Sun 00:00 -01 (at 01:00Z). Saturday's 23:15 never shows; croner
  // runs fixed times only on the day of the gap, so that one run is lost (Vixie cron would run it at 00:00).
  expect(iso(nextSlot('15 23 * * *', 'America/Nuuk', at('2026-03-28T23:00:00Z')))).toBe('2026-03-30T00:15:00.000Z');
});

describe('planning time', () => {
  test('100 schedules planned at the Chatham and Lord Howe changes take well under a second', () => {
    const cases: [string, string, string][] = [];
    for (const [tz, change] of [['Pacific/Chatham', '2026-09-26T14:00:00Z'], ['Pacific/Chatham', '2026-04-04T14:00:00Z'],
      ['Australia/Lord_Howe', '2026-04-04T15:00:00Z'], ['Australia/Lord_Howe', '2026-10-03T15:30:00Z']]) {
      for (const cron of ['0 0 * * *', '0 2 * * *', '0 3 * * *', '45 2 * * *', '30 1 * * *']) {
        for (const minutes of [-10, 0, 5, 10, 30]) cases.push([cron, tz, iso(new Date(at(change).getTime() + minutes * 60_000))]);
      }
    }
    expect(cases).toHaveLength(100);
    const started = performance.now();
    const plans = cases.map(([cron, tz, now]) => planFire({ id: 's', cron, time_zone: tz, next_run_at: at(now) }, at(now)));
    const took = performance.now() - started;
    expect(plans.filter((p) => 'error' in p)).toEqual([]);
    expect(took).toBeLessThan(1000);
  });

  test('a schedule whose planning overruns the cap is reported as an error, not planned', () => {
    let clock = 0;
    const slowClock = () => (clock += 2000);
    const plan = planFire({ id: 's', cron: '0 3 * * *', time_zone: 'UTC', next_run_at: at('2026-05-01T03:00:00Z') }, at('2026-05-01T03:00:00Z'),
      { clock: slowClock });
    expect(plan).toMatchObject({ id: 's', error: expect.any(String) });
    expect(plan).not.toHaveProperty('slot');
  });
});
