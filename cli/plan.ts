/**
 * The install plan: every file to create or update and the config.toml appendix, worked out from the
 * package and the project before anything is written, with every conflict found up front. Applying
 * happens only for a plan without conflicts (apply.ts), so a refused install leaves the project as it was.
 */
import fs from 'node:fs';
import path from 'node:path';
import { configAppendix } from './config-toml.ts';
import { CliError } from './errors.ts';
import { MANIFEST_REL, readManifest, renderManifest, sha256, type Manifest } from './manifest.ts';
import { installedBase, installedContent, isInstalled, nextTimestamps, scanProjectMigrations } from './migrations.ts';
import type { PackageSource } from './source.ts';

export interface Action {
  kind: 'create' | 'update' | 'append';
  /** Path relative to the project's `supabase/` folder, `/`-separated. */
  rel: string;
  content: Buffer | string;
}

export interface Plan {
  projectDir: string;
  supabaseDir: string;
  version: string;
  previousVersion?: string;
  actions: Action[];
  conflicts: string[];
  /** `[functions.<name>]` blocks to append to config.toml, and those already there (left as they are). */
  configAdded: string[];
  configKept: string[];
}

export function planInstall(source: PackageSource, projectDir: string): Plan {
  const supabaseDir = checkProject(projectDir);
  const previous = readManifest(path.join(supabaseDir, MANIFEST_REL));
  const plan: Plan = { projectDir, supabaseDir, version: source.version, previousVersion: previous?.version, actions: [], conflicts: [], configAdded: [], configKept: [] };
  const migrations = planMigrations(plan, source, previous);
  const files = planFiles(plan, source, previous);
  planConfig(plan, source);
  const manifest = renderManifest({ package: 'supaqueue', version: source.version, migrations, files });
  planWrite(plan, MANIFEST_REL, manifest);
  return plan;
}

/** The project's `supabase/` folder, or a clear error when this is not a Supabase project. */
function checkProject(projectDir: string): string {
  if (!isDir(projectDir)) throw new CliError(`${projectDir} is not a folder`);
  const supabaseDir = path.join(projectDir, 'supabase');
  if (!isDir(supabaseDir) || !fs.existsSync(path.join(supabaseDir, 'config.toml'))) {
    throw new CliError(`no Supabase project in ${projectDir}: supabase/config.toml not found.\n` +
      'Run `supabase init` there first, or pass --dir <your project folder>.');
  }
  for (const sub of ['migrations', 'functions']) {
    const p = path.join(supabaseDir, sub);
    if (fs.existsSync(p) && !isDir(p)) throw new CliError(`${p} exists but is not a folder; nothing was changed`);
  }
  return supabaseDir;
}

/** New migrations get timestamps after the project's latest; returns the manifest's migration record. */
function planMigrations(plan: Plan, source: PackageSource, previous?: Manifest): Record<string, string> {
  const project = scanProjectMigrations(path.join(plan.supabaseDir, 'migrations'));
  const record: Record<string, string> = { ...(previous?.migrations ?? {}) };
  const missing = source.migrations.filter((m) => !previous?.migrations[m.name] && !isInstalled(project, m.name));
  for (const [name, file] of project.ours) if (source.migrations.some((m) => m.name === name)) record[name] = file;
  const stamps = nextTimestamps(project.latest, missing.length);
  missing.forEach((m, i) => {
    const file = `${stamps[i]}_${installedBase(m.name)}`;
    record[m.name] = file;
    plan.actions.push({ kind: 'create', rel: `migrations/${file}`, content: installedContent(m, source.version) });
  });
  return record;
}

/** Function files: create the missing, skip the identical, update only what we wrote before and the
 * user did not touch since; anything else in the way is a conflict. Returns the manifest's file hashes. */
function planFiles(plan: Plan, source: PackageSource, previous?: Manifest): Record<string, string> {
  const hashes: Record<string, string> = {};
  for (const f of source.files) {
    hashes[f.rel] = sha256(f.content);
    const target = path.join(plan.supabaseDir, f.rel);
    const blocker = nonFolderAncestor(plan.supabaseDir, f.rel);
    if (blocker) {
      plan.conflicts.push(`${display(plan, blocker)} is a file where supaqueue needs a folder`);
    } else if (!fs.existsSync(target)) {
      plan.actions.push({ kind: 'create', rel: f.rel, content: f.content });
    } else if (!fs.statSync(target).isFile()) {
      plan.conflicts.push(`${display(plan, target)} exists and is not a file`);
    } else {
      const current = fs.readFileSync(target);
      if (current.equals(f.content)) continue;
      if (previous?.files[f.rel] === sha256(current)) plan.actions.push({ kind: 'update', rel: f.rel, content: f.content });
      else plan.conflicts.push(`${display(plan, target)} already exists with different content`);
    }
  }
  return hashes;
}

function planConfig(plan: Plan, source: PackageSource): void {
  const toml = fs.readFileSync(path.join(plan.supabaseDir, 'config.toml'), 'utf8');
  const { text, added } = configAppendix(toml, source.functions);
  plan.configAdded = added;
  plan.configKept = source.functions.map((fn) => fn.name).filter((n) => !added.includes(n));
  if (text) plan.actions.push({ kind: 'append', rel: 'config.toml', content: text });
}

function planWrite(plan: Plan, rel: string, content: string): void {
  const target = path.join(plan.supabaseDir, rel);
  if (!fs.existsSync(target)) plan.actions.push({ kind: 'create', rel, content });
  else if (fs.readFileSync(target, 'utf8') !== content) plan.actions.push({ kind: 'update', rel, content });
}

/** The first existing path between supabase/ and the file's folder that is not a folder, if any. */
function nonFolderAncestor(supabaseDir: string, rel: string): string | undefined {
  const parts = rel.split('/').slice(0, -1);
  for (let i = 1; i <= parts.length; i++) {
    const p = path.join(supabaseDir, ...parts.slice(0, i));
    if (!fs.existsSync(p)) return undefined;
    if (!isDir(p)) return p;
  }
  return undefined;
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** A path as the user sees it: relative to the project folder. */
export function display(plan: Pick<Plan, 'projectDir'>, p: string): string {
  return path.relative(plan.projectDir, p) || '.';
}
