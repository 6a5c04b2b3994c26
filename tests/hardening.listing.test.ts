/**
 * Hardening (issue 16, item 4): listing jobs costs what the caller may see, not what other tenants
 * store. The query is the jobs API's listing (supabase/functions/jobs/queries.ts) run as PostgREST
 * runs a request; EXPLAIN shows the plan: no sequential scan of job_queue, and a bounded number of
 * buffers with 50,000 rows of another tenant in the table.
 */
import type { TransactionSql } from 'postgres';
import { beforeAll, expect, test } from 'vitest';
import { addMember, asUser, enqueueMany, makeSuperAdmin, makeTenant, makeUser, useTestDatabase } from './helpers/db.ts';
import { JOB_JSON as JOB_OBJECT } from '../supabase/functions/_supaqueue/contract.ts';

const FOREIGN_ROWS = 50_000;
// The API's JOB_JSON itself; the listing orders and pages exactly like listJobs.
const JOB_JSON = `${JOB_OBJECT} as job`;

const db = useTestDatabase();
let mine: string;
let foreign: string;
const users = { member: '', nobody: '', superAdmin: '' };

beforeAll(async () => {
  mine = await makeTenant(db.sql);
  foreign = await makeTenant(db.sql);
  for (const k of Object.keys(users) as (keyof typeof users)[]) users[k] = await makeUser(db.sql);
  await addMember(db.sql, mine, users.member);
  await makeSuperAdmin(db.sql, users.superAdmin);
  await enqueueMany(db.sql, mine, 20);
  await db.sql`
    insert into public.job_queue (tenant_id, type, status, payload, completed_at, created_at)
    select ${foreign}, 'bulk.job', 'completed', jsonb_build_object('i', g), now(), now() - g * interval '1 second'
    from generate_series(1, ${FOREIGN_ROWS}) g`;
  await db.sql`vacuum analyze public.job_queue`;
});

interface PlanNode { 'Node Type': string; 'Relation Name'?: string; 'Shared Hit Blocks': number; 'Shared Read Blocks': number; Plans?: PlanNode[] }

function nodes(p: PlanNode): PlanNode[] {
  return [p, ...(p.Plans ?? []).flatMap(nodes)];
}

/**
 * EXPLAIN (ANALYZE, BUFFERS) of the API's listing as the user, after one warm-up run of the same query.
 * withTenantSet: the listing as the API runs it (see the report for queries.ts): the caller's tenant
 * set, read first with supaqueue.visible_tenant_ids(), bound as `j.tenant_id = any($n::uuid[])`, so the
 * planner sees the real set (an RLS initplan is opaque to it: with one tenant holding nearly every
 * row, the statistics make an unknown set look like the whole table). Without it: a direct PostgREST
 * read, where only the policy restricts the rows.
 */
async function listingPlan(user: string, tenantFilter: string | null, withTenantSet: boolean): Promise<{ plan: PlanNode; rows: number }> {
  return asUser(db.sql, user, async (tx: TransactionSql) => {
    const params: unknown[] = [];
    const where: string[] = [];
    if (withTenantSet) {
      const [v] = await tx`select array(select supaqueue.visible_tenant_ids()) as ids`;
      params.push(v.ids);
      where.push(`j.tenant_id = any ($${params.length}::uuid[])`);
    }
    if (tenantFilter) {
      params.push(tenantFilter);
      where.push(`j.tenant_id = $${params.length}::uuid`);
    }
    params.push(21);
    const q = `select ${JOB_JSON} from public.job_queue j
               ${where.length ? `where ${where.join(' and ')}` : ''}
               order by j.created_at desc, j.id desc limit $${params.length}`;
    const rows = await tx.unsafe(q, params as never[]);
    const [r] = await tx.unsafe(`explain (analyze, buffers, format json) ${q}`, params as never[]);
    return { plan: (r['QUERY PLAN'] as { Plan: PlanNode }[])[0].Plan, rows: rows.length };
  });
}

function expectIndexedAndBounded(plan: PlanNode) {
  const scans = nodes(plan).filter((n) => n['Relation Name'] === 'job_queue');
  expect(scans.map((n) => n['Node Type'])).not.toContain('Seq Scan');
  expect(plan['Shared Hit Blocks'] + plan['Shared Read Blocks']).toBeLessThan(100);
}

test('the attack, policy alone: a member asking for another tenant\'s jobs (as a direct PostgREST read) does not walk that tenant\'s rows', async () => {
  const { plan, rows } = await listingPlan(users.member, foreign, false);
  expect(rows).toBe(0);
  expectIndexedAndBounded(plan);
});

test('the policy alone keeps a super admin\'s listing of one tenant on its index, stopping after the page', async () => {
  const { plan, rows } = await listingPlan(users.superAdmin, foreign, false);
  expect(rows).toBe(21);
  expectIndexedAndBounded(plan);
});

test('API listing, a signed-in user with no tenant (GET /jobs): no other tenant\'s rows are read', async () => {
  const { plan, rows } = await listingPlan(users.nobody, null, true);
  expect(rows).toBe(0);
  expectIndexedAndBounded(plan);
});

test('API listing, a member asking for another tenant (GET /jobs?tenant_id=...): nothing read', async () => {
  const { plan, rows } = await listingPlan(users.member, foreign, true);
  expect(rows).toBe(0);
  expectIndexedAndBounded(plan);
});

test('API listing, a member\'s own jobs (GET /jobs): only their tenant\'s index range', async () => {
  const { plan, rows } = await listingPlan(users.member, null, true);
  expect(rows).toBe(20);
  expectIndexedAndBounded(plan);
});
