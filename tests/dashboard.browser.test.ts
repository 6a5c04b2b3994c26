/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core) against the real
 * pieces: this file's database, the real `jobs` function served by Deno, a real worker process, and
 * the dashboard built by esbuild and served by scripts/lib/dashboard.ts. Users sign in as on the
 * local stack (their access token in the URL fragment).
 *
 * Chromium: SUPAQUEUE_CHROMIUM (default /usr/bin/chromium; Debian: apt-get install -y chromium).
 * Screenshots go to a temporary folder, or to SUPAQUEUE_SCREENSHOTS (e.g. docs/screenshots).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serveDashboard, type DashboardServer } from '../scripts/lib/dashboard.ts';
import { userToken } from '../scripts/lib/keys.ts';
import { freePort } from '../scripts/lib/pg.ts';
import { client, invoke, startApi, type Api } from './helpers/api.ts';
import { addMember, createTestDatabase, enqueueMany, makeSuperAdmin, makeTenant, makeUser, type TestDatabase } from './helpers/db.ts';
import { killAll, startWorker, waitFor, type WorkerProcess } from './helpers/worker.ts';

const CHROMIUM = process.env.SUPAQUEUE_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.SUPAQUEUE_SCREENSHOTS ? path.resolve(process.env.SUPAQUEUE_SCREENSHOTS) : fs.mkdtempSync(path.join(os.tmpdir(), 'supaqueue-shots-'));
const HANDLERS = path.resolve('tests/fixtures/dashboard-handlers.ts');

let db: TestDatabase;
let api: Api;
let dash: DashboardServer;
let worker: WorkerProcess;
let browser: Browser;
/** Uncaught errors in any page: none may happen (checked after every test). */
const pageErrors: Error[] = [];
const users = { adminA: '', memberA: '', superAdmin: '' };
let tenantA: string;
let tenantB: string;
let jobsA: string[];
let jobsB: string[];
let failedJob: string;
let schedule: string;

async function statusOf(id: string): Promise<string> {
  const [row] = await db.sql`select status::text from public.job_queue where id = ${id}`;
  return row.status as string;
}

/** A new browser context signed in as the user (the local stack's sign-in: token in the fragment). */
async function signIn(userId: string, email: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.on('pageerror', (e) => { pageErrors.push(e); });
  await page.goto(dash.signInUrl(await userToken(userId, { email })));
  await page.waitForSelector('[data-view="overview"] .tiles');
  return page;
}

async function visibleJobIds(page: Page): Promise<string[]> {
  await page.waitForSelector('[data-view="jobs"][data-loaded]');
  return page.$$eval('[data-job-id]', (rows) => rows.map((r) => r.getAttribute('data-job-id')!));
}

/** Fills in a plausible last hour and day of throughput for tenant A, so the chart has a history to draw. */
async function backfillHistory(): Promise<void> {
  await db.sql`
    insert into supaqueue.job_minute_stats (tenant_id, minute, completed, failed)
    select t.id, date_trunc('minute', now()) - make_interval(mins => m),
           (40 + 25 * sin(m / 9.0) + (m * 7919 % 17))::int, case when m % 11 = 3 then 2 + m % 4 when m % 5 = 0 then 1 else 0 end
    from generate_series(1, 24 * 60) m, (values (${tenantA}::uuid), (supaqueue.all_tenants())) t(id)
    on conflict (tenant_id, minute) do update set completed = excluded.completed, failed = excluded.failed`;
}

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium, or set SUPAQUEUE_CHROMIUM`);
  db = await createTestDatabase();
  tenantA = await makeTenant(db.sql, { name: 'Acme', maxConcurrentJobs: 8, maxQueuedJobs: 5000 });
  tenantB = await makeTenant(db.sql, { name: 'Globex' });
  users.adminA = await makeUser(db.sql);
  users.memberA = await makeUser(db.sql);
  users.superAdmin = await makeUser(db.sql);
  await addMember(db.sql, tenantA, users.adminA, 'admin');
  await addMember(db.sql, tenantA, users.memberA, 'member');
  await makeSuperAdmin(db.sql, users.superAdmin);
  const [s] = await db.sql`insert into public.job_schedules (tenant_id, name, cron, time_zone, job_type, payload, next_run_at)
                           values (${tenantA}, 'nightly-digest', '0 3 * * *', 'Europe/Berlin', 'dash.echo', '{"digest":"nightly"}', now() + interval '6 hours')
                           returning id`;
  schedule = s.id as string;
  await db.sql`insert into public.job_schedules (tenant_id, name, cron, time_zone, job_type, payload, next_run_at, last_run_at, enabled) values
    (${tenantA}, 'hourly-crm-sync', '15 * * * *', 'UTC', 'dash.echo', '{"sync":"crm"}', now() + interval '40 minutes', now() - interval '20 minutes', true),
    (${tenantA}, 'weekly-invoices', '0 8 * * 1', 'America/New_York', 'report.generate', '{"kind":"invoices"}', null, now() - interval '3 days', false)`;

  [api, worker, browser] = await Promise.all([
    startApi(db, {}, { quiet: true }),
    startWorker(db.url, { handlers: HANDLERS, env: { WORKER_TYPES: 'dash.echo,dash.flaky,dash.long', WORKER_LEASE_SECONDS: 3 } }),
    chromium.launch({ executablePath: CHROMIUM, headless: true }),
  ]);
  dash = await serveDashboard({ projectUrl: api.server.url, port: await freePort() });

  jobsA = await enqueueMany(db.sql, tenantA, 6, { type: 'dash.echo', payload: { customer: 'c-42', plan: 'pro' } });
  jobsA.push(...await enqueueMany(db.sql, tenantA, 3, { type: 'dash.echo', payload: { customer: 'c-7' } }));
  [failedJob] = await enqueueMany(db.sql, tenantA, 1, {
    type: 'dash.flaky', max_attempts: 1, payload: { invoice: 'INV-2026-118', customer: { id: 42, plan: 'pro' }, amount_cents: 129900 },
    idempotency_key: 'invoice-118', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', request_id: 'req_7Hq2xK', actor_id: users.adminA,
  });
  jobsA.push(failedJob);
  // Types no worker here runs: they wait, so the overview has a backlog and an oldest waiting job.
  jobsA.push(...await enqueueMany(db.sql, tenantA, 4, { type: 'report.generate', payload: { month: '2026-11' } }));
  jobsB = await enqueueMany(db.sql, tenantB, 3, { type: 'dash.echo', payload: { customer: 'globex-1' } });
  await waitFor(async () => (await statusOf(failedJob)) === 'failed' && (await statusOf(jobsB[2])) === 'completed',
    { timeoutMs: 30_000, message: 'the worker settles the seeded jobs' });
});

afterAll(async () => {
  await browser?.close();
  await dash?.stop();
  if (worker) await killAll([worker]);
  await api?.stop();
  await db?.drop();
});

describe('dashboard in a browser', () => {
  afterEach(() => {
    expect(pageErrors.splice(0).map((e) => e.message)).toEqual([]);
  });

  it("a member of tenant A sees only A's jobs", async () => {
    const page = await signIn(users.memberA, 'member@acme.test');
    await page.goto(`${dash.url}/#/jobs`);
    const ids = await visibleJobIds(page);
    expect({ someOfA: ids.some((id) => jobsA.includes(id)), anyOfB: ids.some((id) => jobsB.includes(id)) }).toEqual({ someOfA: true, anyOfB: false });
    await page.context().close();
  });

  it("another tenant's job page answers JOB_NOT_FOUND to a member", async () => {
    const page = await signIn(users.memberA, 'member@acme.test');
    await page.goto(`${dash.url}/#/jobs/${jobsB[0]}`);
    await page.waitForSelector('[data-view="job"] [role="alert"]');
    expect(await page.getAttribute('[data-view="job"] [role="alert"]', 'data-code')).toBe('JOB_NOT_FOUND');
    await page.context().close();
  });

  it('a super admin sees the jobs of A and B', async () => {
    const page = await signIn(users.superAdmin, 'ops@supaqueue.test');
    await page.goto(`${dash.url}/#/jobs`);
    const ids = await visibleJobIds(page);
    expect({ anyOfA: ids.some((id) => jobsA.includes(id)), anyOfB: ids.some((id) => jobsB.includes(id)) }).toEqual({ anyOfA: true, anyOfB: true });
    await page.context().close();
  });

  it('filters by a payload key and value', async () => {
    const page = await signIn(users.adminA, 'admin@acme.test');
    await page.goto(`${dash.url}/#/jobs`);
    await page.fill('input[name="pk"]', 'customer');
    await page.fill('input[name="pv"]', 'c-7');
    await page.click('form[data-filter-form] button[type="submit"]');
    await page.waitForFunction(() => location.hash.includes('pv=c-7'));
    await page.waitForFunction(() => document.querySelectorAll('[data-job-id]').length === 3);
    expect((await visibleJobIds(page)).every((id) => jobsA.slice(6, 9).includes(id))).toBe(true);
    await page.context().close();
  });

  it('filters failed jobs, opens one, retries it with an extra attempt and sees it complete', async () => {
    const page = await signIn(users.adminA, 'admin@acme.test');
    await page.goto(`${dash.url}/#/jobs`);
    await page.selectOption('select[name="status"]', 'failed');
    await page.waitForSelector(`[data-job-id="${failedJob}"]`);
    expect(await page.$$eval('[data-job-id]', (rows) => rows.every((r) => r.getAttribute('data-status') === 'failed'))).toBe(true);
    await page.click(`[data-job-id="${failedJob}"]`);
    await page.waitForSelector('[data-view="job"][data-job-status="failed"] [data-action="retry"]');
    await page.screenshot({ path: path.join(SHOTS, 'job-failed.png'), fullPage: true });
    await page.click('[data-action="retry"]');
    await page.waitForSelector('[data-view="job"][data-job-status="completed"]', { timeout: 30_000 });
    await page.screenshot({ path: path.join(SHOTS, 'job.png'), fullPage: true });
    expect(await statusOf(failedJob)).toBe('completed');
    await page.context().close();
  });

  it('cancels a running job', async () => {
    const [id] = await enqueueMany(db.sql, tenantA, 1, { type: 'dash.long', payload: { ms: 120_000, document: 'annual-report.pdf' } });
    await waitFor(async () => (await statusOf(id)) === 'processing', { timeoutMs: 20_000, message: 'the long job starts' });
    const page = await signIn(users.adminA, 'admin@acme.test');
    await page.goto(`${dash.url}/#/jobs/${id}`);
    await page.click('[data-view="job"][data-job-status="processing"] [data-action="cancel"]');
    await page.waitForSelector('[data-view="job"][data-job-status="cancelled"]', { timeout: 30_000 });
    expect(await statusOf(id)).toBe('cancelled');
    await page.context().close();
  });

  it('refuses an API key in place of a user token (the service key never signs in)', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(dash.signInUrl(api.serviceKey));
    await page.waitForSelector('.signin textarea[name="token"]');
    expect(await page.evaluate(() => ({ stored: Object.keys(sessionStorage).length, hash: location.hash }))).toEqual({ stored: 0, hash: '#/' });
    await page.context().close();
  });

  it('a plain member sees no bulk or schedule admin actions', async () => {
    const page = await signIn(users.memberA, 'member@acme.test');
    await page.goto(`${dash.url}/#/jobs`);
    await visibleJobIds(page);
    await page.goto(`${dash.url}/#/schedules`);
    await page.waitForSelector('[data-schedule="nightly-digest"]');
    const counts = await page.evaluate(() => ({
      bulk: document.querySelectorAll('[data-bulk]').length,
      admin: document.querySelectorAll('[data-action="run-now"], [data-action="toggle"]').length,
    }));
    expect(counts).toEqual({ bulk: 0, admin: 0 });
    await page.context().close();
  });

  it('the API refuses those admin actions to a plain member anyway', async () => {
    const sb = client(api, await userToken(users.memberA));
    const bulk = await invoke(sb, 'jobs/bulk', { method: 'POST', body: { action: 'cancel', filter: { tenant_id: tenantA } } });
    const run = await invoke(sb, `jobs/schedules/${schedule}/run`, { method: 'POST' });
    expect([bulk.status, bulk.body.error.code, run.status, run.body.error.code]).toEqual([403, 'FORBIDDEN', 403, 'FORBIDDEN']);
  });

  it('a tenant admin sees the bulk and schedule actions', async () => {
    const page = await signIn(users.adminA, 'admin@acme.test');
    await page.goto(`${dash.url}/#/schedules`);
    await page.waitForSelector('[data-schedule="nightly-digest"] [data-action="run-now"]');
    await page.screenshot({ path: path.join(SHOTS, 'schedules.png') });
    await page.goto(`${dash.url}/#/jobs`);
    await page.waitForSelector('[data-bulk] [data-action="bulk-retry"]');
    await page.screenshot({ path: path.join(SHOTS, 'jobs.png') });
    await page.context().close();
  });

  it('bulk-cancels the waiting jobs matching a filter after confirming the count', async () => {
    const page = await signIn(users.adminA, 'admin@acme.test');
    await page.goto(`${dash.url}/#/jobs?type=report.generate&status=pending`);
    await page.click('[data-action="bulk-cancel"]');
    await page.waitForSelector('[role="dialog"]');
    const title = await page.textContent('[role="dialog"] h3');
    await page.click('[data-action="bulk-confirm"]');
    await page.waitForSelector('[data-bulk] [role="status"]');
    const [row] = await db.sql`select count(*)::int as n from public.job_queue where tenant_id = ${tenantA} and type = 'report.generate' and status = 'cancelled'`;
    expect({ title, cancelled: row.n }).toEqual({ title: 'Cancel 4 jobs?', cancelled: 4 });
    await page.context().close();
  });

  it('shows the overview with counts, throughput history, running jobs and limits', async () => {
    await enqueueMany(db.sql, tenantA, 3, { type: 'report.generate', payload: { month: '2026-12' } });
    await enqueueMany(db.sql, tenantA, 2, { type: 'dash.long', payload: { ms: 120_000 } });
    await backfillHistory();
    await waitFor(async () => {
      const [r] = await db.sql`select count(*)::int as n from public.job_queue where type = 'dash.long' and status = 'processing'`;
      return r.n === 2;
    }, { timeoutMs: 20_000, message: 'two long jobs run' });
    const page = await signIn(users.adminA, 'admin@acme.test');
    await page.waitForSelector('.chart canvas');
    await page.waitForSelector('.running li');
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(SHOTS, 'overview.png'), fullPage: true });
    const tiles = await page.$$eval('[data-tile]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-tile'), e.querySelector('.tile-value')!.textContent])));
    expect({ waiting: tiles.pending, running: tiles.processing }).toEqual({ waiting: '3', running: '2' });
    await page.context().close();
  });
});
