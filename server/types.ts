/**
 * Shapes of supaqueue/server. One vocabulary with the SQL API, the HTTP API and the client helpers:
 * snake_case fields, jobs exactly as the jobs API returns them (client/types.ts), tenants and members
 * as their rows (the generated database types, so a limit a migration adds shows up here by itself).
 * Timestamps are ISO 8601 strings with microseconds, as Postgres prints them.
 */
import type { Sql, TransactionSql } from 'postgres';
import type { Job, JobStatus, Json } from '../client/types.ts';
import type { Database } from '../supabase/functions/_supaqueue/database.types.ts';

export type { Job, JobStatus, Json };

type Tables = Database['public']['Tables'];
export type Tenant = Tables['tenants']['Row'];
export type TenantMember = Tables['tenant_members']['Row'];
export type MemberRole = 'member' | 'admin';
/** A quota tier (public.quota_tiers): per-user limits of the tenants and members on it; null = no limit. */
export type QuotaTier = Tables['quota_tiers']['Row'];
/** The limits of set_quota_tier: any of them; null removes a limit, absent = unchanged. */
export type QuotaTierLimits = Partial<Pick<QuotaTier, 'max_active_jobs_per_user' | 'max_payload_bytes' | 'max_attempts' | 'description'>>;
/** A user's effective limits in a tenant and usage (public.my_limits, set_member_tier). */
export type { UserLimits } from '../client/types.ts';
/** A tenant's limits: every max_* column of public.tenants; null = unlimited, absent = unchanged. */
export type TenantLimits = { [K in keyof Tenant as K extends `max_${string}` ? K : never]?: Tenant[K] };

/** One job to enqueue: the fields of enqueue_jobs' specs (README, "The SQL API"). The engine validates them. */
export interface EnqueueSpec {
  tenant_id: string;
  /** JOB_TYPE_PATTERN (supabase/functions/_supaqueue/contract.ts, the engine's supaqueue.job_type_pattern()). */
  type: string;
  /** A JSON object or array, at most 256 KiB. */
  payload?: { [key: string]: Json | undefined } | Json[];
  /** PRIORITY (contract.ts): -100..100, higher runs first. */
  priority?: number;
  /** When it may run; or use delay_ms. */
  run_at?: Date | string;
  delay_ms?: number;
  /** MAX_ATTEMPTS (contract.ts): 1..1000, default 3. */
  max_attempts?: number;
  /** One job per (tenant, key): a repeat returns the existing job with created = false. */
  idempotency_key?: string;
  trace_id?: string;
  actor_id?: string;
  request_id?: string;
  /**
   * The user you enqueue on behalf of (auth.users id): the job is theirs (job.submitted_by, their "my
   * jobs") and counts against their tier's active-job limit (CONCURRENT_JOB_LIMIT). Left out: nobody's.
   */
  submitted_by?: string;
  backoff_base_ms?: number;
  backoff_max_ms?: number;
}

export interface EnqueueResult {
  id: string;
  /** false when idempotency_key matched an existing job (whose id is returned). */
  created: boolean;
}

export interface ListJobsResult {
  jobs: Job[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

export interface QueueOptions {
  /**
   * Postgres URL (SUPABASE_DB_URL / DATABASE_URL) or an existing postgres.js client; it needs the
   * privileges of `role`. Server side only: never ship this URL to a browser.
   */
  connection: string | Sql;
  /** As the worker's option: 'auto' (default) detects Supavisor from the URL (6543 = transaction mode). */
  pooler?: 'auto' | 'none' | 'session' | 'transaction';
  /** The role calls run as. Default 'service_role'; null: the login role as it is. */
  role?: string | null;
  /** Pool size when the queue opens the connection itself. Default 5. */
  maxConnections?: number;
  /** Default 'supaqueue-server'. */
  applicationName?: string;
}

/** Where a call runs: pass the `tx` of your own sql.begin() to enqueue in your transaction. */
export interface CallOptions {
  sql?: TransactionSql;
}
