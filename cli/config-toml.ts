/**
 * `[functions.<name>]` blocks for supabase/config.toml, added the way `supabase functions new` adds them:
 * appended at the end of the file as text. The user's file is never parsed and rewritten, so their
 * comments, order and formatting stay byte-for-byte; a block that already exists is left alone.
 */

/** Per-function settings. `verify_jwt` must match how each function authenticates its callers. */
export const FUNCTION_SETTINGS: Record<string, { verifyJwt: boolean; why: string }> = {
  jobs: {
    verifyJwt: false,
    why: 'the jobs API checks callers\' JWTs itself (the gateway check would refuse CORS preflights)',
  },
  'jobs-scheduler': {
    verifyJwt: false,
    why: 'pg_cron calls it with the service key, which it checks itself (the gateway refuses sb_secret_ keys)',
  },
};

const DEFAULT_SETTINGS = { verifyJwt: true, why: 'a supaqueue edge function' };

/** True when config.toml already has a `[functions.<name>]` table (bare or quoted key). */
export function hasFunctionBlock(toml: string, name: string): boolean {
  const key = name.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  return new RegExp(`^[ \\t]*\\[[ \\t]*functions[ \\t]*\\.[ \\t]*(?:${key}|"${key}"|'${key}')[ \\t]*\\][ \\t]*(?:#.*)?\\r?$`, 'm').test(toml);
}

/** The text to append for one function (a key with `-` is valid bare TOML, as the CLI writes it). */
export function functionBlock(fn: { name: string; denoJson: boolean }, eol: string): string {
  const s = FUNCTION_SETTINGS[fn.name] ?? DEFAULT_SETTINGS;
  const lines = [
    `# Added by \`supaqueue install\`: ${s.why}.`,
    `[functions.${fn.name}]`,
    'enabled = true',
    `verify_jwt = ${s.verifyJwt}`,
    ...(fn.denoJson ? [`import_map = "./functions/${fn.name}/deno.json"`] : []),
    `entrypoint = "./functions/${fn.name}/index.ts"`,
  ];
  return lines.join(eol) + eol;
}

/** What to append to `toml` for the functions it lacks ('' when none): a blank line first, and a newline
 * first if the user's file does not end with one. Keeps the file's line endings. */
export function configAppendix(toml: string, functions: { name: string; denoJson: boolean }[]): { text: string; added: string[] } {
  const missing = functions.filter((fn) => !hasFunctionBlock(toml, fn.name));
  if (missing.length === 0) return { text: '', added: [] };
  const eol = toml.includes('\r\n') ? '\r\n' : '\n';
  const lead = toml.length === 0 || toml.endsWith('\n') ? eol : eol + eol;
  return { text: lead + missing.map((fn) => functionBlock(fn, eol)).join(eol), added: missing.map((fn) => fn.name) };
}
