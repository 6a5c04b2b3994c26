/**
 * createQueue: the queue for backends and ops scripts, as the service role, through the same SQL
 * functions as everyone else. Each method is one call; errors of the queue's rules are SupaqueueError
 * with the API's codes. Pass `{ sql: tx }` (or use withTransaction(tx)) to run inside your own
 * transaction: the job is enqueued, or not, together with your data.
 */
import type { Sql, TransactionSql } from 'postgres';
import { z } from 'zod';
import { openConnection, type Connection, type Executor } from './connection.ts';
import { mapErrors, QueueConfigError } from './errors.ts';
import * as jobs from './jobs.ts';
import * as tenants from './tenants.ts';
import type {
  CallOptions, EnqueueResult, EnqueueSpec, Job, ListJobsResult, MemberRole, QueueOptions, QuotaTier, QuotaTierLimits, Tenant,
  TenantLimits, TenantMember, UserLimits,
} from './types.ts';

const isSql = (v: unknown): v is Sql =>
  typeof v === 'function' && typeof (v as Sql).begin === 'function' && typeof (v as Sql).end === 'function';

const optionsSchema = z.strictObject({
  connection: z.union([z.string().min(1), z.custom<Sql>(isSql, 'expected a URL or a postgres.js client')]),
  pooler: z.enum(['auto', 'none', 'session', 'transaction']).default('auto'),
  role: z.string().regex(/^[a-z_][a-z0-9_]*$/).nullable().default('service_role'),
  maxConnections: z.number().int().min(1).max(100).default(5),
  applicationName: z.string().min(1).default('supaqueue-server'),
});

export class Queue {
  /** @internal use createQueue */
  constructor(private readonly conn: Connection, private readonly exec: Executor, private readonly root: boolean) {}

  /** The same queue, every call run inside tx (your sql.begin transaction) as the service role. */
  withTransaction(tx: TransactionSql): Queue {
    return new Queue(this.conn, this.conn.inTransaction(tx), false);
  }

  private call<T>(fn: (q: Sql) => Promise<T>, opts?: CallOptions): Promise<T> {
    const exec = opts?.sql ? this.conn.inTransaction(opts.sql) : this.exec;
    return mapErrors(() => exec.run(fn));
  }

  /** Enqueues one job; returns its id, and created = false when idempotency_key matched an existing job. */
  async enqueue(spec: EnqueueSpec, opts?: CallOptions): Promise<EnqueueResult> {
    const [r] = await this.call((q) => jobs.enqueueJobs(q, [spec]), opts);
    return r;
  }

  /** Enqueues up to 10,000 jobs in one call, all or nothing; results in input order. */
  enqueueMany(specs: readonly EnqueueSpec[], opts?: CallOptions): Promise<EnqueueResult[]> {
    return this.call((q) => jobs.enqueueJobs(q, specs), opts);
  }

  /** The job (any tenant's), or null. */
  getJob(id: string): Promise<Job | null> {
    return this.call((q) => jobs.getJob(q, id));
  }

  /** Newest first; filter by tenant_id, status, type; page with nextCursor. */
  listJobs(params: jobs.ListJobsParams = {}): Promise<ListJobsResult> {
    return this.call((q) => jobs.listJobs(q, params));
  }

  cancel(id: string): Promise<Job> {
    return this.call((q) => jobs.cancelJob(q, id));
  }

  /** Retries a failed or cancelled job; extraAttempts grants more attempts to one that used them all. */
  retry(id: string, options: { extraAttempts?: number } = {}): Promise<Job> {
    return this.call((q) => jobs.retryJob(q, id, options.extraAttempts ?? 0));
  }

  createTenant(tenant: { name: string; limits?: TenantLimits; id?: string }): Promise<Tenant> {
    return this.call((q) => tenants.createTenant(q, tenant));
  }

  renameTenant(tenantId: string, name: string): Promise<Tenant> {
    return this.call((q) => tenants.renameTenant(q, tenantId, name));
  }

  /** Sets the given limits (null = unlimited); limits left out keep their value. */
  setTenantLimits(tenantId: string, limits: TenantLimits): Promise<Tenant> {
    return this.call((q) => tenants.setTenantLimits(q, tenantId, limits));
  }

  /** Deletes the tenant with its members, schedules and jobs; INVALID_STATE while it has active jobs, unless force. */
  deleteTenant(tenantId: string, options: { force?: boolean } = {}): Promise<Tenant> {
    return this.call((q) => tenants.deleteTenant(q, tenantId, options.force ?? false));
  }

  /** Adds the user to the tenant, or changes their role. */
  addMember(tenantId: string, userId: string, role: MemberRole = 'member'): Promise<TenantMember> {
    return this.call((q) => tenants.addMember(q, tenantId, userId, role));
  }

  /** Removes the user from the tenant (at once); false when they were not a member. */
  removeMember(tenantId: string, userId: string): Promise<boolean> {
    return this.call((q) => tenants.removeMember(q, tenantId, userId));
  }

  /** true when the user was not a super admin before. */
  grantSuperAdmin(userId: string): Promise<boolean> {
    return this.call((q) => tenants.setSuperAdmin(q, userId, true));
  }

  /** true when the user was a super admin before. */
  revokeSuperAdmin(userId: string): Promise<boolean> {
    return this.call((q) => tenants.setSuperAdmin(q, userId, false));
  }

  /** Creates a quota tier or changes its limits (null removes one); takes effect at once for its users. */
  setQuotaTier(name: string, limits: QuotaTierLimits): Promise<QuotaTier> {
    return this.call((q) => tenants.setQuotaTier(q, name, limits));
  }

  /** Puts the tenant on a tier (null: none, no per-user limits). */
  setTenantTier(tenantId: string, tier: string | null): Promise<Tenant> {
    return this.call((q) => tenants.setTenantTier(q, tenantId, tier));
  }

  /** Gives a member a personal tier in the tenant (null: the tenant's again); returns their limits and usage. */
  setMemberTier(tenantId: string, userId: string, tier: string | null): Promise<UserLimits> {
    return this.call((q) => tenants.setMemberTier(q, tenantId, userId, tier));
  }

  /** Closes the pool the queue opened (a client passed in, or a transaction, is left to its owner). */
  async end(): Promise<void> {
    if (this.root) await this.conn.end();
  }
}

/** Validates the options (QueueConfigError lists every problem) and connects lazily, on the first call. */
export function createQueue(options: QueueOptions): Queue {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw new QueueConfigError(`invalid queue options:\n${z.prettifyError(parsed.error)}`);
  let conn: Connection;
  try {
    conn = openConnection(parsed.data);
  } catch (e) {
    throw new QueueConfigError(`invalid queue options:\n  - connection: ${(e as Error).message}`);
  }
  return new Queue(conn, conn, true);
}
