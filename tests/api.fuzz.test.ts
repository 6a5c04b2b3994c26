/**
 * Hostile input against the `jobs` function: malformed ids and bodies each get the right 4xx and
 * change nothing; then a seeded property-based fuzz (random methods, paths, headers, bodies and tokens)
 * must never produce a 5xx, never show tenant A's data to a member of tenant B, and never change
 * tenant A's jobs.
 */
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import type { SupabaseClient } from '@supabase/supabase-js';
import { beforeAll, describe, expect, test } from 'vitest';
import { userToken } from '../scripts/lib/keys.ts';
import { client, invoke, jobsSnapshot, raw, useApi } from './helpers/api.ts';
import { addMember, asService, enqueueMany, makeTenant, makeUser, useTestDatabase } from './helpers/db.ts';

const db = useTestDatabase();
const api = useApi(db);
let tenantA: string;
let aJobIds: string[];
let bob: SupabaseClient;
let bobToken: string;

beforeAll(async () => {
  tenantA = await makeTenant(db.sql);
  const tenantB = await makeTenant(db.sql);
  const alice = await makeUser(db.sql);
  const bobId = await makeUser(db.sql);
  await addMember(db.sql, tenantA, alice);
  await addMember(db.sql, tenantB, bobId);
  aJobIds = await enqueueMany(db.sql, tenantA, 3);
  // One cancelled job, so a retry by the wrong user would otherwise be allowed by its state.
  await asService(db.sql, (tx) => tx`select id from public.cancel_job(${aJobIds[2]})`);
  await enqueueMany(db.sql, tenantB, 2);
  bobToken = await userToken(bobId);
  bob = client(api, bobToken);
});
/** Tenant A's rows, compared before and after: bob may create jobs in B, but must never touch A. */
async function tenantASnapshot(): Promise<string> {
  const rows = await db.sql`select id, status, attempts, max_attempts, updated_at::text from public.job_queue where tenant_id = ${tenantA} order by id`;
  return JSON.stringify(rows);
}

describe('malformed job ids: 400 INVALID_ARGUMENT before any database work', () => {
  const ids = ['abc', '../x', `${randomUUID()}a`, '', '%00', `${randomUUID().slice(0, 35)}g`, "' or 1=1 --"];
  test.each(ids.flatMap((id) => [['GET', id, ''], ['POST', id, '/retry'], ['POST', id, '/cancel']] as const))(
    '%s /jobs/%j%s', async (method, id, action) => {
      const before = await jobsSnapshot(db);
      const r = await invoke(bob, `jobs/${encodeURIComponent(id)}${action}`, { method });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('INVALID_ARGUMENT');
      expect(await jobsSnapshot(db)).toBe(before);
    });
});

describe('bad bodies: the right 4xx and nothing inserted', () => {
  const json = { 'Content-Type': 'application/json' };
  const cases: [string, RequestInit, number, string][] = [
    ['invalid JSON', { headers: json, body: '{"type":' }, 400, 'INVALID_ARGUMENT'],
    ['JSON null', { headers: json, body: 'null' }, 400, 'INVALID_ARGUMENT'],
    ['a JSON array', { headers: json, body: '[{"type":"a.b"}]' }, 400, 'INVALID_ARGUMENT'],
    ['invalid UTF-8', { headers: json, body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }, 400, 'INVALID_ARGUMENT'],
    ['form content type', { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'type=a.b' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['no content type', { body: new Uint8Array(Buffer.from('{"type":"a.b"}')) }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['an oversized body', { headers: json, body: JSON.stringify({ type: 'a.b', payload: { x: 'y'.repeat(400_000) } }) }, 413, 'PAYLOAD_TOO_LARGE'],
    ['a negative delay', { headers: json, body: '{"type":"a.b","delay_ms":-5}' }, 400, 'INVALID_ARGUMENT'],
    ['an unknown field', { headers: json, body: '{"type":"a.b","tenant":"x"}' }, 400, 'INVALID_ARGUMENT'],
    ['a numeric type', { headers: json, body: '{"type":5}' }, 400, 'INVALID_ARGUMENT'],
    ['an impossible run_at', { headers: json, body: '{"type":"a.b","run_at":"2026-02-30T10:00:00Z"}' }, 400, 'INVALID_ARGUMENT'],
    ['max_attempts 0', { headers: json, body: '{"type":"a.b","max_attempts":0}' }, 400, 'INVALID_ARGUMENT'],
    ['a fractional priority', { headers: json, body: '{"type":"a.b","priority":1.5}' }, 400, 'INVALID_ARGUMENT'],
    ['a too long idempotency key', { headers: json, body: JSON.stringify({ type: 'a.b', idempotency_key: 'k'.repeat(256) }) }, 400, 'INVALID_ARGUMENT'],
    ['a 1e400 delay', { headers: json, body: '{"type":"a.b","delay_ms":1e400}' }, 400, 'INVALID_ARGUMENT'],
  ];
  test.each(cases)('POST /jobs with %s', async (_name, init, status, code) => {
    const before = await jobsSnapshot(db);
    const headers = new Headers(init.headers);
    headers.set('Authorization', `Bearer ${bobToken}`);
    const r = await raw(api, 'jobs', { ...init, method: 'POST', headers });
    expect(r.status).toBe(status);
    expect(r.body.error.code).toBe(code);
    expect(await jobsSnapshot(db)).toBe(before);
  });

  test('a chunked body over the limit (no Content-Length): 413', async () => {
    const chunk = new TextEncoder().encode(`{"type":"a.b","payload":{"x":"${'z'.repeat(64 * 1024)}`);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 6) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const r = await raw(api, 'jobs', {
      method: 'POST', body, duplex: 'half',
      headers: { Authorization: `Bearer ${bobToken}`, 'Content-Type': 'application/json' },
    } as RequestInit);
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });
});

// ---------------------------------------------------------------------------------------------------
// Property-based fuzz
// ---------------------------------------------------------------------------------------------------

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'] as const;
const printable = (max: number) => fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: max });

function arbitraryRequest() {
  const idArb = fc.oneof(
    fc.constantFrom(...aJobIds),
    fc.uuid(),
    printable(40),
    fc.constantFrom('', '..', 'schedules', '%2e%2e', 'null'),
  );
  const pathArb = fc.oneof(
    fc.constant('jobs'),
    idArb.map((id) => `jobs/${encodeURIComponent(id)}`),
    fc.tuple(idArb, fc.constantFrom('retry', 'cancel', 'x', '')).map(([id, a]) => `jobs/${encodeURIComponent(id)}/${a}`),
    fc.dictionary(fc.constantFrom('status', 'type', 'tenant_id', 'limit', 'cursor', 'x'), printable(30), { maxKeys: 4 })
      .map((q) => `jobs?${new URLSearchParams(q)}`),
    fc.constant(`jobs?tenant_id=${tenantA}`),
    printable(30).map((p) => `jobs/${encodeURIComponent(p)}/${encodeURIComponent(p)}`),
  );
  const bodyArb = fc.oneof(
    fc.constant(undefined),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.record({
      type: fc.oneof(fc.constant('a.b'), printable(20), fc.integer()),
      payload: fc.jsonValue(),
      tenant_id: fc.oneof(fc.constant(tenantA), fc.uuid(), printable(10)),
      delay_ms: fc.oneof(fc.integer(), fc.double()),
      extra_attempts: fc.integer({ min: -5, max: 2000 }),
      idempotency_key: printable(10),
    }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
    printable(200),
  );
  return fc.record({
    // Weighted towards what reaches the database: bob's token, GET/POST, JSON bodies.
    method: fc.oneof({ arbitrary: fc.constantFrom('GET', 'POST'), weight: 6 }, { arbitrary: fc.constantFrom(...METHODS), weight: 2 }),
    path: pathArb,
    body: bodyArb,
    contentType: fc.oneof({ arbitrary: fc.constant('application/json'), weight: 4 },
      fc.constantFrom('text/plain', 'application/json; charset=utf-8', 'application/vnd.api+json', undefined)),
    traceId: fc.option(printable(80), { nil: undefined }),
    token: fc.oneof({ arbitrary: fc.constant('bob'), weight: 8 }, fc.constantFrom('garbage', 'none')),
  });
}

test('fuzz (seeded): never a 5xx, never tenant A\'s data, tenant A\'s jobs unchanged', async () => {
  const before = await tenantASnapshot();
  const secrets = [tenantA, ...aJobIds];
  await fc.assert(
    fc.asyncProperty(arbitraryRequest(), async (req) => {
      const headers = new Headers();
      if (req.token === 'bob') headers.set('Authorization', `Bearer ${bobToken}`);
      if (req.token === 'garbage') headers.set('Authorization', 'Bearer x.y.z');
      if (req.contentType) headers.set('Content-Type', req.contentType);
      if (req.traceId !== undefined) headers.set('x-trace-id', req.traceId);
      const hasBody = req.body !== undefined && !['GET', 'HEAD'].includes(req.method);
      const r = await raw(api, req.path, { method: req.method, headers, body: hasBody ? req.body : undefined });
      expect(r.status, `${req.method} ${req.path}`).toBeLessThan(500);
      const data = JSON.stringify((r.body as { data?: unknown } | null)?.data ?? null);
      for (const secret of secrets) expect(data).not.toContain(secret);
    }),
    { seed: 20261123, numRuns: 250, endOnFailure: true },
  );
  expect(await tenantASnapshot()).toBe(before);
});
