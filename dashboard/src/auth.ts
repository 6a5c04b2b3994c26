/**
 * Who is signed in, and their access token.
 *
 *   Hosted project (config has supabaseUrl + anonKey): Supabase Auth through @supabase/auth-js (loaded
 *   only then), email and password; the session is kept and refreshed by auth-js.
 *   Local stack (no GoTrue): `npm start` prints a URL whose fragment carries the demo user's access
 *   token (#access_token=...). The fragment never reaches a server; it is moved to sessionStorage and
 *   removed from the address bar at once. A token can also be pasted on the sign-in page.
 * A service key is refused: the dashboard acts only as a signed-in user.
 */
import type { Config } from './api.ts';

const STORAGE_KEY = 'supaqueue.dashboard.token';

export interface Auth {
  mode: 'supabase' | 'token';
  /** The current access token, refreshed when needed; null when signed out. */
  token(): Promise<string | null>;
  signInWithPassword?(email: string, password: string): Promise<void>;
  signInWithToken?(token: string): void;
  signOut(): Promise<void>;
  onChange(cb: () => void): void;
}

/** The claims of a JWT, without verifying it (the API verifies; this only reads role and expiry). */
export function readClaims(jwt: string): Record<string, any> | null {
  try {
    const part = jwt.split('.')[1].replaceAll('-', '+').replaceAll('_', '/');
    return JSON.parse(decodeURIComponent(escape(atob(part))));
  } catch {
    return null;
  }
}

/** A user's access token, or an error message (service and anon keys are never accepted). */
export function checkUserToken(jwt: string): string | null {
  const claims = readClaims(jwt);
  if (!claims) return 'this is not an access token';
  if (claims.role !== 'authenticated' || !claims.sub) return 'only a signed-in user\'s access token is accepted (not an API key)';
  if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) return 'this token has expired';
  return null;
}

function tokenAuth(): Auth {
  const listeners: (() => void)[] = [];
  const fromFragment = new URLSearchParams(location.hash.replace(/^#/, '')).get('access_token');
  if (fromFragment) {
    if (!checkUserToken(fromFragment)) sessionStorage.setItem(STORAGE_KEY, fromFragment);
    history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  }
  return {
    mode: 'token',
    async token() {
      const t = sessionStorage.getItem(STORAGE_KEY);
      if (t && checkUserToken(t)) {
        sessionStorage.removeItem(STORAGE_KEY);
        return null;
      }
      return t;
    },
    signInWithToken(t: string) {
      const problem = checkUserToken(t);
      if (problem) throw new Error(problem);
      sessionStorage.setItem(STORAGE_KEY, t);
      listeners.forEach((cb) => cb());
    },
    async signOut() {
      sessionStorage.removeItem(STORAGE_KEY);
      listeners.forEach((cb) => cb());
    },
    onChange(cb) { listeners.push(cb); },
  };
}

async function supabaseAuth(cfg: Config): Promise<Auth> {
  const { AuthClient } = await import('@supabase/auth-js');
  const client = new AuthClient({
    url: `${cfg.supabaseUrl!.replace(/\/$/, '')}/auth/v1`,
    headers: { apikey: cfg.anonKey!, Authorization: `Bearer ${cfg.anonKey}` },
    storageKey: 'supaqueue.dashboard.auth',
    autoRefreshToken: true,
    persistSession: true,
    // Password sign-in only; the hash holds the page's routes, not OAuth results.
    detectSessionInUrl: false,
  });
  return {
    mode: 'supabase',
    async token() {
      const { data } = await client.getSession();
      return data.session?.access_token ?? null;
    },
    async signInWithPassword(email, password) {
      const { error } = await client.signInWithPassword({ email, password });
      if (error) throw new Error(error.message);
    },
    async signOut() { await client.signOut(); },
    onChange(cb) { client.onAuthStateChange(() => cb()); },
  };
}

export function createAuth(cfg: Config): Promise<Auth> {
  return cfg.supabaseUrl && cfg.anonKey ? supabaseAuth(cfg) : Promise.resolve(tokenAuth());
}
