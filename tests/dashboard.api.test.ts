/**
 * The endpoints the dashboard uses, through the real `jobs` function: listing filters (time range,
 * payload key/value, search by id or idempotency key), GET /jobs/stats and /jobs/stats/viewer, and
 * POST /jobs/bulk (tenant admins only, bounded, dry run first).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userToken } from '../scripts/lib/keys.ts';
import { client, invoke, startApi, type Api } from './helpers/api.ts';
import { addMember, createTestDatabase, enqueueMany, makeSuperAdmin, makeTenant, makeUser, type TestDatabase } from './helpers/db.ts';

let db: TestDatabase;
let api: Api;
let tenantA: string;
let tenantB: string;
let admin: string;
let member: string;
let superAdmin: string;
let paid: string[];
let keyed: string;

const as = async (userId: string) => client(api, await userToken(userId));
const get = async (userId: string, path: string) => invoke(await as(userId), path, { method: 'GET' });
const ids = (body: { data: { id: string }[] }) => body.data.map((j) => j.id).sort();

beforeAll(async () => {
  db = await createTestDatabase();
  tenantA = await makeTenant(db.sql, { name: 'A' });
  tenantB = await makeTenant(db.sql, { name: 'B' });
  [admin, member, superAdmin] = await Promise.all([makeUser(db.sql), makeUser(db.sql), makeUser(db.sql)]);
  await addMember(db.sql, tenantA, admin, 'admin');
  await addMember(db.sql, tenantA, member, 'member');
  await makeSuperAdmin(db.sql, superAdmin);
  paid = await enqueueMany(db.sql, tenantA, 2, { type: 'api.mail', payload: { customer: { id: 42 }, plan: 'paid' } });
  await enqueueMany(db.sql, tenantA, 2, { type: 'api.mail', payload: { customer: { id: 7 }, plan: 'free' } });
  [keyed] = await enqueueMany(db.sql, tenantA, 1, { type: 'api.mail', idempotency_key: 'order-1001' });
  await enqueueMany(db.sql, tenantB, 2, { type: 'api.mail', payload: { customer: { id: 42 } } });
  api = await startApi(db, {}, { quiet: true });
});

afterAll(async () => {
  await api?.stop();
  await db?.drop();
});

describe('listing filters', () => {
  it('filters by a nested payload key and value (JSON containment)', async () => {
    const r = await get(member, `jobs?payload=${encodeURIComponent('{"customer":{"id":42}}')}`);
    expect(ids(r.body)).toEqual([...paid].sort());
  });

  it('refuses a payload filter that is not a JSON object', async () => {
    const r = await get(member, `jobs?payload=${encodeURIComponent('[1]')}`);
    expect([r.status, r.body.error.code]).toEqual([400, 'INVALID_ARGUMENT']);
  });

  it('finds a job by its idempotency key', async () => {
    const r = await get(member, 'jobs?search=order-1001');
    expect(ids(r.body)).toEqual([keyed]);
  });

  it('finds a job by its id', async () => {
    const r = await get(member, `jobs?search=${paid[0]}`);
    expect(ids(r.body)).toEqual([paid[0]]);
  });

  it('filters by creation time', async () => {
    const future = new Date(Date.now() + 3600_000).toISOString();
    const r = await get(member, `jobs?created_after=${encodeURIComponent(future)}`);
    expect(r.body.data).toEqual([]);
  });
});

describe('stats endpoints', () => {
  it("GET /jobs/stats counts the caller's tenant", async () => {
    const r = await get(member, `jobs/stats?tenant_id=${tenantA}`);
    expect(r.body.data.counts.by_status.pending).toBe(5);
  });

  it("GET /jobs/stats for another tenant is 404 TENANT_NOT_FOUND", async () => {
    const r = await get(member, `jobs/stats?tenant_id=${tenantB}`);
    expect([r.status, r.body.error.code]).toEqual([404, 'TENANT_NOT_FOUND']);
  });

  it('GET /jobs/stats/viewer lists the tenants with the caller\'s role', async () => {
    const r = await get(admin, 'jobs/stats/viewer');
    expect(r.body.data).toMatchObject({ super_admin: false, tenants: [{ id: tenantA, role: 'admin' }] });
  });

  it('GET /jobs/stats/viewer marks a super admin and lists every tenant', async () => {
    const r = await get(superAdmin, 'jobs/stats/viewer');
    expect([r.body.data.super_admin, r.body.data.tenants.map((t: { id: string }) => t.id).sort()]).toEqual([true, [tenantA, tenantB].sort()]);
  });
});

describe('POST /jobs/bulk', () => {
  it('a dry run counts the matching jobs and changes nothing', async () => {
    const r = await invoke(await as(admin), 'jobs/bulk', { method: 'POST', body: { action: 'cancel', dry_run: true, filter: { tenant_id: tenantA, payload: { plan: 'free' } } } });
    const [row] = await db.sql`select count(*)::int as n from public.job_queue where status = 'cancelled'`;
    expect([r.body.data.count, row.n]).toEqual([2, 0]);
  });

  it('a plain member is refused with 403 FORBIDDEN', async () => {
    const r = await invoke(await as(member), 'jobs/bulk', { method: 'POST', body: { action: 'cancel', filter: { tenant_id: tenantA } } });
    expect([r.status, r.body.error.code]).toEqual([403, 'FORBIDDEN']);
  });

  it('a status the action cannot apply to is 400 INVALID_ARGUMENT', async () => {
    const r = await invoke(await as(admin), 'jobs/bulk', { method: 'POST', body: { action: 'retry', filter: { status: 'pending' } } });
    expect([r.status, r.body.error.code]).toEqual([400, 'INVALID_ARGUMENT']);
  });

  it('a tenant admin cancels exactly the jobs matching the filter', async () => {
    const r = await invoke(await as(admin), 'jobs/bulk', { method: 'POST', body: { action: 'cancel', filter: { tenant_id: tenantA, payload: { customer: { id: 42 } } } } });
    const rows = await db.sql`select id from public.job_queue where status = 'cancelled' order by id`;
    expect([r.body.data.count, rows.map((x) => x.id)]).toEqual([2, [...paid].sort()]);
  });
});
