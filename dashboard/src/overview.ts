/** Overview: counts by status and type, running now, oldest waiting, throughput chart, limits and usage. */
import { useState } from 'preact/hooks';
import { api, type Stats } from './api.ts';
import { ThroughputChart } from './chart.ts';
import { useLive } from './live.ts';
import { Card, ErrorBox, fmtDuration, fmtNumber, go, html, Progress, shortId, STATUSES, Time } from './ui.ts';

const TILE_LABEL: Record<string, string> = { pending: 'Waiting', processing: 'Running', completed: 'Completed', failed: 'Failed', cancelled: 'Cancelled' };

function jobsLink(tenantId: string | null, extra: Record<string, string>): string {
  const q = new URLSearchParams({ ...(tenantId ? { tenant_id: tenantId } : {}), ...extra });
  return `/jobs?${q}`;
}

function Tiles({ stats, tenantId }: { stats: Stats; tenantId: string | null }) {
  const age = stats.oldest_waiting.age_seconds;
  return html`<div class="tiles">
    ${STATUSES.map((s) => html`<button class=${`tile t-${s}`} data-tile=${s} onClick=${() => go(jobsLink(tenantId, { status: s }))}>
      <span class="tile-label">${TILE_LABEL[s]}</span>
      <span class="tile-value">${fmtNumber(stats.counts.by_status[s] ?? 0)}</span>
    </button>`)}
    <div class=${`tile t-age ${age !== null && age > 60 ? 'warn' : ''}`} data-tile="oldest">
      <span class="tile-label">Oldest waiting</span>
      <span class="tile-value">${age === null ? '—' : fmtDuration(age)}</span>
      ${stats.oldest_waiting.job_id ? html`<a class="tile-sub" href=${`#/jobs/${stats.oldest_waiting.job_id}`}>${shortId(stats.oldest_waiting.job_id)}</a>` : null}
    </div>
  </div>`;
}

function ByType({ stats, tenantId }: { stats: Stats; tenantId: string | null }) {
  if (stats.counts.by_type.length === 0) return html`<p class="empty">No jobs yet.</p>`;
  return html`<table class="table compact">
    <thead><tr><th>Type</th>${STATUSES.map((s) => html`<th class="num">${TILE_LABEL[s]}</th>`)}</tr></thead>
    <tbody>${stats.counts.by_type.map((t) => html`<tr>
      <td><a href=${`#${jobsLink(tenantId, { type: t.type })}`} class="mono">${t.type}</a></td>
      ${STATUSES.map((s) => html`<td class=${`num ${t[s] ? `c-${s}` : 'muted'}`}>${fmtNumber(t[s] ?? 0)}</td>`)}
    </tr>`)}</tbody>
  </table>`;
}

function Running({ stats }: { stats: Stats }) {
  if (stats.running.length === 0) return html`<p class="empty">Nothing is running right now.</p>`;
  return html`<ul class="running">${stats.running.map((r) => html`<li>
    <div class="running-h"><a class="mono" href=${`#/jobs/${r.id}`}>${r.type}</a><span class="muted">started <${Time} ts=${r.started_at} /></span></div>
    <${Progress} percent=${r.progress?.percent} />
    <div class="muted small">${r.progress?.message ?? `attempt ${r.attempts}`}</div>
  </li>`)}</ul>`;
}

function Meter({ label, used, max, hint }: { label: string; used: number; max: number | null; hint?: string }) {
  const pct = max ? Math.min(100, (used / max) * 100) : 0;
  return html`<div class="meter">
    <div class="meter-h"><span>${label}</span><span class="mono">${fmtNumber(used)} / ${max === null ? '∞' : fmtNumber(max)}</span></div>
    <div class=${`bar ${pct > 90 ? 'hot' : ''}`}><div style=${`width:${pct}%`}></div></div>
    ${hint ? html`<div class="muted small">${hint}</div>` : null}
  </div>`;
}

function Limits({ limits }: { limits: NonNullable<Stats['limits']> }) {
  return html`<div class="meters">
    <${Meter} label="Running (concurrency limit)" used=${limits.running} max=${limits.max_concurrent_jobs} />
    <${Meter} label="Queued (quota)" used=${limits.queued} max=${limits.max_queued_jobs ?? limits.default_max_queued_jobs}
      hint=${limits.max_queued_jobs === null ? 'default ceiling for jobs your users enqueue' : undefined} />
    <${Meter} label="Schedules" used=${limits.schedules} max=${limits.max_schedules} />
    <div class="meter"><div class="meter-h"><span>Highest priority users may set</span><span class="mono">${limits.max_user_priority ?? 'any'}</span></div></div>
  </div>`;
}

export function Overview({ tenantId, tenantName }: { tenantId: string | null; tenantName: string }) {
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [hours, setHours] = useState<1 | 24>(1);

  useLive(['stats', 'jobs'], async () => {
    try {
      const r = await api<Stats>('/stats', { query: { tenant_id: tenantId, hours } });
      setStats(r.data);
      setError(null);
    } catch (e) { setError(e); }
  }, [tenantId, hours]);

  const switcher = html`<div class="seg" role="group">
    <button class=${hours === 1 ? 'on' : ''} onClick=${() => setHours(1)}>Last hour</button>
    <button class=${hours === 24 ? 'on' : ''} onClick=${() => setHours(24)}>24 hours</button>
  </div>`;
  return html`<div class="page" data-view="overview">
    <div class="page-h"><h1>${tenantName}</h1>${stats ? html`<span class="muted small">updated <${Time} ts=${stats.at} /></span>` : null}</div>
    <${ErrorBox} error=${error} />
    ${!stats ? html`<p class="muted">Loading…</p>` : html`
      <${Tiles} stats=${stats} tenantId=${tenantId} />
      <${Card} title=${`Completed and failed jobs per ${stats.history.step_seconds === 60 ? 'minute' : `${stats.history.step_seconds / 60} minutes`}`} extra=${switcher}>
        <${ThroughputChart} points=${stats.history.points} stepSeconds=${stats.history.step_seconds} />
      <//>
      <div class="grid2">
        <${Card} title="Jobs by type"><${ByType} stats=${stats} tenantId=${tenantId} /><//>
        <div class="stack">
          <${Card} title="Running now"><${Running} stats=${stats} /><//>
          ${stats.limits ? html`<${Card} title="Limits and usage"><${Limits} limits=${stats.limits} /><//>` : null}
        </div>
      </div>`}
  </div>`;
}
