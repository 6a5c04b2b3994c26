/**
 * The edge functions' configuration: read from the environment once, validated with zod, frozen.
 * A missing or malformed variable fails the function at boot with the variable's name, instead of
 * failing some later request in a confusing way (e.g. every token rejected, or a 500 per request).
 *
 * | variable                          | default                                          | meaning |
 * |-----------------------------------|--------------------------------------------------|---------|
 * | SUPABASE_URL                      | (required; set by Supabase)                      | project URL: issuer and JWKS are derived from it |
 * | SUPABASE_DB_URL                   | (required; set by Supabase)                      | Postgres URL (the transaction pooler works) |
 * | SUPAQUEUE_JWT_SECRET, JWT_SECRET, SUPABASE_JWT_SECRET | none (HS256 tokens then refused) | legacy HS256 project JWT secret (first one set wins; hosted secrets cannot start with SUPABASE_) |
 * | SUPAQUEUE_JWT_ISSUER              | `${SUPABASE_URL}/auth/v1`                        | pinned `iss` |
 * | SUPAQUEUE_JWKS_URL                | `${SUPABASE_URL}/auth/v1/.well-known/jwks.json`  | signing keys for ES256/RS256 tokens |
 * | SUPABASE_JWKS                     | none (set by Supabase on hosted projects)        | the same key set inline; saves a fetch per cold start |
 * | SUPAQUEUE_RATE_LIMIT_PER_MINUTE   | 60                                               | requests per user per minute, all instances; 0 = off |
 * | SUPAQUEUE_CORS_ORIGINS            | "" (no cross-origin browser access)              | comma-separated allowed origins; `*` for any |
 * | SUPAQUEUE_DB_POOL_MAX             | 3                                                | connections per isolate |
 * | SUPAQUEUE_DB_STATEMENT_TIMEOUT_MS | 5000                                             | per-request statement_timeout |
 * | SUPAQUEUE_DB_CONNECT_TIMEOUT_S    | 10                                               | connect timeout |
 * | SUPAQUEUE_MAX_BODY_BYTES          | 278528 (272 KiB: the 256 KiB payload + envelope)  | larger bodies get 413 unread |
 */
import { z } from 'zod';

const intFromEnv = (def: number, min: number, max: number) =>
  z.string().trim().regex(/^\d+$/, 'must be a whole number').optional()
    .transform((v) => (v === undefined || v === '' ? def : Number(v)))
    .pipe(z.number().int().min(min).max(max));

const optionalText = z.string().trim().optional().transform((v) => (v ? v : undefined));
const httpUrl = z.string().trim().url().refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL');

const EnvSchema = z.object({
  SUPABASE_URL: httpUrl.transform((u) => u.replace(/\/+$/, '')),
  SUPABASE_DB_URL: z.string().trim().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
  SUPAQUEUE_JWT_SECRET: optionalText,
  JWT_SECRET: optionalText,
  SUPABASE_JWT_SECRET: optionalText,
  SUPAQUEUE_JWT_ISSUER: optionalText,
  SUPAQUEUE_JWKS_URL: httpUrl.optional(),
  SUPABASE_JWKS: optionalText,
  SUPAQUEUE_RATE_LIMIT_PER_MINUTE: intFromEnv(60, 0, 1_000_000),
  SUPAQUEUE_CORS_ORIGINS: z.string().optional().default(''),
  SUPAQUEUE_DB_POOL_MAX: intFromEnv(3, 1, 50),
  SUPAQUEUE_DB_STATEMENT_TIMEOUT_MS: intFromEnv(5000, 100, 600_000),
  SUPAQUEUE_DB_CONNECT_TIMEOUT_S: intFromEnv(10, 1, 120),
  SUPAQUEUE_MAX_BODY_BYTES: intFromEnv(278_528, 1024, 10 * 1024 * 1024),
});

const JwksSchema = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

export interface Config {
  supabaseUrl: string;
  dbUrl: string;
  jwt: {
    /** HS256 secret; undefined means HS256 tokens are refused. */
    secret?: string;
    issuer: string;
    /** Pinned: GoTrue's access tokens for signed-in users. */
    audience: 'authenticated';
    jwksUrl: string;
    /** Inline JWKS (SUPABASE_JWKS), tried before fetching jwksUrl. */
    jwks?: { keys: Record<string, unknown>[] };
  };
  rateLimit: { perMinute: number };
  cors: { origins: readonly string[]; any: boolean };
  db: { poolMax: number; statementTimeoutMs: number; connectTimeoutS: number };
  maxBodyBytes: number;
}

/** Parses an environment into a Config; throws an Error naming every bad variable. Pure. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid function configuration: ${problems}`);
  }
  const e = parsed.data;
  const secret = e.SUPAQUEUE_JWT_SECRET ?? e.JWT_SECRET ?? e.SUPABASE_JWT_SECRET;
  if (secret !== undefined && secret.length < 32) {
    // A short HMAC secret is brute-forceable offline from any one token.
    throw new Error('invalid function configuration: the JWT secret must be at least 32 characters');
  }
  let jwks: Config['jwt']['jwks'];
  if (e.SUPABASE_JWKS) {
    try {
      jwks = JwksSchema.parse(JSON.parse(e.SUPABASE_JWKS));
    } catch {
      throw new Error('invalid function configuration: SUPABASE_JWKS is not a JSON Web Key Set');
    }
  }
  const origins = e.SUPAQUEUE_CORS_ORIGINS.split(',').map((o) => o.trim().replace(/\/+$/, '')).filter(Boolean);
  return Object.freeze({
    supabaseUrl: e.SUPABASE_URL,
    dbUrl: e.SUPABASE_DB_URL,
    jwt: Object.freeze({
      secret,
      issuer: e.SUPAQUEUE_JWT_ISSUER ?? `${e.SUPABASE_URL}/auth/v1`,
      audience: 'authenticated' as const,
      jwksUrl: e.SUPAQUEUE_JWKS_URL ?? `${e.SUPABASE_URL}/auth/v1/.well-known/jwks.json`,
      jwks,
    }),
    rateLimit: Object.freeze({ perMinute: e.SUPAQUEUE_RATE_LIMIT_PER_MINUTE }),
    cors: Object.freeze({ origins: Object.freeze(origins.filter((o) => o !== '*')), any: origins.includes('*') }),
    db: Object.freeze({
      poolMax: e.SUPAQUEUE_DB_POOL_MAX,
      statementTimeoutMs: e.SUPAQUEUE_DB_STATEMENT_TIMEOUT_MS,
      connectTimeoutS: e.SUPAQUEUE_DB_CONNECT_TIMEOUT_S,
    }),
    maxBodyBytes: e.SUPAQUEUE_MAX_BODY_BYTES,
  });
}

let cached: Config | undefined;

/** Deno.env through globalThis: Node-side tests import modules that reach this one, and tsc has no `Deno`. */
type DenoEnv = { Deno: { env: { toObject(): Record<string, string> } } };

/** The process's configuration, read from Deno.env on first use and never again. */
export function getConfig(): Config {
  cached ??= loadConfig((globalThis as unknown as DenoEnv).Deno.env.toObject());
  return cached;
}
