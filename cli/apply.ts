/**
 * Writing a plan: first a check that every folder and file it touches is writable (by really creating a
 * probe file: as root, permission bits say nothing, while an immutable or read-only folder still refuses),
 * then the writes in order, undoing every one of them if any write fails.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CliError, errnoCode } from './errors.ts';
import { display, type Plan } from './plan.ts';

/** Throws a CliError naming every place the plan cannot write to. */
export function checkWritable(plan: Plan): void {
  const dirs = new Set<string>();
  const files = new Set<string>();
  for (const a of plan.actions) {
    const target = path.join(plan.supabaseDir, a.rel);
    if (a.kind === 'create') dirs.add(nearestExisting(path.dirname(target)));
    else files.add(target);
  }
  const problems: string[] = [];
  for (const dir of dirs) {
    const probe = path.join(dir, `.supaqueue-write-check-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      fs.writeFileSync(probe, '', { flag: 'wx' });
      fs.rmSync(probe);
    } catch (e) {
      problems.push(`${display(plan, dir)}/ (${errnoCode(e) ?? String(e)})`);
    }
  }
  for (const file of files) {
    try {
      fs.closeSync(fs.openSync(file, 'r+'));
    } catch (e) {
      problems.push(`${display(plan, file)} (${errnoCode(e) ?? String(e)})`);
    }
  }
  if (problems.length > 0) {
    throw new CliError(`cannot write to:\n${problems.map((p) => `  ${p}`).join('\n')}\nNothing was changed.`);
  }
}

/** Applies every action; on any failure, undoes what was done (newest first) and throws a CliError. */
export function applyPlan(plan: Plan): void {
  const undo: (() => void)[] = [];
  let current = '';
  try {
    for (const a of plan.actions) {
      const target = path.join(plan.supabaseDir, a.rel);
      current = display(plan, target);
      if (a.kind === 'create') {
        makeDirs(path.dirname(target), undo);
        fs.writeFileSync(target, a.content, { flag: 'wx' });
        undo.push(() => fs.rmSync(target, { force: true }));
      } else if (a.kind === 'update') {
        const before = fs.readFileSync(target);
        undo.push(() => fs.writeFileSync(target, before));
        fs.writeFileSync(target, a.content);
      } else {
        const size = fs.statSync(target).size;
        undo.push(() => fs.truncateSync(target, size));
        fs.appendFileSync(target, a.content);
      }
    }
  } catch (e) {
    for (const step of undo.reverse()) {
      try {
        step();
      } catch {
        // Best effort: keep undoing the rest; the error below names the file that failed.
      }
    }
    throw new CliError(`could not write ${current}: ${(e as Error).message}\nThe changes made so far were undone.`);
  }
}

/** Creates the missing folders of dir, top-down, recording an undo for each. */
function makeDirs(dir: string, undo: (() => void)[]): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    fs.mkdirSync(d);
    undo.push(() => fs.rmdirSync(d));
  }
}

function nearestExisting(dir: string): string {
  let d = dir;
  while (!fs.existsSync(d)) d = path.dirname(d);
  return d;
}
