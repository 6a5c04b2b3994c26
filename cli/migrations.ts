/**
 * Our migrations in a user's project: each copy starts with a marker line naming it, so a later install
 * (or an upgrade) recognises what is already there whatever timestamp it was given:
 *
 *   -- supaqueue:migration supaqueue_schema 0.1.0
 *
 * Copies get fresh timestamps after the project's latest migration: `supabase db push` refuses to apply
 * a migration older than the last one the remote database has seen.
 */
import fs from 'node:fs';
import path from 'node:path';

export const MARKER_PREFIX = '-- supaqueue:migration ';
const MARKER_RE = /^-- supaqueue:migration ([A-Za-z0-9_]+)(?: (\S+))?[ \t]*\r?$/;
const VERSION_RE = /^(\d{14})_/;

export interface SourceMigration {
  /** The package's file name, e.g. `20261123000100_supaqueue_schema.sql`. */
  file: string;
  content: string;
  /** Stable identity across versions and timestamps, e.g. `supaqueue_schema`. */
  name: string;
}

/** The name from a marker on the first line, else from the file name without its timestamp. */
export function logicalName(file: string, content: string): string {
  const marked = MARKER_RE.exec(content.split('\n', 1)[0]);
  if (marked) return marked[1];
  return path.basename(file, '.sql').replace(/^\d+_/, '');
}

/** The installed file name's part after the timestamp: always `supaqueue_<...>.sql`. */
export function installedBase(name: string): string {
  return `${name.startsWith('supaqueue_') ? name : `supaqueue_${name}`}.sql`;
}

/** The copy's content: our marker (with the package version) in place of any marker the source had. */
export function installedContent(m: SourceMigration, version: string): string {
  const body = MARKER_RE.test(m.content.split('\n', 1)[0]) ? m.content.slice(m.content.indexOf('\n') + 1) : m.content;
  return `${MARKER_PREFIX}${m.name} ${version}\n${body}`;
}

export interface ProjectMigrations {
  /** Every `.sql` file name in supabase/migrations. */
  files: string[];
  /** Logical name -> file, for the files that are ours (by marker, or by name for hand-made copies). */
  ours: Map<string, string>;
  /** The highest 14-digit timestamp among all files, if any. */
  latest?: string;
}

export function scanProjectMigrations(dir: string): ProjectMigrations {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort() : [];
  const ours = new Map<string, string>();
  let latest: string | undefined;
  for (const file of files) {
    const version = VERSION_RE.exec(file)?.[1];
    if (version && (!latest || version > latest)) latest = version;
    const marked = MARKER_RE.exec(readFirstLine(path.join(dir, file)));
    if (marked) ours.set(marked[1], file);
    else if (/^\d+_supaqueue_/.test(file)) ours.set(path.basename(file, '.sql').replace(/^\d+_/, ''), file);
  }
  return { files, ours, latest };
}

/** True when the project already has this migration under any timestamp. */
export function isInstalled(project: ProjectMigrations, name: string): boolean {
  const base = installedBase(name);
  if (project.ours.has(name)) return true;
  return [...project.ours.values()].some((f) => f.replace(/^\d+_/, '') === base);
}

function readFirstLine(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(200);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n).toString('utf8').split('\n', 1)[0];
  } finally {
    fs.closeSync(fd);
  }
}

/** `count` consecutive timestamps (one second apart), the first after both `latest` and now (UTC). */
export function nextTimestamps(latest: string | undefined, count: number, now = new Date()): string[] {
  let t = Math.floor(now.getTime() / 1000) * 1000;
  const last = latest ? parseTimestamp(latest) : NaN;
  if (!Number.isNaN(last)) t = Math.max(t, last + 1000);
  return Array.from({ length: count }, (_, i) => formatTimestamp(new Date(t + i * 1000)));
}

function parseTimestamp(ts: string): number {
  const [y, mo, d, h, mi, s] = [0, 4, 6, 8, 10, 12].map((i, k) => Number(ts.slice(i, k === 0 ? 4 : i + 2)));
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

function formatTimestamp(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}
