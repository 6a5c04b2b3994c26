/**
 * Who may run the scheduler: the service role only. Accepted:
 *   - a bearer exactly equal to SUPABASE_SERVICE_ROLE_KEY (what pg_cron sends from Vault; may be an
 *     opaque sb_secret_ key), or, without an Authorization header, an `apikey` header equal to it
 *     (supabase-js sends new-format secret keys only there);
 *   - a bearer that is an HS256 JWT signed with the project's JWT secret whose `role` is `service_role`.
 * Anything else: 401 NOT_AUTHENTICATED when the token is missing, malformed or not ours; 403 FORBIDDEN
 * when it is a genuine token of a weaker role (the anon key, a signed-in user's access token).
 */
import { decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { Verifier } from '../_supaqueue/auth.ts';
import { ApiError } from '../_supaqueue/http.ts';

export type ServiceAuthorizer = (headers: { authorization: string | null; apikey: string | null }) => Promise<void>;

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 16 * 1024;

const unauthenticated = (message: string) => new ApiError('NOT_AUTHENTICATED', message);
const forbidden = () => new ApiError('FORBIDDEN', 'the scheduler runs only with the service role key');

/** Constant-time equality of two strings (compares SHA-256 digests, so lengths do not leak either). */
async function sameSecret(a: string, b: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [x, y] = await Promise.all([crypto.subtle.digest('SHA-256', enc.encode(a)), crypto.subtle.digest('SHA-256', enc.encode(b))]);
  const xa = new Uint8Array(x);
  const ya = new Uint8Array(y);
  let diff = 0;
  for (let i = 0; i < xa.length; i++) diff |= xa[i] ^ ya[i];
  return diff === 0;
}

/** The role of an HS256 token signed with our secret, or undefined when it is not one (or is expired). */
async function hs256Role(token: string, secret: Uint8Array | undefined): Promise<string | undefined> {
  if (!secret) return undefined;
  try {
    if (decodeProtectedHeader(token).alg !== 'HS256') return undefined;
    const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], requiredClaims: ['exp'], clockTolerance: 5 });
    return typeof payload.role === 'string' ? payload.role : '';
  } catch (e) {
    if (e instanceof errors.JOSEError || e instanceof TypeError) return undefined;
    throw e;
  }
}

/**
 * users: the jobs API's user-token verifier, so an asymmetrically signed user token is recognised as a
 * user (403) rather than as garbage (401).
 */
export function createServiceAuthorizer(opts: { serviceRoleKey?: string; jwtSecret?: string; users: Verifier }): ServiceAuthorizer {
  const secret = opts.jwtSecret ? new TextEncoder().encode(opts.jwtSecret) : undefined;
  return async ({ authorization, apikey }) => {
    if (authorization === null && apikey && opts.serviceRoleKey && apikey.length <= MAX_TOKEN_LENGTH
        && await sameSecret(apikey, opts.serviceRoleKey)) return;
    const token = /^Bearer +(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    if (!token) throw unauthenticated('missing bearer token');
    if (token.length > MAX_TOKEN_LENGTH) throw unauthenticated('malformed token');
    if (opts.serviceRoleKey && await sameSecret(token, opts.serviceRoleKey)) return;
    if (!COMPACT_JWS.test(token)) throw unauthenticated('invalid token');
    const role = await hs256Role(token, secret);
    if (role === 'service_role') return;
    if (role !== undefined) throw forbidden();
    // Not one of our HS256 tokens: maybe a user's token signed with the project's asymmetric key.
    let isUser = false;
    try {
      await opts.users(authorization);
      isUser = true;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e; // e.g. the JWKS endpoint is down: a 500, not a 401
    }
    throw isUser ? forbidden() : unauthenticated('invalid token');
  };
}
