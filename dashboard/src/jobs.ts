/**
 * Jobs: filters (status, type, tenant, time range, a payload key/value, id or idempotency key), cursor
 * pages, and bulk retry/cancel of the jobs matching the filter for tenant admins (counted first by a
 * dry run, then confirmed). The filters live in the URL (#/jobs?status=failed&…), so links and Back work.
 */
import { useState } from 'preact/hooks';
import { api, type Job, type Viewer } from './api.ts';
import { notify, useLive } from './live.ts';
import { ErrorBox, fmtNumber, go, html, shortId, StatusBadge, STATUSES, Time } from './ui.ts';

export const RANGES: Record<string, number> = { '15m': 15 * 60, '1h': 3600, '24h': 86400, '7d': 7 * 86400 };

export interface JobsFilter {
  status?: string; type?: string; tenant_id?: string; range?: string; pk?: string; pv?: string; search?: string;
}

/** A key (dots for nesting: customer.id) and a value (JSON when it parses: 42, true, "x"; else text). */
export function payloadFilter(key?: string, value?: string): Record<string, unknown> | undefined {
  if (!key) return undefined;
  let v: unknown = value ?? '';
  try { v = JSON.parse(value ?? ''); } catch { /* plain text */ }
  return key.split('.').reverse().reduce<unknown>((acc, k) => ({ [k]: acc }), v) as Record<string, unknown>;
}

/** The API's filter for the URL's filter. */
export function apiFilter(f: JobsFilter): Record<string, string | undefined> {
  const payload = payloadFilter(f.pk, f.pv);
  return {
    status: f.status, type: f.type, tenant_id: f.tenant_id, search: f.search,
    created_after: f.range && RANGES[f.range] ? new Date(Date.now() - RANGES[f.range] * 1000).toISOString() : undefined,
    payload: payload ? JSON.stringify(payload) : undefined,
  };
}

/** Text inputs are uncontrolled (defaultValue): a poll's re-render must not wipe what the user is typing. */
function FilterBar({ filter, viewer }: { filter: JobsFilter; viewer: Viewer }) {
  const set = (patch: Partial<JobsFilter>) => {
    const next: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...filter, ...patch })) if (v) next[k] = v;
    go(`/jobs?${new URLSearchParams(next)}`);
  };
  const onSubmit = (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.target as HTMLFormElement);
    set({ type: String(form.get('type') ?? ''), pk: String(form.get('pk') ?? ''), pv: String(form.get('pv') ?? ''), search: String(form.get('search') ?? '').trim() });
  };
  return html`<form class="filters" onSubmit=${onSubmit} data-filter-form>
    <select name="status" aria-label="status" value=${filter.status ?? ''} onChange=${(e: any) => set({ status: e.target.value })}>
      <option value="">Any status</option>
      ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
    </select>
    ${viewer.tenants.length > 1 ? html`<select name="tenant_id" aria-label="tenant" value=${filter.tenant_id ?? ''} onChange=${(e: any) => set({ tenant_id: e.target.value })}>
      <option value="">All tenants</option>
      ${viewer.tenants.map((t) => html`<option value=${t.id}>${t.name}</option>`)}
    </select>` : null}
    <select name="range" aria-label="created" value=${filter.range ?? ''} onChange=${(e: any) => set({ range: e.target.value })}>
      <option value="">Any time</option>
      <option value="15m">Last 15 minutes</option><option value="1h">Last hour</option>
      <option value="24h">Last 24 hours</option><option value="7d">Last 7 days</option>
    </select>
    <input name="type" placeholder="type, e.g. email.send" defaultValue=${filter.type ?? ''} aria-label="type" />
    <span class="kv"><input name="pk" placeholder="payload key" defaultValue=${filter.pk ?? ''} aria-label="payload key" /><span>=</span><input name="pv" placeholder="value" defaultValue=${filter.pv ?? ''} aria-label="payload value" /></span>
    <input name="search" class="grow" placeholder="job id or idempotency key" defaultValue=${filter.search ?? ''} aria-label="search" />
    <button type="submit" class="btn">Apply</button>
    ${Object.keys(filter).length ? html`<button type="button" class="btn ghost" onClick=${() => go('/jobs')}>Clear</button>` : null}
  </form>`;
}

interface BulkState { action: 'retry' | 'cancel'; count: number; more: boolean; limit: number }

function BulkBar({ filter }: { filter: JobsFilter }) {
  const [pending, setPending] = useState<BulkState | null>(null);
  const [extra, setExtra] = useState(1);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const body = (action: 'retry' | 'cancel', dryRun: boolean) => {
    const { payload, created_after, ...rest } = apiFilter(filter);
    return { action, dry_run: dryRun, ...(action === 'retry' ? { extra_attempts: extra } : {}),
      filter: { ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v)), ...(created_after ? { created_after } : {}), ...(payload ? { payload: JSON.parse(payload) } : {}) } };
  };
  const preview = async (action: 'retry' | 'cancel') => {
    setError(null); setMessage(null);
    try {
      const r = await api<BulkState>('/bulk', { method: 'POST', body: body(action, true) });
      setPending({ action, count: r.data.count, more: r.data.more, limit: r.data.limit });
    } catch (e) { setError(e); }
  };
  const confirm = async () => {
    if (!pending) return;
    setBusy(true);
    try {
      const r = await api<BulkState>('/bulk', { method: 'POST', body: body(pending.action, false) });
      setMessage(`${pending.action === 'retry' ? 'Retried' : 'Cancelled'} ${fmtNumber(r.data.count)} jobs${r.data.more ? ' (more match: run it again)' : ''}.`);
      setPending(null);
      notify('jobs');
    } catch (e) { setError(e); setPending(null); } finally { setBusy(false); }
  };
  return html`<div class="bulk" data-bulk>
    <span class="muted small">Matching jobs:</span>
    <button class="btn small" data-action="bulk-retry" onClick=${() => preview('retry')}>Retry…</button>
    <button class="btn small danger-ghost" data-action="bulk-cancel" onClick=${() => preview('cancel')}>Cancel…</button>
    ${message ? html`<span class="ok small" role="status">${message}</span>` : null}
    <${ErrorBox} error=${error} />
    ${pending ? html`<div class="modal-bg"><div class="modal" role="dialog" aria-modal="true">
      <h3>${pending.action === 'retry' ? 'Retry' : 'Cancel'} ${fmtNumber(pending.count)}${pending.more ? '+' : ''} jobs?</h3>
      <p>${pending.count === 0 ? 'No job matching this filter can be ' + (pending.action === 'retry' ? 'retried.' : 'cancelled.')
        : `This ${pending.action === 'retry' ? 'retries' : 'cancels'} the ${pending.more ? `newest ${fmtNumber(pending.limit)} of the` : ''} jobs matching the current filter, each by the same rules as one at a time.`}</p>
      ${pending.action === 'retry' ? html`<label class="inline">Extra attempts <input type="number" min="0" max="100" value=${extra} onInput=${(e: any) => setExtra(Number(e.target.value))} /></label>` : null}
      <div class="modal-f">
        <button class="btn ghost" onClick=${() => setPending(null)}>Keep them</button>
        <button class=${`btn ${pending.action === 'cancel' ? 'danger' : 'primary'}`} data-action="bulk-confirm" disabled=${busy || pending.count === 0} onClick=${confirm}>
          ${pending.action === 'retry' ? 'Retry' : 'Cancel'} ${fmtNumber(pending.count)} jobs</button>
      </div>
    </div></div>` : null}
  </div>`;
}

/** Mount with key = the filter, so a new filter starts again at the first page. */
export function Jobs({ filter, viewer, canAdmin }: { filter: JobsFilter; viewer: Viewer; canAdmin: boolean }) {
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const key = JSON.stringify(filter);
  const cursor = cursors[cursors.length - 1];
  const tenantName = (id: string) => viewer.tenants.find((t) => t.id === id)?.name ?? shortId(id);

  useLive(['jobs'], async () => {
    try {
      const r = await api<Job[]>('', { query: { ...apiFilter(filter), limit: 25, cursor } });
      setJobs(r.data); setNext(r.meta.next_cursor ?? null); setError(null);
    } catch (e) { setError(e); setJobs([]); }
  }, [key, cursor]);

  return html`<div class="page" data-view="jobs" data-loaded=${jobs !== null ? '' : undefined}>
    <div class="page-h"><h1>Jobs</h1></div>
    <${FilterBar} filter=${filter} viewer=${viewer} />
    ${canAdmin ? html`<${BulkBar} filter=${filter} />` : null}
    <${ErrorBox} error=${error} />
    <div class="card"><table class="table jobs">
      <thead><tr><th>Status</th><th>Type</th><th>Job</th>${viewer.tenants.length > 1 ? html`<th>Tenant</th>` : null}<th class="num">Attempts</th><th>Created</th><th>Last error</th></tr></thead>
      <tbody>${(jobs ?? []).map((j) => html`<tr class="row-link" data-job-id=${j.id} data-status=${j.status} onClick=${() => go(`/jobs/${j.id}`)}>
        <td><${StatusBadge} status=${j.status} cancelling=${!!j.cancel_requested_at} /></td>
        <td class="mono">${j.type}</td>
        <td class="mono muted"><a href=${`#/jobs/${j.id}`}>${shortId(j.id)}</a></td>
        ${viewer.tenants.length > 1 ? html`<td>${tenantName(j.tenant_id)}</td>` : null}
        <td class="num">${j.attempts}/${j.max_attempts}</td>
        <td><${Time} ts=${j.created_at} /></td>
        <td class="err-cell">${j.last_error ?? ''}</td>
      </tr>`)}</tbody>
    </table>
    ${jobs && jobs.length === 0 ? html`<p class="empty">No jobs match.</p>` : null}
    ${jobs === null ? html`<p class="empty loading">Loading…</p>` : null}
    <div class="pager">
      <button class="btn ghost small" disabled=${cursors.length === 1} onClick=${() => setCursors(cursors.slice(0, -1))}>← Newer</button>
      <span class="muted small">page ${cursors.length}</span>
      <button class="btn ghost small" data-action="older" disabled=${!next} onClick=${() => setCursors([...cursors, next])}>Older →</button>
    </div></div>
  </div>`;
}
