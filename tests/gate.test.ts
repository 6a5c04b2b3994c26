/**
 * The test gate itself: a failing test must fail the run. Runs vitest with the suite's own configuration
 * (its global setup starts embedded Postgres, whose exit hook once turned every failed run into exit 0)
 * on a deliberately failing fixture and on a passing control, each in a subprocess.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ROOT } from '../scripts/lib/stack.ts';

const VITEST = path.join(ROOT, 'node_modules/.bin/vitest');
const CONFIG = path.join(ROOT, 'tests/fixtures/gate/vitest.config.ts');

function runFixture(file: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(VITEST, ['run', '--config', CONFIG], {
      cwd: ROOT,
      env: { ...process.env, GATE_FIXTURE: `tests/fixtures/gate/${file}`, CI: 'true', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('the test gate', () => {
  test('a failing test makes the run exit non-zero', async () => {
    const run = await runFixture('failing.fixture.ts');
    expect(run.output).toMatch(/1 failed/);
    expect(run.code, run.output).not.toBe(0);
  }, 120_000);

  test('a passing run exits 0 (the control)', async () => {
    const run = await runFixture('passing.fixture.ts');
    expect(run.output).toMatch(/1 passed/);
    expect(run.code, run.output).toBe(0);
  }, 120_000);
});
