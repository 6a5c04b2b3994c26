/**
 * Small helpers for the worker benchmark (bench/workers.ts): bounded waits, statistics, formatting, and
 * CPU accounting for this Node process and for the Postgres server's processes.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

export const now = (): number => performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export class TimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`timeout: ${what} after ${Math.round(ms)} ms`);
  }
}

/** Resolves like p, or rejects with TimeoutError after ms; the timer never keeps the process alive. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), Math.max(0, ms));
    timer.unref();
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs fn, swallowing errors and giving up after ms; returns false when it failed or timed out. */
export async function bestEffort(fn: () => Promise<unknown>, ms: number): Promise<boolean> {
  try {
    await withTimeout(Promise.resolve().then(fn), ms, 'cleanup');
    return true;
  } catch {
    return false;
  }
}

/** Nearest-rank percentile of unsorted values (q in 0..1). */
export function percentile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil(q * s.length)));
  return s[rank - 1];
}

export function median(values: number[]): number {
  return percentile(values, 0.5);
}

const nf0 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
export const int = (n: number): string => (Number.isFinite(n) ? nf0.format(n) : '–');
export const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '–');
export const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '–');

/** A counter that resolves a promise when it reaches a target; also counts repeated job ids. */
export class JobCounter {
  count = 0;
  dups = 0;
  private seen = new Set<string>();
  private waiters: { target: number; resolve: () => void }[] = [];

  hit(id: string): void {
    if (this.seen.has(id)) this.dups++;
    else this.seen.add(id);
    this.count++;
    if (this.waiters.length) {
      this.waiters = this.waiters.filter((w) => {
        if (this.count >= w.target) { w.resolve(); return false; }
        return true;
      });
    }
  }

  reached(target: number): Promise<void> {
    if (this.count >= target) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ target, resolve }));
  }
}

// ---------------------------------------------------------------------------------------------------
// CPU accounting
// ---------------------------------------------------------------------------------------------------

const CLK_TCK = 100; // USER_HZ on Linux

function readStat(pid: number): { ppid: number; self: number; children: number } | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // after the comm: [0]=state [1]=ppid ... [11]=utime [12]=stime [13]=cutime [14]=cstime
    return { ppid: Number(f[1]), self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
  } catch {
    return null;
  }
}

/** The Postgres server's parent process, from one backend's pid (null when not readable, e.g. remote). */
export function postmasterOf(backendPid: number): number | null {
  const st = readStat(backendPid);
  return st ? st.ppid : null;
}

/**
 * CPU seconds used so far by the Postgres server: the postmaster, its live children, and its exited
 * children (reaped, so folded into the postmaster's cutime/cstime).
 */
export function pgCpuSeconds(postmaster: number | null): number {
  if (!postmaster || !fs.existsSync('/proc')) return NaN;
  const root = readStat(postmaster);
  if (!root) return NaN;
  let ticks = root.self + root.children;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st && st.ppid === postmaster) ticks += st.self;
  }
  return ticks / CLK_TCK;
}

export function nodeCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** The Postgres server's processes: the postmaster and its live children (for SIGSTOP/SIGCONT). */
export function serverPids(postmaster: number): number[] {
  const pids = [postmaster];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st && st.ppid === postmaster) pids.push(Number(name));
  }
  return pids;
}
