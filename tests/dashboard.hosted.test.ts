/**
 * The dashboard's hosted-project mode in a real browser: sign-in through Supabase Auth (@supabase/auth-js,
 * loaded only in this mode) with email and password, then the jobs API with the session's access token.
 * GoTrue is not part of the local stack, so a small stand-in answers the one call auth-js makes
 * (POST /auth/v1/token?grant_type=password) with a session whose access token the real `jobs` function
 * accepts. The dashboard is served as `npm run dashboard -- --supabase-url … --anon-key …` serves it.
 */
import fs from 'node:fs';
import http from 'node:http';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveDashboard, type DashboardServer } from '../scripts/lib/dashboard.ts';
import { userToken } from '../scripts/lib/keys.ts';
import { freePort } from '../scripts/lib/pg.ts';
import { startApi, type Api } from './helpers/api.ts';
import { addMember, createTestDatabase, makeTenant, makeUser, type TestDatabase } from './helpers/db.ts';

const CHROMIUM = process.env.SUPAQUEUE_CHROMIUM ?? '/usr/bin/chromium';
const PASSWORD = 'correct horse battery staple';

let db: TestDatabase;
let api: Api;
let dash: DashboardServer;
let browser: Browser;
let gotrue: http.Server;
let userId: string;
const seen: { path: string; apikey: string | undefined }[] = [];

/** Answers the password grant for one user (and CORS preflights), as GoTrue does. */
async function startGotrue(email: string): Promise<string> {
  const port = await freePort();
  gotrue = http.createServer(async (req, res) => {
    const cors = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': '*', 'Access-Control-Allow-Methods': 'GET, POST, OPTIONS' };
    if (req.method === 'OPTIONS') { res.writeHead(204, cors).end(); return; }
    let body = '';
    for await (const c of req) body += c;
    seen.push({ path: req.url ?? '', apikey: req.headers.apikey as string | undefined });
    const creds = JSON.parse(body || '{}');
    if (!req.url?.startsWith('/auth/v1/token?grant_type=password') || creds.email !== email || creds.password !== PASSWORD) {
      res.writeHead(400, { ...cors, 'content-type': 'application/json' }).end(JSON.stringify({ code: 400, error_code: 'invalid_credentials', msg: 'Invalid login credentials' }));
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    res.writeHead(200, { ...cors, 'content-type': 'application/json' }).end(JSON.stringify({
      access_token: await userToken(userId, { email }), token_type: 'bearer', expires_in: 3600, expires_at: now + 3600,
      refresh_token: 'refresh-token', user: { id: userId, aud: 'authenticated', role: 'authenticated', email, app_metadata: {}, user_metadata: {}, created_at: new Date().toISOString() },
    }));
  });
  await new Promise<void>((resolve) => gotrue.listen(port, '127.0.0.1', resolve));
  return `http://127.0.0.1:${port}`;
}

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium, or set SUPAQUEUE_CHROMIUM`);
  db = await createTestDatabase();
  const tenant = await makeTenant(db.sql, { name: 'Initech' });
  userId = await makeUser(db.sql);
  await addMember(db.sql, tenant, userId, 'admin');
  const supabaseUrl = await startGotrue('peter@initech.test');
  [api, browser] = await Promise.all([startApi(db, {}, { quiet: true }), chromium.launch({ executablePath: CHROMIUM, headless: true })]);
  dash = await serveDashboard({ projectUrl: api.server.url, supabaseUrl, anonKey: api.anonKey, port: await freePort() });
});

afterAll(async () => {
  await browser?.close();
  await dash?.stop();
  await new Promise((resolve) => (gotrue ? gotrue.close(resolve) : resolve(undefined)));
  await api?.stop();
  await db?.drop();
});

async function signInPage(password: string) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(dash.url);
  await page.fill('input[name="email"]', 'peter@initech.test');
  await page.fill('input[name="password"]', password);
  await page.click('button[type="submit"]');
  return page;
}

describe('hosted mode (Supabase Auth)', () => {
  it('signs in with email and password and shows the tenant', async () => {
    const page = await signInPage(PASSWORD);
    await page.waitForSelector('[data-view="overview"] .tiles');
    expect([await page.textContent('[data-view="overview"] h1'), seen.at(-1)?.apikey]).toEqual(['Initech', api.anonKey]);
    await page.context().close();
  });

  it('shows the Auth error for a wrong password and stays signed out', async () => {
    const page = await signInPage('wrong');
    await page.waitForSelector('.signin [role="alert"]');
    expect(await page.$('[data-view="overview"]')).toBeNull();
    await page.context().close();
  });
});
