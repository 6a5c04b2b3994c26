/**
 * Live updates. Today: polling, paused while the tab is hidden and run at once when it shows again.
 *
 * Realtime hook: a view subscribes with useLive(topics, refresh). Anything may call notify(topic) to
 * make every view showing that topic refresh now; a later Realtime source (private Broadcast channels
 * such as `tenant:<id>:jobs` and `job:<id>`) only has to register itself with setLiveSource() and call
 * notify() on each message, and may then lengthen the polling interval (polling stays as the fallback).
 */
import { useEffect, useRef } from 'preact/hooks';

export const POLL_INTERVAL_MS = 5000;

/** What a live source (e.g. Realtime) gets: subscribe to topics, each returning an unsubscribe. */
export interface LiveSource {
  subscribe(topic: string, onMessage: () => void): () => void;
  /** Polling interval to use while this source is connected (e.g. 30 s instead of 5 s). */
  pollIntervalMs?: number;
}

let source: LiveSource | null = null;
const listeners = new Map<string, Set<() => void>>();

export function setLiveSource(s: LiveSource | null): void {
  source = s;
}

/** Refresh every view that shows `topic` now (e.g. after an action, or on a Realtime message). */
export function notify(topic: string): void {
  listeners.get(topic)?.forEach((cb) => cb());
}

/** Topics used by the views: 'jobs' (any job), 'job:<id>', 'schedules', 'stats'. */
function listen(topic: string, cb: () => void): () => void {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic)!.add(cb);
  const fromSource = source?.subscribe(topic, () => notify(topic));
  return () => {
    listeners.get(topic)?.delete(cb);
    fromSource?.();
  };
}

/**
 * Calls refresh now, then every interval while the tab is visible, and whenever one of the topics is
 * notified. Restarts when deps change. A refresh still running is not started twice.
 */
export function useLive(topics: string[], refresh: () => Promise<unknown> | void, deps: unknown[]): void {
  const latest = useRef(refresh);
  latest.current = refresh;
  useEffect(() => {
    let running = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const tick = async () => {
      clearTimeout(timer);
      if (stopped) return;
      if (!document.hidden && !running) {
        running = true;
        try { await latest.current(); } catch { /* the view shows its own error */ } finally { running = false; }
      }
      if (!stopped && !document.hidden) timer = setTimeout(tick, source?.pollIntervalMs ?? POLL_INTERVAL_MS);
    };
    const onVisibility = () => { if (!document.hidden) void tick(); else clearTimeout(timer); };
    document.addEventListener('visibilitychange', onVisibility);
    const unlisten = topics.map((t) => listen(t, () => void tick()));
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
      unlisten.forEach((u) => u());
    };
  }, deps);
}
