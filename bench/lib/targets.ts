/**
 * Issue 11's "Done when" list, as the benchmark measures it: each section records its checks here
 * (target, measured value, met or not, computed from this run's numbers only), and the summary tables
 * at the top of RESULTS.md and of each section are built from them. Nothing here is hard-coded.
 */

export type Group = 'engine' | 'workers';

export interface Check {
  group: Group;
  /** The Done-when target, in words. */
  target: string;
  /** What this run measured, with the numbers the decision used. */
  measured: string;
  /** true/false, or null when this run could not decide (e.g. a variant timed out or was skipped). */
  met: boolean | null;
  /** The section (as in `npm run bench -- <section>`) that measured it. */
  section: string;
}

const checks: Check[] = [];

export function record(c: Check): void {
  checks.push(c);
}

export function checksOf(filter: (c: Check) => boolean): Check[] {
  return checks.filter(filter);
}

const verdict = (met: boolean | null) => (met === null ? 'n/a' : met ? 'yes' : '**no**');

/** A Markdown table of the given checks (empty when there are none). */
export function summaryTable(list: Check[], withSection = false): string[] {
  if (list.length === 0) return [];
  return [
    withSection ? '| Done-when target | measured (this run) | met | section |' : '| Done-when target | measured (this run) | met |',
    withSection ? '|---|---|:-:|---|' : '|---|---|:-:|',
    ...list.map((c) => `| ${c.target} | ${c.measured} | ${verdict(c.met)} |${withSection ? ` ${c.section} |` : ''}`),
  ];
}
