/**
 * CORS for browser callers (supabase-js `functions.invoke`). Preflights are answered here, before auth
 * and without touching the database: a browser never sends the token on a preflight, and an
 * unauthenticated OPTIONS flood must not cost a connection. Only configured origins get
 * Access-Control-Allow-Origin (a disallowed origin gets a 204 with no CORS headers, which the browser
 * treats as a refusal); `*` is honoured only when configured explicitly. No credentials mode: tokens
 * travel in the Authorization header, not cookies.
 */
import type { MiddlewareHandler } from 'hono';
import type { Config } from './config.ts';
import type { AppEnv } from './http.ts';

/** What supabase-js sends (see @supabase/supabase-js/cors) plus our correlation headers. */
export const ALLOWED_HEADERS = [
  'authorization', 'x-client-info', 'apikey', 'content-type', 'x-retry-count', 'x-region',
  'traceparent', 'tracestate', 'baggage', 'x-trace-id', 'x-request-id',
].join(', ');
// Every method a route answers (the schedules API uses PATCH and DELETE): a browser refuses the rest.
export const ALLOWED_METHODS = 'GET, POST, PATCH, DELETE, OPTIONS';
// Browsers hide non-safelisted response headers from scripts unless exposed.
const EXPOSED_HEADERS = 'x-trace-id, retry-after';
const PREFLIGHT_MAX_AGE_S = '600';

/** The Access-Control-Allow-Origin value for this request's Origin, or null when not allowed. */
export function allowedOrigin(origin: string | null, cfg: Config['cors']): string | null {
  if (!origin) return null;
  if (cfg.any) return '*';
  return cfg.origins.includes(origin) ? origin : null;
}

export function cors(cfg: Config['cors']): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const allow = allowedOrigin(c.req.header('origin') ?? null, cfg);
    if (c.req.method === 'OPTIONS') {
      const headers = new Headers({ 'x-trace-id': c.get('traceId'), Vary: 'Origin' });
      if (allow) {
        headers.set('Access-Control-Allow-Origin', allow);
        headers.set('Access-Control-Allow-Methods', ALLOWED_METHODS);
        headers.set('Access-Control-Allow-Headers', ALLOWED_HEADERS);
        headers.set('Access-Control-Max-Age', PREFLIGHT_MAX_AGE_S);
      }
      return new Response(null, { status: 204, headers });
    }
    await next();
    c.res.headers.append('Vary', 'Origin');
    if (allow) {
      c.res.headers.set('Access-Control-Allow-Origin', allow);
      c.res.headers.set('Access-Control-Expose-Headers', EXPOSED_HEADERS);
    }
  };
}
