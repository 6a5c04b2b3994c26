/**
 * supabase/supaqueue.json: what `supaqueue install` put into the project, for the next install.
 * It records the installed package version, which migration file carries each of our migrations, and the
 * sha256 of every function file as we wrote it. An upgrade may then replace a function file only while
 * it still has exactly the content we wrote: a file the user edited is theirs and is never overwritten.
 * A migration recorded here counts as installed even if its file is gone (e.g. after
 * `supabase migration squash`), so it is never applied twice.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { CliError } from './errors.ts';

export const MANIFEST_REL = 'supaqueue.json';

export interface Manifest {
  package: 'supaqueue';
  version: string;
  migrations: Record<string, string>;
  files: Record<string, string>;
}

export function sha256(content: Buffer | string): string {
  return createHash('sha256').update(content).digest('hex');
}

/** The manifest at `file`, undefined when absent; an error when it exists but is not ours. */
export function readManifest(file: string): Manifest | undefined {
  if (!fs.existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')); // a folder or unreadable file is "not ours" too
  } catch {
    parsed = undefined;
  }
  const m = parsed as Partial<Manifest> | undefined;
  if (!m || m.package !== 'supaqueue' || typeof m.migrations !== 'object' || typeof m.files !== 'object') {
    throw new CliError(`${file} exists but is not a supaqueue manifest; move it away and run install again`);
  }
  return m as Manifest;
}

/** Stable text (sorted keys, trailing newline), so an unchanged install rewrites nothing. */
export function renderManifest(m: Manifest): string {
  const sorted = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
  return `${JSON.stringify({ package: m.package, version: m.version, migrations: sorted(m.migrations), files: sorted(m.files) }, null, 2)}\n`;
}
