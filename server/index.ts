/**
 * supaqueue/server: the queue for your backend and ops scripts, as the service role.
 *
 *   const queue = createQueue({ connection: process.env.SUPABASE_DB_URL! });
 *   const tenant = await queue.createTenant({ name: 'Acme' });
 *   await queue.enqueue({ tenant_id: tenant.id, type: 'email.send', payload: { to } });
 *
 * Server side only: it acts for every tenant. Frontends use supaqueue/client with the user's JWT.
 */
export { createQueue, Queue } from './queue.ts';
export { SupaqueueError, QueueConfigError, type ErrorName } from './errors.ts';
export type { ListJobsParams } from './jobs.ts';
export type {
  CallOptions, EnqueueResult, EnqueueSpec, Job, JobStatus, Json, ListJobsResult, MemberRole, QueueOptions, QuotaTier,
  QuotaTierLimits, Tenant, TenantLimits, TenantMember, UserLimits,
} from './types.ts';
