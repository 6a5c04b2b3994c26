/**
 * The supaqueue dashboard: a static single-page app that talks only to the `jobs` edge function (and
 * Supabase Auth on a hosted project) with the signed-in user's access token. What a user sees is what
 * row-level security lets them see: a member their tenants' jobs, a super admin every tenant's.
 *
 * Routes (hash): #/ overview · #/jobs?<filters> · #/jobs/<id> · #/schedules
 * Configuration: ./config.json (functionsUrl, supabaseUrl, anonKey), written by the serving command or
 * edited after deploying the built files to a static host.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, configureApi, type Config, type Viewer } from './api.ts';
import { createAuth, type Auth } from './auth.ts';
import { JobPage } from './job.ts';
import { Jobs, type JobsFilter } from './jobs.ts';
import { Overview } from './overview.ts';
import { Schedules } from './schedules.ts';
import { ErrorBox, html } from './ui.ts';

const TENANT_KEY = 'supaqueue.dashboard.tenant';

function useRoute(): { path: string; query: URLSearchParams } {
  const read = () => {
    const [path, q] = (location.hash.replace(/^#/, '') || '/').split('?');
    return { path, query: new URLSearchParams(q ?? '') };
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

function SignIn({ auth, reason }: { auth: Auth; reason: unknown }) {
  const [error, setError] = useState<unknown>(reason);
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    try {
      if (auth.mode === 'supabase') await auth.signInWithPassword!(String(f.get('email')), String(f.get('password')));
      else auth.signInWithToken!(String(f.get('token')).trim());
    } catch (err) { setError(new ApiError(401, 'NOT_AUTHENTICATED', (err as Error).message)); }
  };
  return html`<div class="signin"><form class="card signin-card" onSubmit=${submit}>
    <div class="brand big"><span class="logo"></span>supaqueue</div>
    <p class="muted">Sign in to see your tenants' jobs.</p>
    ${auth.mode === 'supabase' ? html`
      <label>Email<input name="email" type="email" autocomplete="username" required /></label>
      <label>Password<input name="password" type="password" autocomplete="current-password" required /></label>
      <button class="btn primary" type="submit">Sign in</button>` : html`
      <p class="small">Local stack: open the dashboard URL that <code>npm start</code> printed (it signs the demo user in), or paste a user access token.</p>
      <label>Access token<textarea name="token" rows="4" required></textarea></label>
      <button class="btn primary" type="submit">Sign in</button>`}
    <${ErrorBox} error=${error} />
  </form></div>`;
}

function Shell({ auth, viewer }: { auth: Auth; viewer: Viewer }) {
  const { path, query } = useRoute();
  const [tenantId, setTenantId] = useState<string | null>(() => {
    const saved = localStorage.getItem(TENANT_KEY);
    if (saved && viewer.tenants.some((t) => t.id === saved)) return saved;
    return viewer.tenants.length === 1 ? viewer.tenants[0].id : null;
  });
  const choose = (id: string) => { setTenantId(id || null); localStorage.setItem(TENANT_KEY, id); };
  const isAdmin = (id: string) => viewer.super_admin || viewer.tenants.some((t) => t.id === id && t.role === 'admin');
  const tenantName = tenantId ? viewer.tenants.find((t) => t.id === tenantId)?.name ?? 'Tenant' : 'All tenants';

  let view;
  if (path.startsWith('/jobs/')) view = html`<${JobPage} id=${path.slice(6)} viewer=${viewer} />`;
  else if (path === '/jobs') {
    const filter = Object.fromEntries(query) as JobsFilter;
    if (!filter.tenant_id && tenantId) filter.tenant_id = tenantId;
    const canAdmin = filter.tenant_id ? isAdmin(filter.tenant_id) : viewer.super_admin;
    view = html`<${Jobs} key=${JSON.stringify(filter)} filter=${filter} viewer=${viewer} canAdmin=${canAdmin} />`;
  } else if (path === '/schedules') view = html`<${Schedules} tenantId=${tenantId} viewer=${viewer} isAdmin=${isAdmin} />`;
  else view = html`<${Overview} key=${tenantId ?? 'all'} tenantId=${tenantId} tenantName=${tenantName} />`;

  const nav = (href: string, label: string, active: boolean) => html`<a href=${`#${href}`} class=${active ? 'on' : ''}>${label}</a>`;
  return html`<div class="shell">
    <header class="top">
      <div class="brand"><span class="logo"></span>supaqueue</div>
      <nav>
        ${nav('/', 'Overview', path === '/' || path === '')}
        ${nav('/jobs', 'Jobs', path.startsWith('/jobs'))}
        ${nav('/schedules', 'Schedules', path === '/schedules')}
      </nav>
      <div class="spacer"></div>
      ${viewer.tenants.length > 1 || viewer.super_admin ? html`<select class="tenant-pick" aria-label="tenant" data-tenant-picker value=${tenantId ?? ''} onChange=${(e: any) => choose(e.target.value)}>
        <option value="">All tenants</option>
        ${viewer.tenants.map((t) => html`<option value=${t.id}>${t.name}</option>`)}
      </select>` : html`<span class="tenant-one">${tenantName}</span>`}
      <div class="who" title=${viewer.user_id}>
        <span>${viewer.email ?? viewer.user_id.slice(0, 8)}</span>
        <span class="role">${viewer.super_admin ? 'super admin' : tenantId ? (isAdmin(tenantId) ? 'admin' : 'member') : 'member'}</span>
      </div>
      <button class="btn ghost small" onClick=${() => auth.signOut()}>Sign out</button>
    </header>
    <main>${view}</main>
  </div>`;
}

function App({ auth }: { auth: Auth }) {
  const [state, setState] = useState<{ viewer?: Viewer; error?: unknown; loading: boolean }>({ loading: true });
  const load = async () => {
    if (!(await auth.token())) { setState({ loading: false }); return; }
    try {
      setState({ loading: false, viewer: (await api<Viewer>('/stats/viewer')).data });
    } catch (e) { setState({ loading: false, error: e }); }
  };
  useEffect(() => { auth.onChange(() => void load()); void load(); }, []);
  if (state.loading) return html`<p class="boot">Loading…</p>`;
  if (!state.viewer) return html`<${SignIn} auth=${auth} reason=${state.error} />`;
  return html`<${Shell} auth=${auth} viewer=${state.viewer} />`;
}

async function boot(): Promise<void> {
  const root = document.getElementById('app')!;
  try {
    const cfg = (await (await fetch('./config.json', { cache: 'no-store' })).json()) as Config;
    const auth = await createAuth(cfg);
    configureApi(cfg, () => auth.token(), () => { void auth.signOut(); });
    render(html`<${App} auth=${auth} />`, root);
  } catch (e) {
    root.textContent = `The dashboard could not start: ${(e as Error).message}`;
  }
}

void boot();
