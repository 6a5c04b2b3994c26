/** Small shared pieces: the html tag, formatting, badges, readable JSON, errors. */
import { h } from 'preact';
import htm from 'htm';
import type { ApiError } from './api.ts';

export const html = htm.bind(h);

export const STATUSES = ['pending', 'processing', 'completed', 'failed', 'cancelled'] as const;

export function fmtNumber(n: number | string | null | undefined): string {
  if (n === null || n === undefined) return '—';
  return Number(n).toLocaleString('en-US');
}

export function fmtDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function ago(ts: string | null | undefined): string {
  if (!ts) return '—';
  const d = (Date.now() - Date.parse(ts)) / 1000;
  if (d < 0) return `in ${fmtDuration(-d)}`;
  if (d < 5) return 'just now';
  return `${fmtDuration(d)} ago`;
}

export function fmtTime(ts: string | null | undefined): string {
  if (!ts) return '—';
  const d = new Date(ts);
  return d.toLocaleString('en-GB', { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}

export function StatusBadge({ status, cancelling }: { status: string; cancelling?: boolean }) {
  return html`<span class=${`badge s-${status}`} data-status=${status}>${cancelling ? 'cancelling' : status}</span>`;
}

export function Time({ ts }: { ts: string | null | undefined }) {
  return html`<time datetime=${ts ?? ''} title=${fmtTime(ts)}>${ago(ts)}</time>`;
}

/** JSON, indented, with keys, strings, numbers and literals coloured. Text only: never innerHTML. */
export function JsonView({ value }: { value: unknown }) {
  if (value === null || value === undefined) return html`<pre class="json muted">null</pre>`;
  const text = JSON.stringify(value, null, 2);
  const parts: unknown[] = [];
  const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    parts.push(text.slice(last, m.index));
    if (m[1] && m[2]) parts.push(html`<span class="j-key">${m[1]}</span>`, m[2]);
    else if (m[1]) parts.push(html`<span class="j-str">${m[1]}</span>`);
    else if (m[3]) parts.push(html`<span class="j-lit">${m[3]}</span>`);
    else parts.push(html`<span class="j-num">${m[4]}</span>`);
    last = re.lastIndex;
  }
  parts.push(text.slice(last));
  return html`<pre class="json">${parts}</pre>`;
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error as ApiError;
  return html`<div class="alert" role="alert" data-code=${e.code ?? ''}>
    <strong>${e.code ?? 'ERROR'}</strong> ${e.message}${e.traceId ? html` <span class="muted">(trace ${e.traceId})</span>` : ''}
  </div>`;
}

export function Card({ title, children, extra, class: cls }: { title?: string; children: unknown; extra?: unknown; class?: string }) {
  return html`<section class=${`card ${cls ?? ''}`}>
    ${title ? html`<header class="card-h"><h2>${title}</h2>${extra}</header>` : null}
    <div class="card-b">${children}</div>
  </section>`;
}

export function Progress({ percent }: { percent: number | undefined }) {
  const p = Math.max(0, Math.min(100, Number(percent ?? 0)));
  return html`<div class="progress" role="progressbar" aria-valuenow=${p}><div style=${`width:${p}%`}></div></div>`;
}

/** Navigates within the single-page app (hash routes: #/, #/jobs?…, #/jobs/<id>, #/schedules). */
export function go(path: string): void {
  location.hash = `#${path}`;
}
