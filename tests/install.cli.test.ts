/**
 * `supaqueue install` as a user runs it: the real tarball from `npm pack`, installed with npm into a
 * project made by the real `supabase init`, the installed bin run in fresh copies of that project.
 * Every refused install must leave the project's tree exactly as it was.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  chattrWorks, npmInstallTarball, packRepo, run, supabaseInit, treeDiff, treeHash, type RunResult,
} from './fixtures/install/project.ts';

let tmp: string;
let base: string;
let cli: string;
let pkg: string;
let version: string;
let ourMigrations: string[];
let canChattr = false;
let counter = 0;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'supaqueue-install-cli-'));
  const tarball = await packRepo(tmp);
  base = path.join(tmp, 'base');
  await supabaseInit(base);
  await npmInstallTarball(base, tarball);
  pkg = path.join(base, 'node_modules/supaqueue');
  cli = path.join(pkg, 'dist/cli/main.js');
  version = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version;
  ourMigrations = fs.readdirSync(path.join(pkg, 'supabase/migrations')).filter((f) => f.endsWith('.sql')).sort();
  canChattr = chattrWorks(tmp);
}, 150_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** A new project folder holding a pristine copy of what `supabase init` made. */
function newProject(): string {
  const dir = path.join(tmp, `project-${++counter}`);
  fs.cpSync(path.join(base, 'supabase'), path.join(dir, 'supabase'), { recursive: true });
  return dir;
}

function install(dir: string, ...args: string[]): Promise<RunResult> {
  return run(process.execPath, [cli, 'install', ...args], dir);
}

async function installOk(dir: string, ...args: string[]): Promise<RunResult> {
  const r = await install(dir, ...args);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

const read = (dir: string, rel: string) => fs.readFileSync(path.join(dir, rel), 'utf8');
const migrationsOf = (dir: string) => fs.readdirSync(path.join(dir, 'supabase/migrations')).sort();
const logical = (file: string) => file.replace(/^\d+_/, '');

describe('a fresh install', () => {
  test('copies our migrations in order, after the project\'s latest migration, each with a marker', async () => {
    const dir = newProject();
    fs.mkdirSync(path.join(dir, 'supabase/migrations'));
    fs.writeFileSync(path.join(dir, 'supabase/migrations/20300101000000_mine.sql'), 'create table mine (id int);\n');
    await installOk(dir);
    const files = migrationsOf(dir);
    expect(files[0]).toBe('20300101000000_mine.sql');
    const ours = files.slice(1);
    expect(ours.map(logical)).toEqual(ourMigrations.map(logical));
    for (const f of ours) {
      expect(f).toMatch(/^\d{14}_supaqueue_[a-z0-9_]+\.sql$/);
      expect(f > '20300101000000').toBe(true);
      const [, name, v] = /^-- supaqueue:migration (\S+) (\S+)$/.exec(read(dir, `supabase/migrations/${f}`).split('\n')[0]) ?? [];
      expect(v).toBe(version);
      expect(f).toContain(name);
    }
  });

  test('copies the edge functions as they are, our shared modules in _supaqueue', async () => {
    const dir = newProject();
    await installOk(dir);
    const fnDir = path.join(dir, 'supabase/functions');
    expect(fs.readdirSync(fnDir).sort()).toEqual(['_supaqueue', 'jobs', 'jobs-scheduler']);
    expect(fs.existsSync(path.join(fnDir, 'jobs/index.ts'))).toBe(true);
    for (const rel of ['_supaqueue/errors.ts', '_supaqueue/contract.ts', 'jobs/routes.ts', 'jobs/deno.json']) {
      expect(read(dir, `supabase/functions/${rel}`), rel).toBe(fs.readFileSync(path.join(pkg, 'supabase/functions', rel), 'utf8'));
    }
    const jobsCode = fs.readdirSync(path.join(fnDir, 'jobs')).filter((f) => f.endsWith('.ts')).map((f) => read(dir, `supabase/functions/jobs/${f}`)).join('\n');
    expect(jobsCode).toMatch(/from '\.\.\/_supaqueue\/[a-z-]+\.ts'/);
    expect(jobsCode).not.toMatch(/['"](?:\.\.\/)+_shared\//);
  });

  test('leaves the user\'s own _shared modules and migrations byte-for-byte', async () => {
    const dir = newProject();
    const mine = { 'supabase/functions/_shared/database.types.ts': 'export type Mine = 1;\n', 'supabase/migrations/20200101000000_mine.sql': '-- mine\nselect 1;\n' };
    for (const [rel, text] of Object.entries(mine)) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), text);
    }
    await installOk(dir);
    for (const [rel, text] of Object.entries(mine)) expect(read(dir, rel)).toBe(text);
    expect(fs.readdirSync(path.join(dir, 'supabase/functions/_shared'))).toEqual(['database.types.ts']);
  });

  test('appends [functions.*] blocks to config.toml and keeps the user\'s text before them unchanged', async () => {
    const dir = newProject();
    const original = `${read(dir, 'supabase/config.toml')}\n# my own function, keep this comment\n[functions.mine]\nverify_jwt = false # inline\n`;
    fs.writeFileSync(path.join(dir, 'supabase/config.toml'), original);
    await installOk(dir);
    const after = read(dir, 'supabase/config.toml');
    expect(after.startsWith(original)).toBe(true);
    const appended = after.slice(original.length);
    expect(appended).toMatch(/^\[functions\.jobs\]$/m);
    expect(appended).toMatch(/^\[functions\.jobs-scheduler\]$/m);
    expect(appended).toContain('entrypoint = "./functions/jobs/index.ts"');
  });

  test('does not add a second table for a function the user already configured', async () => {
    const dir = newProject();
    const original = `${read(dir, 'supabase/config.toml')}\n[functions."jobs"]\nverify_jwt = true\n`;
    fs.writeFileSync(path.join(dir, 'supabase/config.toml'), original);
    const r = await installOk(dir);
    const appended = read(dir, 'supabase/config.toml').slice(original.length);
    expect(read(dir, 'supabase/config.toml').startsWith(original)).toBe(true);
    expect(appended).not.toMatch(/\[functions\.jobs\]/);
    expect(appended).toMatch(/^\[functions\.jobs-scheduler\]$/m);
    expect(r.stdout).toContain('keep    supabase/config.toml [functions.jobs]');
  });

  test('--dir installs into the given project from another folder', async () => {
    const dir = newProject();
    await installOk(tmp, '--dir', dir);
    expect(fs.existsSync(path.join(dir, 'supabase/supaqueue.json'))).toBe(true);
    expect(fs.existsSync(path.join(tmp, 'supabase'))).toBe(false);
  });

  test('records the installed version in supabase/supaqueue.json', async () => {
    const dir = newProject();
    await installOk(dir);
    const manifest = JSON.parse(read(dir, 'supabase/supaqueue.json'));
    expect(manifest.version).toBe(version);
    expect(Object.values(manifest.migrations).sort()).toEqual(migrationsOf(dir));
  });

  test('--dry-run prints the plan and writes nothing', async () => {
    const dir = newProject();
    const before = treeHash(dir);
    const r = await installOk(dir, '--dry-run');
    expect(r.stdout).toContain('supabase/functions/jobs/index.ts');
    expect(r.stdout).toContain('Dry run: nothing was written.');
    expect(treeDiff(before, treeHash(dir))).toEqual([]);
  });
});

describe('running it again', () => {
  test('a second run says it is already installed and changes nothing', async () => {
    const dir = newProject();
    await installOk(dir);
    const before = treeHash(dir);
    const r = await installOk(dir);
    expect(r.stdout).toContain('already installed');
    expect(treeDiff(before, treeHash(dir))).toEqual([]);
  });

  test('over an older install (newest migration and version marker missing) adds only the missing migration', async () => {
    const dir = newProject();
    await installOk(dir);
    const newest = migrationsOf(dir).at(-1)!;
    fs.rmSync(path.join(dir, 'supabase/migrations', newest));
    fs.rmSync(path.join(dir, 'supabase/supaqueue.json'));
    const before = treeHash(dir);
    await installOk(dir);
    const changed = treeDiff(before, treeHash(dir));
    expect(changed).toHaveLength(2);
    expect(changed).toContain('supabase/supaqueue.json');
    const added = changed.find((p) => p !== 'supabase/supaqueue.json')!;
    expect(logical(path.basename(added))).toBe(logical(newest));
    expect(path.basename(added) > migrationsOf(dir).at(-2)!).toBe(true);
  });

  test('an upgrade replaces a function file that still has the content the older version wrote', async () => {
    const dir = newProject();
    await installOk(dir);
    const rel = 'functions/_supaqueue/errors.ts';
    const current = read(dir, `supabase/${rel}`);
    const old = '// errors.ts as an older supaqueue shipped it\n';
    fs.writeFileSync(path.join(dir, 'supabase', rel), old);
    const manifestPath = path.join(dir, 'supabase/supaqueue.json');
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
    manifest.version = '0.0.1';
    manifest.files[rel] = (await import('node:crypto')).createHash('sha256').update(old).digest('hex');
    fs.writeFileSync(manifestPath, JSON.stringify(manifest));
    const r = await installOk(dir);
    expect(r.stdout).toContain('upgrading from 0.0.1');
    expect(read(dir, `supabase/${rel}`)).toBe(current);
  });
});

describe('refusals leave the project unchanged', () => {
  async function expectRefused(dir: string, message: RegExp, hashRoot = dir): Promise<void> {
    const before = treeHash(hashRoot);
    const r = await install(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(treeDiff(before, treeHash(hashRoot))).toEqual([]);
  }

  test('no supabase/ folder', async () => {
    const dir = path.join(tmp, `empty-${++counter}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'package.json'), '{}\n');
    await expectRefused(dir, /no Supabase project in .*supabase\/config\.toml not found[\s\S]*supabase init/);
  });

  test('a user file where ours would go (their own functions/jobs/index.ts)', async () => {
    const dir = newProject();
    fs.mkdirSync(path.join(dir, 'supabase/functions/jobs'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'supabase/functions/jobs/index.ts'), 'Deno.serve(() => new Response("mine"));\n');
    await expectRefused(dir, /supabase\/functions\/jobs\/index\.ts already exists with different content[\s\S]*Nothing was changed/);
  });

  test('a function file we wrote but the user edited since is not overwritten on upgrade', async () => {
    const dir = newProject();
    await installOk(dir);
    fs.appendFileSync(path.join(dir, 'supabase/functions/_supaqueue/errors.ts'), '// my local patch\n');
    await expectRefused(dir, /supabase\/functions\/_supaqueue\/errors\.ts already exists with different content/);
  });

  test('supabase/migrations is a file, not a folder', async () => {
    const dir = newProject();
    fs.writeFileSync(path.join(dir, 'supabase/migrations'), 'not a folder\n');
    await expectRefused(dir, /supabase\/migrations exists but is not a folder/);
  });

  test('a read-only supabase/ folder (chattr +i, which stops root too)', async (ctx) => {
    if (!canChattr) ctx.skip(); // e.g. a filesystem without the immutable flag; the file-as-folder case still runs
    const dir = newProject();
    const supa = path.join(dir, 'supabase');
    expect(spawnSync('chattr', ['+i', supa]).status).toBe(0);
    try {
      await expectRefused(dir, /cannot write to:\s+supabase\/ \(EPERM\)[\s\S]*Nothing was changed/);
    } finally {
      spawnSync('chattr', ['-i', supa]);
    }
  });
});

describe('the command line', () => {
  test('--version prints the package version', async () => {
    const r = await run(process.execPath, [cli, '--version'], tmp);
    expect(r).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  test('install --help prints the usage and installs nothing', async () => {
    const dir = newProject();
    const before = treeHash(dir);
    const r = await run(process.execPath, [cli, 'install', '--help'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: supaqueue');
    expect(treeDiff(before, treeHash(dir))).toEqual([]);
  });

  test('an unknown option exits 2 with the usage', async () => {
    const r = await run(process.execPath, [cli, 'install', '--frobnicate'], tmp);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown option: --frobnicate');
    expect(r.stderr).toContain('Usage: supaqueue');
  });
});
