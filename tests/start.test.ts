/**
 * `npm start` as a user runs it, on free ports and a temporary data folder: the printed curl answers 200
 * within 60 s of the start, Ctrl-C stops everything with exit 0, and a function that cannot start makes
 * it exit 1 naming the function, the first error and a likely fix.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { freePort, portInUse } from '../scripts/lib/pg.ts';
import { ROOT } from '../scripts/lib/stack.ts';

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  dbPort: number;
}

const running: Started[] = [];
const dirs: string[] = [];

async function npmStart(extraEnv: Record<string, string> = {}): Promise<Started> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'supaqueue-start-'));
  fs.chmodSync(dataDir, 0o755); // as root, Postgres runs as the `postgres` user, which must reach it
  dirs.push(dataDir);
  const dbPort = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, SUPAQUEUE_DB_PORT: String(dbPort), SUPAQUEUE_API_PORT: String(await freePort()),
    SUPAQUEUE_DASHBOARD_PORT: String(await freePort()),
    SUPAQUEUE_DATA_DIR: dataDir, NO_COLOR: '1', ...extraEnv };
  delete env.DATABASE_URL;
  // What `npm start` runs (checked below), without npm in between: npm itself dies of the SIGINT and
  // reports no exit code. Its own process group, so Ctrl-C reaches every process, as in a terminal.
  const child = spawn(path.join(ROOT, 'node_modules/.bin/tsx'), ['scripts/start.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const started = { child, output: () => output, exited, dbPort };
  running.push(started);
  return started;
}

async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined, s: Started): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = probe();
    if (value !== undefined) return value;
    if (s.child.exitCode !== null) throw new Error(`npm start exited (${s.child.exitCode}) before ${what}:\n${s.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ${what} within ${timeoutMs} ms:\n${s.output()}`);
}

function signalGroup(s: Started, signal: NodeJS.Signals): void {
  try {
    process.kill(-s.child.pid!, signal);
  } catch {
    // the group is gone already
  }
}

afterEach(async () => {
  for (const s of running.splice(0)) {
    if (s.child.exitCode === null) signalGroup(s, 'SIGKILL');
  }
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('npm start', () => {
  test('runs scripts/start.ts', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts.start).toBe('tsx scripts/start.ts');
  });

  test('the printed curl answers 200 within 60 s of the start, and Ctrl-C exits 0 with Postgres stopped', async () => {
    const t0 = Date.now();
    const s = await npmStart();
    const curl = await until('printed curl', 60_000, () => /^curl -H "Authorization: Bearer ([^"]+)" (\S+)$/m.exec(s.output()) ?? undefined, s);
    const res = await fetch(curl[2], { headers: { Authorization: `Bearer ${curl[1]}` } });
    const body = await res.json();
    const elapsed = Date.now() - t0;
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(Array.isArray(body.data)).toBe(true);
    expect(elapsed).toBeLessThan(60_000);
    console.log(`[start] first 200 from the printed curl ${elapsed} ms after the start`);

    signalGroup(s, 'SIGINT');
    expect(await s.exited, s.output()).toBe(0);
    expect(await portInUse(s.dbPort)).toBe(false);
  }, 120_000);

  test('a function that cannot start: exit 1, naming the function, its first error and a likely fix', async () => {
    const s = await npmStart({ SUPAQUEUE_RATE_LIMIT_PER_MINUTE: 'lots' });
    const code = await Promise.race([s.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 90_000))]);
    expect(code, s.output()).toBe(1);
    expect(s.output()).toMatch(/edge function 'jobs' could not start: .*SUPAQUEUE_RATE_LIMIT_PER_MINUTE/);
    expect(s.output()).toMatch(/likely fix: fix the environment variable/);
    expect(await portInUse(s.dbPort)).toBe(false);
  }, 120_000);
});
