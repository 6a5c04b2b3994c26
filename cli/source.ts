/**
 * What this package ships into a user's project, read from the package's own folder: the SQL migrations
 * (`supabase/migrations/`) and the edge functions (`supabase/functions/`), as they must land in the project.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError } from './errors.ts';
import { logicalName, type SourceMigration } from './migrations.ts';


/** A file we install, by its path relative to the project's `supabase/` folder (always with `/`). */
export interface SourceFile {
  rel: string;
  content: Buffer;
}

export interface PackageSource {
  root: string;
  version: string;
  migrations: SourceMigration[];
  files: SourceFile[];
  /** Deployable function folders (`jobs`, `jobs-scheduler`), with whether they carry a deno.json. */
  functions: { name: string; denoJson: boolean }[];
}

/** The package's root: the nearest folder above this module holding supaqueue's package.json
 * (`dist/cli/` once built and installed, `cli/` when run from a checkout with tsx). */
export function packageRoot(from = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'supaqueue') return dir;
    if (path.dirname(dir) === dir) throw new Error(`supaqueue's package.json not found above ${from}`);
  }
}

export function packageVersion(root = packageRoot()): string {
  return JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version as string;
}

export function readPackageSource(root = packageRoot()): PackageSource {
  const migrationsDir = path.join(root, 'supabase/migrations');
  const functionsDir = path.join(root, 'supabase/functions');
  if (!fs.existsSync(migrationsDir) || !fs.existsSync(functionsDir)) {
    throw new CliError(`this supaqueue package is incomplete: ${root} has no supabase/migrations or supabase/functions`);
  }
  const migrations = fs.readdirSync(migrationsDir).filter((f) => f.endsWith('.sql')).sort().map((file) => {
    const content = fs.readFileSync(path.join(migrationsDir, file), 'utf8');
    return { file, content, name: logicalName(file, content) };
  });
  const files: SourceFile[] = [];
  const functions: PackageSource['functions'] = [];
  for (const entry of fs.readdirSync(functionsDir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.isDirectory()) continue;
    // Copied as they are. Our shared modules' folder is `_supaqueue`, not `_shared`, which most projects
    // already have (often with a `database.types.ts`): a name clash there would block the install.
    for (const rel of listFiles(path.join(functionsDir, entry.name))) {
      files.push({ rel: `functions/${entry.name}/${rel}`, content: fs.readFileSync(path.join(functionsDir, entry.name, rel)) });
    }
    // Supabase deploys folders whose name starts with a letter; `_`-folders are shared code.
    if (/^[A-Za-z]/.test(entry.name) && fs.existsSync(path.join(functionsDir, entry.name, 'index.ts'))) {
      functions.push({ name: entry.name, denoJson: fs.existsSync(path.join(functionsDir, entry.name, 'deno.json')) });
    }
  }
  return { root, version: packageVersion(root), migrations, files, functions };
}

/** Files under dir (relative, `/`-separated, sorted), leaving out tests and editor litter. */
function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (entry.name !== 'tests' && entry.name !== 'node_modules') out.push(...listFiles(dir, rel));
    } else if (entry.isFile() && !/(^|[._])test\.[cm]?[jt]sx?$/.test(entry.name) && entry.name !== '.DS_Store') {
      out.push(rel);
    }
  }
  return out.sort();
}
