/**
 * The server API's management calls: one statement each on the SQL management functions
 * (supabase/migrations/*_supaqueue_admin.sql), which hold every rule; rows come back as JSON, with
 * timestamps as Postgres prints them.
 */
import type { Sql } from 'postgres';
import type { MemberRole, QuotaTier, QuotaTierLimits, Tenant, TenantLimits, TenantMember, UserLimits } from './types.ts';

const json = (v: unknown) => JSON.stringify(v);

export async function createTenant(q: Sql, t: { name: string; limits?: TenantLimits; id?: string }): Promise<Tenant> {
  const [r] = await q<{ row: Tenant }[]>`
    select to_jsonb(t) as row from public.create_tenant(${t.name}, ${json(t.limits ?? {})}::text::jsonb, ${t.id ?? null}::uuid) t`;
  return r.row;
}

export async function renameTenant(q: Sql, tenantId: string, name: string): Promise<Tenant> {
  const [r] = await q<{ row: Tenant }[]>`select to_jsonb(t) as row from public.rename_tenant(${tenantId}::uuid, ${name}) t`;
  return r.row;
}

export async function setTenantLimits(q: Sql, tenantId: string, limits: TenantLimits): Promise<Tenant> {
  const [r] = await q<{ row: Tenant }[]>`
    select to_jsonb(t) as row from public.set_tenant_limits(${tenantId}::uuid, ${json(limits)}::text::jsonb) t`;
  return r.row;
}

export async function deleteTenant(q: Sql, tenantId: string, force: boolean): Promise<Tenant> {
  const [r] = await q<{ row: Tenant }[]>`select to_jsonb(t) as row from public.delete_tenant(${tenantId}::uuid, ${force}) t`;
  return r.row;
}

export async function addMember(q: Sql, tenantId: string, userId: string, role: MemberRole): Promise<TenantMember> {
  const [r] = await q<{ row: TenantMember }[]>`
    select to_jsonb(m) as row from public.add_tenant_member(${tenantId}::uuid, ${userId}::uuid, ${role}) m`;
  return r.row;
}

export async function removeMember(q: Sql, tenantId: string, userId: string): Promise<boolean> {
  const [r] = await q<{ ok: boolean }[]>`select public.remove_tenant_member(${tenantId}::uuid, ${userId}::uuid) as ok`;
  return r.ok;
}

export async function setSuperAdmin(q: Sql, userId: string, grant: boolean): Promise<boolean> {
  const [r] = grant
    ? await q<{ ok: boolean }[]>`select public.grant_super_admin(${userId}::uuid) as ok`
    : await q<{ ok: boolean }[]>`select public.revoke_super_admin(${userId}::uuid) as ok`;
  return r.ok;
}

export async function setQuotaTier(q: Sql, name: string, limits: QuotaTierLimits): Promise<QuotaTier> {
  const [r] = await q<{ row: QuotaTier }[]>`select to_jsonb(t) as row from public.set_quota_tier(${name}, ${json(limits)}::text::jsonb) t`;
  return r.row;
}

export async function setTenantTier(q: Sql, tenantId: string, tier: string | null): Promise<Tenant> {
  const [r] = await q<{ row: Tenant }[]>`select to_jsonb(t) as row from public.set_tenant_tier(${tenantId}::uuid, ${tier}) t`;
  return r.row;
}

export async function setMemberTier(q: Sql, tenantId: string, userId: string, tier: string | null): Promise<UserLimits> {
  const [r] = await q<{ row: UserLimits }[]>`select public.set_member_tier(${tenantId}::uuid, ${userId}::uuid, ${tier}) as row`;
  return r.row;
}
