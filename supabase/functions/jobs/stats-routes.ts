/**
 * The /jobs/stats router (mounted by index.ts at /jobs/stats, after auth and rate limiting): what the
 * dashboard's overview needs, each in one transaction as the caller.
 *
 *   GET /jobs/stats           jobs by status and type, running now, oldest waiting, completed/failed per
 *                             minute (hours=1) or per 10 minutes (hours=24), the tenant's limits and usage;
 *                             tenant_id omitted: the caller's tenants (super admins: all tenants)
 *   GET /jobs/stats/viewer    who is signed in: super admin or not, and the visible tenants with the
 *                             caller's role in each (at most 500, by name)
 *
 * The numbers come from public.job_stats (migration 20261130000400): counters and a per-minute rollup
 * kept by triggers, plus index-bounded probes, so a refresh never counts a tenant's history.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { Db } from '../_supaqueue/db.ts';
import { ApiError, jsonOk, jsonOkText, type AppEnv } from '../_supaqueue/http.ts';
import { parseInput, Uuid } from './schemas.ts';

export interface StatsRouterDeps {
  db: Db;
  maxBodyBytes: number;
}

const StatsQuery = z.strictObject({
  tenant_id: Uuid.optional(),
  hours: z.enum(['1', '24']).optional(),
  forceFunctionRegion: z.string().optional(),
});

const ViewerQuery = z.strictObject({ forceFunctionRegion: z.string().optional() });

const MAX_VIEWER_TENANTS = 500;

export function createStatsRouter({ db }: StatsRouterDeps): Hono<AppEnv> {
  const r = new Hono<AppEnv>();

  r.get('/', async (c) => {
    const q = parseInput(StatsQuery, c.req.query());
    const [row] = await db.asUser(c.get('user'), (tx) =>
      tx`select public.job_stats(${q.tenant_id ?? null}::uuid, ${Number(q.hours ?? 1)}::integer)::text as json`);
    return jsonOkText(c, row.json as string);
  });

  r.get('/viewer', async (c) => {
    parseInput(ViewerQuery, c.req.query());
    const user = c.get('user');
    const { superAdmin, tenants } = await db.asUser(user, async (tx) => {
      const [{ is_super }] = await tx`select supaqueue.is_super_admin() as is_super`;
      const rows = await tx`
        select t.id, t.name, m.role from public.tenants t
        left join public.tenant_members m on m.tenant_id = t.id and m.user_id = (select auth.uid())
        order by t.name, t.id limit ${MAX_VIEWER_TENANTS + 1}`;
      return { superAdmin: is_super as boolean, tenants: rows };
    });
    return jsonOk(c, {
      user_id: user.id,
      email: (user.claims as { email?: string }).email ?? null,
      super_admin: superAdmin,
      tenants: tenants.slice(0, MAX_VIEWER_TENANTS).map((t) => ({ id: t.id, name: t.name, role: t.role ?? null })),
      more_tenants: tenants.length > MAX_VIEWER_TENANTS,
    });
  });

  const methodNotAllowed = (): never => {
    throw new ApiError('METHOD_NOT_ALLOWED', 'use GET', { Allow: 'GET' });
  };
  r.all('/', methodNotAllowed);
  r.all('/viewer', methodNotAllowed);
  return r;
}
