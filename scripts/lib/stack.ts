/**
 * Bringing a database to the state the project expects: on the embedded Postgres, the Supabase platform
 * bootstrap first; then migrations and seed applied by the real Supabase CLI (`supabase db reset`).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BOOTSTRAP_SQL = path.join(ROOT, 'scripts/lib/bootstrap.sql');

/** Runs the pinned Supabase CLI from node_modules; resolves with its output, rejects on a non-zero exit. */
export function runSupabase(args: string[], opts: { cwd?: string; quiet?: boolean } = {}): Promise<string> {
  const bin = path.join(ROOT, 'node_modules/.bin/supabase');
  return new Promise((resolve, reject) => {
    const env = {
      ...process.env,
      // The CLI asks for confirmation on a terminal; --yes is passed too where it applies.
      SUPABASE_YES: '1',
      // The CLI takes a --remote URL on 127.0.0.1 and its configured db port (config.toml: 54322) for its
      // own Docker stack and tries to restart that container ("Cannot connect to the Docker daemon").
      // `npm start` puts the embedded Postgres on that very port, so tell the CLI its Docker database
      // would be elsewhere; every call here passes an explicit --remote URL, never --local.
      SUPABASE_DB_PORT: process.env.SUPABASE_DB_PORT ?? '54399',
    };
    const child = spawn(bin, args, { cwd: opts.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`supabase ${args.join(' ')} exited with ${code}:\n${out}`));
    });
  });
}

/** Creates the roles, auth schema and default privileges a vanilla Postgres lacks (idempotent). */
export async function bootstrapSupabasePlatform(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(fs.readFileSync(BOOTSTRAP_SQL, 'utf8'));
  } finally {
    await sql.end();
  }
}

/** `supabase db reset` against a URL: drops our objects, re-applies every migration, then the seed. */
export async function resetDatabase(url: string, opts: { seed?: boolean; workdir?: string } = {}): Promise<void> {
  const args = ['db', 'reset', `--remote=${url}`, '--yes'];
  if (opts.seed === false) args.push('--no-seed');
  if (opts.workdir) args.push('--workdir', opts.workdir);
  await runSupabase(args);
}

/** `supabase db advisors` (Supabase's security and performance linter); rejects on any warning. */
export async function runAdvisors(url: string): Promise<string> {
  return runSupabase(['db', 'advisors', `--remote=${url}`, '--fail-on', 'warn']);
}

/** True for URLs on this machine: tests and the stack only ever reset those without being told to. */
export function isLocalUrl(url: string): boolean {
  const host = new URL(url).hostname;
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host === '[::1]';
}

/** The URL with another database name (same server and credentials). */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
