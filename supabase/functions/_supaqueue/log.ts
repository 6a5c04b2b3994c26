/**
 * One-line JSON logs (Supabase's function logs index them). Callers pass ids and codes, never tokens,
 * payloads or connection strings: logs are readable by everyone with dashboard access.
 */
type Level = 'info' | 'warn' | 'error';

export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, msg, time: new Date().toISOString(), ...fields });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}

/** The parts of an unexpected error that help debugging without leaking data (no parameters, no detail). */
export function describeError(e: unknown): Record<string, unknown> {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const cause = e.cause === undefined ? {} : { cause: describeError(e.cause) };
    return {
      error: e.name, error_message: e.message.slice(0, 500), ...(code ? { error_code: String(code) } : {}),
      stack: e.stack?.split('\n').slice(0, 6).join('\n'), ...cause,
    };
  }
  return { error: String(e).slice(0, 200) };
}
