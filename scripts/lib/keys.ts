/**
 * Local JWT material, as `supabase start` prints it: one HS256 project secret, the anon and service-role
 * API keys signed with it, and user access tokens carrying the claims GoTrue issues.
 * Local only: a hosted project has its own secret/signing keys and these are never used there.
 */
import { SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';

/** The same well-known development secret `supabase start` uses (at least 32 characters). */
export const LOCAL_JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
export const LOCAL_API_PORT = 54321;
export const LOCAL_API_URL = `http://127.0.0.1:${LOCAL_API_PORT}`;

const enc = (secret: string) => new TextEncoder().encode(secret);

/** Signs arbitrary claims with HS256 (tests use it for forged and expired tokens too). */
export async function signJwt(claims: Record<string, unknown>, secret = LOCAL_JWT_SECRET, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...header }).sign(enc(secret));
}

/** The anon / service_role API keys: long-lived JWTs with only `role` (and `iss`), like Supabase's legacy keys. */
export async function apiKey(role: 'anon' | 'service_role', secret = LOCAL_JWT_SECRET): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return signJwt({ iss: 'supabase-demo', role, iat, exp: iat + 10 * 365 * 24 * 3600 }, secret);
}

export interface UserTokenOptions {
  email?: string;
  expiresIn?: number;
  appMetadata?: Record<string, unknown>;
  userMetadata?: Record<string, unknown>;
  extra?: Record<string, unknown>;
  secret?: string;
  issuer?: string;
}

/** A user access token with GoTrue's claims (aud authenticated, role authenticated, sub, session_id, ...). */
export async function userToken(userId: string, opts: UserTokenOptions = {}): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return signJwt({
    iss: opts.issuer ?? `${LOCAL_API_URL}/auth/v1`,
    sub: userId,
    aud: 'authenticated',
    exp: iat + (opts.expiresIn ?? 3600),
    iat,
    email: opts.email ?? `${userId.slice(0, 8)}@example.test`,
    phone: '',
    app_metadata: { provider: 'email', providers: ['email'], ...(opts.appMetadata ?? {}) },
    user_metadata: opts.userMetadata ?? {},
    role: 'authenticated',
    aal: 'aal1',
    amr: [{ method: 'password', timestamp: iat }],
    session_id: randomUUID(),
    is_anonymous: false,
    ...(opts.extra ?? {}),
  }, opts.secret ?? LOCAL_JWT_SECRET);
}
