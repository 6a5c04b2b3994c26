/** Schedules: cron, time zone, next and last run; enable/disable and "run now" for tenant admins. */
import { useState } from 'preact/hooks';
import { api, type Job, type Schedule, type Viewer } from './api.ts';
import { notify, useLive } from './live.ts';
import { ErrorBox, fmtTime, go, html, Time } from './ui.ts';

export function Schedules({ tenantId, viewer, isAdmin }: { tenantId: string | null; viewer: Viewer; isAdmin: (tenantId: string) => boolean }) {
  const [rows, setRows] = useState<Schedule[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const refresh = async () => {
    try { setRows((await api<Schedule[]>('/schedules', { query: { tenant_id: tenantId, limit: 100 } })).data); setError(null); } catch (e) { setError(e); }
  };
  useLive(['schedules'], refresh, [tenantId]);

  const act = async (s: Schedule, what: 'toggle' | 'run') => {
    setBusy(s.id); setError(null);
    try {
      if (what === 'toggle') {
        await api(`/schedules/${s.id}`, { method: 'PATCH', body: { enabled: !s.enabled } });
        notify('schedules');
      } else {
        const r = await api<Job>(`/schedules/${s.id}/run`, { method: 'POST' });
        notify('jobs');
        go(`/jobs/${r.data.id}`);
      }
    } catch (e) { setError(e); } finally { setBusy(null); }
  };
  const tenantName = (id: string) => viewer.tenants.find((t) => t.id === id)?.name ?? id.slice(0, 8);

  return html`<div class="page" data-view="schedules">
    <div class="page-h"><h1>Schedules</h1></div>
    <${ErrorBox} error=${error} />
    <div class="card"><table class="table">
      <thead><tr><th>Name</th>${tenantId ? null : html`<th>Tenant</th>`}<th>Cron</th><th>Time zone</th><th>Job type</th><th>Next run</th><th>Last run</th><th>Enabled</th><th></th></tr></thead>
      <tbody>${(rows ?? []).map((s) => html`<tr data-schedule=${s.name}>
        <td><strong>${s.name}</strong></td>
        ${tenantId ? null : html`<td>${tenantName(s.tenant_id)}</td>`}
        <td class="mono">${s.cron}</td>
        <td>${s.time_zone}</td>
        <td class="mono">${s.job_type}</td>
        <td title=${fmtTime(s.next_run_at)}>${s.enabled ? html`<${Time} ts=${s.next_run_at} />` : html`<span class="muted">—</span>`}</td>
        <td><${Time} ts=${s.last_run_at} /></td>
        <td>${isAdmin(s.tenant_id)
          ? html`<label class="switch" title=${s.enabled ? 'Disable' : 'Enable'}><input type="checkbox" data-action="toggle" checked=${s.enabled}
              disabled=${busy === s.id} onChange=${() => act(s, 'toggle')} /><span></span></label>`
          : html`<span class=${`badge ${s.enabled ? 's-completed' : 's-cancelled'}`}>${s.enabled ? 'on' : 'off'}</span>`}</td>
        <td class="right">${isAdmin(s.tenant_id) ? html`<button class="btn small" data-action="run-now" disabled=${busy === s.id} onClick=${() => act(s, 'run')}>Run now</button>` : null}</td>
      </tr>`)}</tbody>
    </table>
    ${rows && rows.length === 0 ? html`<p class="empty">No schedules.</p>` : null}</div>
  </div>`;
}
