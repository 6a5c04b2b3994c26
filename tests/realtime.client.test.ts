/**
 * The client's live status helpers (client/watch.ts) against the real jobs API (Deno) and this file's
 * database: with Realtime absent (no WebSocket transport, as on Node 20) they poll; with the database
 * side present, an in-process stand-in for the Realtime server (tests/realtime.helpers.ts) joins the
 * private channel only after Realtime's own authorization check and delivers what the database wrote to
 * realtime.messages, so broadcasts flow trigger -> realtime.messages -> RLS -> realtime-js -> watchJob.
 */
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { enqueueJob, waitForJob, watchJob, watchJobs, type JobState, type JobUpdateSource, type WatchMode } from '../client/index.ts';
import { userToken } from '../scripts/lib/keys.ts';
import { client, startApi, type Api } from './helpers/api.ts';
import { addMember, asService, createTestDatabase, makeTenant, makeUser, type TestDatabase } from './helpers/db.ts';
import { waitFor } from './engine.helpers.ts';
import { FakeRealtime } from './realtime.helpers.ts';

let db: TestDatabase;
let api: Api;
let A: string;
let aliceToken: string;

beforeAll(async () => {
  db = await createTestDatabase();
  api = await startApi(db);
  A = await makeTenant(db.sql);
  const alice = await makeUser(db.sql);
  await addMember(db.sql, A, alice);
  aliceToken = await userToken(alice);
});
afterAll(async () => {
  await api?.stop();
  await db?.drop();
});

/** A browser-like client whose Realtime goes to the stand-in server. */
function liveClient(rt: FakeRealtime, token = aliceToken, timeout = 10_000): SupabaseClient {
  return createClient(api.server.url, api.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: rt.transport as never, timeout, heartbeatIntervalMs: 60_000 },
    accessToken: async () => token,
  });
}

/** What a watch delivered, and its modes. */
function recorder() {
  const updates: { job: JobState; source: JobUpdateSource }[] = [];
  const modes: string[] = [];
  return {
    updates, modes,
    onChange: (job: JobState, source: JobUpdateSource) => { updates.push({ job, source }); },
    onMode: (m: WatchMode, reason: string) => { modes.push(`${m}:${reason}`); },
    states: () => updates.map((u) => `${u.job.status}:${u.job.progress?.percent ?? '-'}`),
    sources: () => updates.map((u) => u.source),
    seen: (status: string, percent: number | '-' = '-') => waitFor(async () => updates.some((u) => `${u.job.status}:${u.job.progress?.percent ?? '-'}` === `${status}:${percent}`)),
  };
}

const newJob = async (sb: SupabaseClient) => {
  const { data, error } = await enqueueJob(sb, { type: `rtc.${randomUUID().slice(0, 8)}` });
  if (error) throw new Error(error.message);
  return data;
};

// The worker's side, as the service role.
async function claimJob(type: string): Promise<string> {
  const [j] = await asService(db.sql, (tx) => tx`select lease_id from public.claim_jobs('rtc-worker', ${[type]}::text[], 1, 30)`);
  return j.lease_id as string;
}
const progress = (id: string, lease: string, percent: number) =>
  asService(db.sql, (tx) => tx`select public.set_job_progress(${id}::uuid, ${lease}::uuid, ${tx.json({ percent })})`);
const completeJob = (id: string, lease: string) =>
  asService(db.sql, (tx) => tx`select public.complete_jobs(${[id]}::uuid[], ${[lease]}::uuid[], array[${tx.json({ ok: true })}]::jsonb[])`);

test('Realtime absent (no WebSocket transport): watchJob polls and delivers every transition in order', async () => {
  const sb = client(api, aliceToken); // Node 20: a transport that cannot connect
  const job = await newJob(sb);
  const r = recorder();
  const watch = watchJob(sb, job.id, r.onChange, { pollIntervalMs: 30, onMode: r.onMode });
  try {
    await r.seen('pending');
    const lease = await claimJob(job.type);
    await r.seen('processing');
    await progress(job.id, lease, 50);
    await r.seen('processing', 50);
    await completeJob(job.id, lease);
    await r.seen('completed', 50);
    expect(r.states()).toEqual(['pending:-', 'processing:-', 'processing:50', 'completed:50']);
    expect(r.modes).toEqual(['polling:NO_TRANSPORT']);
    expect(new Set(r.sources())).not.toContain('realtime');
  } finally {
    await watch.stop();
  }
});

test('database side present: watchJob gets every transition from broadcasts, in order, without polling', async () => {
  const rt = new FakeRealtime({ sql: db.sql });
  const sb = liveClient(rt);
  const job = await newJob(sb);
  const r = recorder();
  const watch = watchJob(sb, job.id, r.onChange, { pollIntervalMs: 60_000, resyncIntervalMs: 60_000, onMode: r.onMode });
  try {
    await waitFor(async () => watch.mode === 'live');
    const lease = await claimJob(job.type); // back to back: only broadcasts can deliver all of them
    await progress(job.id, lease, 50);
    await completeJob(job.id, lease);
    await r.seen('completed', 50);
    expect(r.states()).toEqual(['pending:-', 'processing:-', 'processing:50', 'completed:50']);
    // The snapshot read right after SUBSCRIBED may answer after the claim and bring 'processing' itself
    // (its broadcast is then a duplicate, dropped); nothing is polled (60 s), and the end can only
    // arrive by broadcast.
    const later = r.sources().slice(1);
    expect(later).not.toContain('poll');
    expect(later.at(-1)).toBe('realtime');
    expect(r.modes).toEqual(['live:SUBSCRIBED']);
  } finally {
    await watch.stop();
  }
});

test('CHANNEL_ERROR (join refused): the watch polls and still delivers every transition', async () => {
  const rt = new FakeRealtime({ sql: db.sql, refuseJoins: true });
  const sb = liveClient(rt);
  const job = await newJob(sb);
  const r = recorder();
  const watch = watchJob(sb, job.id, r.onChange, { pollIntervalMs: 30, onMode: r.onMode });
  try {
    await waitFor(async () => r.modes.includes('polling:CHANNEL_ERROR'));
    const lease = await claimJob(job.type);
    await r.seen('processing');
    await completeJob(job.id, lease);
    await r.seen('completed');
    expect(r.states()).toEqual(['pending:-', 'processing:-', 'completed:-']);
  } finally {
    await watch.stop();
  }
});

test('TIMED_OUT (no answer to the join): the watch polls', async () => {
  const rt = new FakeRealtime({ sql: db.sql, ignoreJoins: true });
  const sb = liveClient(rt, aliceToken, 300);
  const job = await newJob(sb);
  const r = recorder();
  const watch = watchJob(sb, job.id, r.onChange, { pollIntervalMs: 30, onMode: r.onMode });
  try {
    await waitFor(async () => r.modes.includes('polling:TIMED_OUT'));
    await completeJob(job.id, await claimJob(job.type));
    await r.seen('completed');
  } finally {
    await watch.stop();
  }
});

test('a member of another tenant is refused the channel and gets JOB_NOT_FOUND from the API: the watch ends', async () => {
  const rt = new FakeRealtime({ sql: db.sql });
  const job = await newJob(liveClient(rt));
  const bob = await makeUser(db.sql);
  await addMember(db.sql, await makeTenant(db.sql), bob);
  const r = recorder();
  let error = '';
  const watch = watchJob(liveClient(rt, await userToken(bob)), job.id, r.onChange, { pollIntervalMs: 30, onError: (e) => { error = e.code; } });
  await waitFor(async () => watch.mode === 'stopped');
  expect([error, r.updates.length]).toEqual(['JOB_NOT_FOUND', 0]);
});

test('after the connection drops, the rejoin reads a snapshot: a transition missed meanwhile is delivered', async () => {
  const rt = new FakeRealtime({ sql: db.sql });
  const sb = liveClient(rt);
  const job = await newJob(sb);
  const r = recorder();
  const watch = watchJob(sb, job.id, r.onChange, { pollIntervalMs: 60_000, resyncIntervalMs: 60_000, onMode: r.onMode });
  try {
    await waitFor(async () => watch.mode === 'live');
    rt.dropAll();
    await waitFor(async () => watch.mode === 'polling');
    await claimJob(job.type); // no connection: its broadcast never reaches this client
    await waitFor(async () => watch.mode === 'live');
    await r.seen('processing');
    expect(r.updates.find((u) => u.job.status === 'processing')?.source).toBe('snapshot');
    expect(r.modes[0]).toBe('live:SUBSCRIBED');
    expect(r.modes.at(-1)).toBe('live:SUBSCRIBED');
  } finally {
    await watch.stop();
  }
});

test('CLOSED: the watch polls, then joins again after resubscribeMs', async () => {
  const rt = new FakeRealtime({ sql: db.sql });
  const sb = liveClient(rt);
  const job = await newJob(sb);
  const r = recorder();
  const watch = watchJob(sb, job.id, r.onChange, { pollIntervalMs: 30, resubscribeMs: 200, onMode: r.onMode });
  try {
    await waitFor(async () => watch.mode === 'live');
    rt.closeChannels();
    await waitFor(async () => r.modes.includes('polling:CLOSED'));
    await waitFor(async () => watch.mode === 'live');
    expect(r.modes).toEqual(['live:SUBSCRIBED', 'polling:CLOSED', 'live:SUBSCRIBED']);
  } finally {
    await watch.stop();
  }
});

test('stop() leaves the channel and ends polling: no callback after it resolves', async () => {
  const rt = new FakeRealtime({ sql: db.sql });
  const live = liveClient(rt);
  const job = await newJob(live);
  const r = recorder();
  const watch = watchJob(live, job.id, r.onChange, {});
  await waitFor(async () => watch.mode === 'live');
  expect(rt.joined).toBe(1);
  await watch.stop();
  expect(rt.joined).toBe(0);

  const polled = recorder();
  const pollWatch = watchJob(client(api, aliceToken), job.id, polled.onChange, { pollIntervalMs: 20 });
  await polled.seen('pending');
  await pollWatch.stop();
  const n = polled.updates.length + r.updates.length;
  await completeJob(job.id, await claimJob(job.type));
  await new Promise((res) => setTimeout(res, 300));
  expect(polled.updates.length + r.updates.length).toBe(n);
  expect(pollWatch.mode).toBe('stopped');
});

test('watchJobs: a tenant\'s changes arrive on its topic, for every job of the tenant', async () => {
  const rt = new FakeRealtime({ sql: db.sql });
  const sb = liveClient(rt);
  const r = recorder();
  const watch = watchJobs(sb, { tenantId: A }, r.onChange, { pollIntervalMs: 60_000, resyncIntervalMs: 60_000 });
  try {
    await waitFor(async () => watch.mode === 'live');
    const [j1, j2] = [await newJob(sb), await newJob(sb)];
    await completeJob(j2.id, await claimJob(j2.type));
    await waitFor(async () => r.updates.some((u) => u.job.id === j2.id && u.job.status === 'completed'));
    await waitFor(async () => r.updates.some((u) => u.job.id === j1.id));
    const mine = (id: string) => r.updates.filter((u) => u.job.id === id && u.source === 'realtime').map((u) => u.job.status);
    expect([mine(j1.id), mine(j2.id)]).toEqual([['pending'], ['pending', 'processing', 'completed']]);
  } finally {
    await watch.stop();
  }
});

test('waitForJob over Realtime resolves with the finished job, result included', async () => {
  const rt = new FakeRealtime({ sql: db.sql });
  const sb = liveClient(rt);
  const job = await newJob(sb);
  const waiting = waitForJob(sb, job.id, { intervalMs: 60_000, timeoutMs: 30_000 });
  await waitFor(async () => rt.joined === 1);
  await completeJob(job.id, await claimJob(job.type));
  const done = await waiting;
  expect(done.data).toMatchObject({ status: 'completed', result: { ok: true } });
  await waitFor(async () => rt.joined === 0);
});
