/**
 * One job: status, progress, attempts, payload and result, the error history as a timeline, trace ids,
 * and Retry (with extra attempts) / Cancel, which call the API and show its error codes as they are.
 */
import { useState } from 'preact/hooks';
import { api, type Job, type Viewer } from './api.ts';
import { notify, useLive } from './live.ts';
import { Card, ErrorBox, fmtTime, html, JsonView, Progress, StatusBadge, Time } from './ui.ts';

interface TimelineEvent { at: string; kind: string; title: string; detail?: string }

/** The job's life as a timeline: created, started, each recorded error, finished. */
function timeline(job: Job): TimelineEvent[] {
  const events: TimelineEvent[] = [{ at: job.created_at, kind: 'created', title: 'Enqueued', detail: job.actor_id ? `by ${job.actor_id}` : undefined }];
  for (const e of job.errors ?? []) {
    events.push({ at: e.at, kind: 'error', title: `Attempt ${e.attempt} failed`, detail: `${e.error}${e.worker_id ? `\non ${e.worker_id}` : ''}` });
  }
  if (job.started_at) events.push({ at: job.started_at, kind: 'started', title: `Attempt ${job.attempts} started` });
  if (job.cancel_requested_at) events.push({ at: job.cancel_requested_at, kind: 'cancel', title: 'Cancellation requested' });
  if (job.completed_at) events.push({ at: job.completed_at, kind: job.status, title: job.status[0].toUpperCase() + job.status.slice(1) });
  if (job.status === 'pending' && Date.parse(job.scheduled_at) > Date.now()) events.push({ at: job.scheduled_at, kind: 'scheduled', title: 'Runs next' });
  return events.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}

function Actions({ job, onDone }: { job: Job; onDone: (j: Job) => void }) {
  const [extra, setExtra] = useState(job.attempts >= job.max_attempts ? 1 : 0);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const act = async (path: string, body?: unknown) => {
    setBusy(true); setError(null);
    try {
      const r = await api<Job>(`/${job.id}/${path}`, { method: 'POST', body });
      onDone(r.data);
      notify('jobs');
    } catch (e) { setError(e); } finally { setBusy(false); }
  };
  const canRetry = job.status === 'failed' || job.status === 'cancelled';
  const canCancel = (job.status === 'pending' || job.status === 'processing') && !job.cancel_requested_at;
  return html`<div class="actions">
    ${canRetry ? html`<label class="inline small">extra attempts
      <input type="number" min="0" max="100" value=${extra} data-input="extra-attempts" onInput=${(e: any) => setExtra(Number(e.target.value))} /></label>
      <button class="btn primary" data-action="retry" disabled=${busy} onClick=${() => act('retry', extra ? { extra_attempts: extra } : undefined)}>Retry</button>` : null}
    ${canCancel ? html`<button class="btn danger" data-action="cancel" disabled=${busy} onClick=${() => act('cancel')}>Cancel job</button>` : null}
    <${ErrorBox} error=${error} />
  </div>`;
}

function Field({ label, value, mono }: { label: string; value: unknown; mono?: boolean }) {
  return html`<div class="field"><dt>${label}</dt><dd class=${mono ? 'mono' : ''}>${value ?? html`<span class="muted">—</span>`}</dd></div>`;
}

export function JobPage({ id, viewer }: { id: string; viewer: Viewer }) {
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<unknown>(null);
  useLive([`job:${id}`, 'jobs'], async () => {
    try { setJob((await api<Job>(`/${id}`)).data); setError(null); } catch (e) { setError(e); }
  }, [id]);

  if (!job) return html`<div class="page" data-view="job"><a href="#/jobs" class="back">← Jobs</a><${ErrorBox} error=${error} />${error ? null : html`<p class="muted">Loading…</p>`}</div>`;
  const tenant = viewer.tenants.find((t) => t.id === job.tenant_id)?.name ?? job.tenant_id;
  return html`<div class="page" data-view="job" data-job-status=${job.status}>
    <a href="#/jobs" class="back">← Jobs</a>
    <div class="page-h job-h">
      <div><h1 class="mono">${job.type}</h1><div class="muted mono small">${job.id}</div></div>
      <${StatusBadge} status=${job.status} cancelling=${!!job.cancel_requested_at} />
    </div>
    <${ErrorBox} error=${error} />
    <${Actions} job=${job} onDone=${setJob} />
    <div class="grid2">
      <div class="stack">
        <${Card} title="Summary"><dl class="fields">
          <${Field} label="Tenant" value=${tenant} />
          <${Field} label="Attempts" value=${html`<span data-field="attempts">${job.attempts} of ${job.max_attempts}</span>`} />
          <${Field} label="Priority" value=${job.priority} />
          <${Field} label="Created" value=${html`${fmtTime(job.created_at)} · <${Time} ts=${job.created_at} />`} />
          <${Field} label="Runs at" value=${fmtTime(job.scheduled_at)} />
          <${Field} label="Started" value=${job.started_at && fmtTime(job.started_at)} />
          <${Field} label="Finished" value=${job.completed_at && fmtTime(job.completed_at)} />
          ${job.status === 'processing' || job.progress ? html`<${Field} label="Progress" value=${html`<${Progress} percent=${job.progress?.percent} /><span class="small muted">${job.progress?.percent ?? 0}% ${job.progress?.message ?? ''}</span>`} />` : null}
        </dl><//>
        <${Card} title="Payload"><${JsonView} value=${job.payload} /><//>
        <${Card} title="Result"><${JsonView} value=${job.result} /><//>
      </div>
      <div class="stack">
        <${Card} title="Timeline"><ol class="timeline">${timeline(job).map((e) => html`<li class=${`ev ev-${e.kind}`}>
          <div class="ev-h"><strong>${e.title}</strong><span class="muted small">${fmtTime(e.at)}</span></div>
          ${e.detail ? html`<pre class="ev-d">${e.detail}</pre>` : null}
        </li>`)}</ol><//>
        <${Card} title="Tracing"><dl class="fields">
          <${Field} label="Trace id" value=${job.trace_id} mono />
          <${Field} label="Request id" value=${job.request_id} mono />
          <${Field} label="Actor" value=${job.actor_id} mono />
          <${Field} label="Idempotency key" value=${job.idempotency_key} mono />
        </dl><//>
      </div>
    </div>
  </div>`;
}
