/**
 * Verifies Supabase Auth access tokens in the function itself, so the function is safe even when the
 * gateway's verify_jwt is off (it must be: browsers' CORS preflights carry no token).
 *
 * Accepted: HS256 signed with the project's JWT secret (legacy), or ES256/RS256 signed by a key in the
 * project's JWKS (asymmetric signing keys). Everything pinned: algorithms (never `none`, and the key
 * type must match the algorithm, so an RS256 public key can never be used as an HMAC secret), issuer,
 * audience `authenticated`, `exp` required, `nbf` honoured, `role` = authenticated, `sub` a UUID
 * (refused otherwise; the user id is the lower-cased sub).
 * That rejects the anon and service_role API keys used as a bearer (no sub, no audience) and tokens of
 * other projects. Roles are never read from user_metadata (users can edit it); membership and super
 * admin status are read by the database from its own tables.
 */
import type { MiddlewareHandler } from 'hono';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import type { Config } from './config.ts';
import { ApiError, type AppEnv, type AuthUser } from './http.ts';

export type { AuthUser };

/** A verifier: resolves to the user, or rejects with ApiError 401 NOT_AUTHENTICATED. */
export type Verifier = (authorization: string | null) => Promise<AuthUser>;

const ASYMMETRIC = ['ES256', 'RS256'] as const;
const CLOCK_TOLERANCE_S = 5;
const MAX_TOKEN_LENGTH = 16 * 1024;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const UserClaims = z.object({
  sub: z.guid(),
  role: z.literal('authenticated'),
});

const unauthenticated = (message: string) => new ApiError('NOT_AUTHENTICATED', message);

/** The key resolver: the inline JWKS first (no network), then the remote one (cached by jose). */
function asymmetricKeys(cfg: Config['jwt']): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(new URL(cfg.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
  if (!cfg.jwks) return remote;
  const local = createLocalJWKSet(cfg.jwks as Parameters<typeof createLocalJWKSet>[0]);
  return async (header, token) => {
    try {
      return await local(header, token);
    } catch (e) {
      // A key rotated in after this isolate booted is only in the remote set.
      if (e instanceof errors.JWKSNoMatchingKey) return remote(header, token);
      throw e;
    }
  };
}

export function createVerifier(cfg: Config['jwt']): Verifier {
  const secret = cfg.secret ? new TextEncoder().encode(cfg.secret) : undefined;
  const jwks = asymmetricKeys(cfg);
  const algorithms: string[] = [...ASYMMETRIC, ...(secret ? ['HS256'] : [])];
  const getKey: JWTVerifyGetKey = (header, token) => (header.alg === 'HS256' && secret ? secret : jwks(header, token));

  return async (authorization) => {
    const token = /^Bearer +(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    if (!token) throw unauthenticated('missing bearer token');
    if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) throw unauthenticated('malformed token');
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw unauthenticated('malformed token');
    }
    if (!alg || !algorithms.includes(alg)) throw unauthenticated('unsupported token algorithm');

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        algorithms,
        issuer: cfg.issuer,
        audience: cfg.audience,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_S,
      }));
    } catch (e) {
      if (e instanceof errors.JWTExpired) throw unauthenticated('token expired');
      // The JWKS endpoint down or slow is our outage, not the caller's bad token: 503, logged, so it
      // is noticed instead of looking like a wave of bad logins. A JWKS serving garbage is a
      // misconfiguration: rethrown as is (500, logged).
      if (e instanceof errors.JWKSInvalid) throw e;
      if (e instanceof errors.JWKSTimeout || !(e instanceof errors.JOSEError)) {
        throw new ApiError('UNAVAILABLE', 'cannot verify tokens right now; retry shortly', { 'Retry-After': '5' }, e);
      }
      throw unauthenticated('invalid token');
    }
    const claims = UserClaims.safeParse(payload);
    if (!claims.success) throw unauthenticated('not a signed-in user token');
    // One spelling per user: the rate limit is keyed on the id, so case variants of one uuid must not
    // each get a budget of their own (Postgres reads them as the same uuid).
    return { id: claims.data.sub.toLowerCase(), claims: payload };
  };
}

/** Middleware: verifies the Authorization header and sets c.var.user, or answers 401. */
export function requireUser(verify: Verifier): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set('user', await verify(c.req.header('authorization') ?? null));
    await next();
  };
}
