/**
 * The worker's options: one zod schema, read once by createWorker, with every default documented here.
 * Cross-field defaults (batchSize, heartbeatIntervalMs, pooler 'auto', listen 'auto') are resolved once
 * in resolveOptions, so the rest of the worker reads plain values.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { Sql } from 'postgres';
import { z } from 'zod';
import type { Handler } from './types.ts';

const isSql = (v: unknown): v is Sql =>
  typeof v === 'function' && typeof (v as Sql).begin === 'function' && typeof (v as Sql).end === 'function';
const isLogger = (v: unknown): v is Logger =>
  typeof v === 'object' && v !== null && typeof (v as Logger).child === 'function' && typeof (v as Logger).info === 'function';

export const optionsSchema = z.strictObject({
  /**
   * Postgres URL (SUPABASE_DB_URL / DATABASE_URL), or an existing postgres.js client. The worker needs
   * the privileges of `role` (see worker/README.md: direct connection vs Supabase's poolers).
   */
  connection: z.union([z.string().min(1), z.custom<Sql>(isSql, 'expected a URL or a postgres.js client')]),
  /** Job type -> async handler. Its return value is stored as the job's result. */
  handlers: z.record(z.string(), z.custom<Handler>((v) => typeof v === 'function', 'each handler must be a function'))
    .refine((h) => Object.keys(h).length > 0, 'at least one handler is required'),
  /** Handlers running at once. Default 10. */
  concurrency: z.number().int().min(1).max(1000).default(10),
  /** Most jobs taken per claim; a claim only ever asks for free slots. Default: concurrency. */
  batchSize: z.number().int().min(1).max(1000).optional(),
  /** Lease per claim/heartbeat. Short, so a crashed worker's jobs run again within ~2 s. Default 1.5. */
  leaseSeconds: z.number().min(0.1).max(86400).default(1.5),
  /** One heartbeat_jobs call for all held jobs per interval. Default leaseSeconds*1000/3. */
  heartbeatIntervalMs: z.number().int().min(10).optional(),
  /** Idle polling: the correctness path (NOTIFY is only a hint). Default 500. */
  pollIntervalMs: z.number().int().min(10).max(3_600_000).default(500),
  /** LISTEN supaqueue_jobs for wake-ups. 'auto' (default): yes unless through a transaction pooler. */
  listen: z.union([z.boolean(), z.literal('auto')]).default('auto'),
  /** On stop(), how long in-flight handlers may finish before they are aborted and released. Default 10000. */
  shutdownGraceMs: z.number().int().min(0).default(10_000),
  /** run_maintenance every this many ms (false: never, e.g. when the scheduler function runs it). Default 60000. */
  maintenanceIntervalMs: z.union([z.number().int().min(100), z.literal(false)]).default(60_000),
  /** Finished jobs older than this are purged by maintenance (a Postgres interval). Default '7 days'. */
  retention: z.string().min(1).default('7 days'),
  /** Recorded on claimed jobs and in logs. Default hostname-pid-random. */
  workerId: z.string().min(1).max(200).optional(),
  /** Job types to claim; null (default) claims every type, and types without a handler fail permanently. */
  types: z.array(z.string().regex(/^[a-z][a-z0-9_.:-]{0,127}$/)).min(1).nullable().default(null),
  /** A handler running longer is aborted and its attempt failed (retryable); false: no limit. Default 15 min. */
  jobTimeoutMs: z.union([z.number().int().min(1), z.literal(false)]).default(900_000),
  /**
   * How the URL reaches Postgres. 'none': directly (role via a startup parameter). 'session' /
   * 'transaction': Supabase's Supavisor (or PgBouncer) in that mode: role set per transaction, and in
   * transaction mode no prepared statements and no LISTEN. 'auto' (default): *.pooler.supabase.com or
   * port 6543 -> transaction (6543) / session (otherwise); anything else -> none.
   */
  pooler: z.enum(['auto', 'none', 'session', 'transaction']).default('auto'),
  /** The role the worker acts as (it needs EXECUTE on the worker RPCs). null: use the login role as is. Default 'service_role'. */
  role: z.string().regex(/^[a-z_][a-z0-9_]*$/).nullable().default('service_role'),
  /** Pool size when the worker opens the connection itself (one more is used for LISTEN). Default 5. */
  maxConnections: z.number().int().min(2).max(100).default(5),
  /** Settles (complete/fail/release) are batched: flushed this long after the first one queues. Default 5. */
  settleIntervalMs: z.number().int().min(0).max(1000).default(5),
  /** ... or as soon as this many are queued. Default 100. */
  settleBatchSize: z.number().int().min(1).max(1000).default(100),
  /** pino logger; the worker logs JSON through it. Default pino() (info, stdout). */
  logger: z.custom<Logger>(isLogger, 'expected a pino logger').optional(),
});

/** What createWorker accepts. */
export type WorkerOptions = z.input<typeof optionsSchema>;

type Parsed = z.output<typeof optionsSchema>;

/** Options after defaults and 'auto' values are resolved. */
export interface ResolvedOptions extends Omit<Parsed, 'batchSize' | 'heartbeatIntervalMs' | 'workerId' | 'logger' | 'pooler' | 'listen'> {
  batchSize: number;
  heartbeatIntervalMs: number;
  workerId: string;
  logger: Logger;
  pooler: 'none' | 'session' | 'transaction';
  listen: boolean;
  /** How the role is assumed: startup parameter (direct, own connection), per transaction, or not at all. */
  roleVia: 'startup' | 'transaction' | 'none';
}

/** Thrown by createWorker for invalid options; the message lists every problem. */
export class WorkerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerConfigError';
  }
}

/** Supabase's Supavisor: *.pooler.supabase.com; transaction mode listens on 6543, session mode on 5432. */
export function detectPooler(host: string, port: number): 'none' | 'session' | 'transaction' {
  if (port === 6543) return 'transaction';
  if (host.endsWith('.pooler.supabase.com')) return 'session';
  return 'none';
}

function hostPort(connection: string | Sql): { host: string; port: number } {
  if (typeof connection === 'string') {
    const u = new URL(connection);
    return { host: u.hostname, port: Number(u.port || 5432) };
  }
  return { host: String(connection.options.host?.[0] ?? ''), port: Number(connection.options.port?.[0] ?? 5432) };
}

/** Validates options once and resolves every default; throws WorkerConfigError listing all problems. */
export function resolveOptions(input: WorkerOptions): ResolvedOptions {
  const parsed = optionsSchema.safeParse(input);
  if (!parsed.success) throw new WorkerConfigError(`invalid worker options:\n${z.prettifyError(parsed.error)}`);
  const o = parsed.data;
  const problems: string[] = [];
  const heartbeatIntervalMs = o.heartbeatIntervalMs ?? Math.max(10, Math.floor((o.leaseSeconds * 1000) / 3));
  // A heartbeat at or past the lease lets every held job expire between two beats.
  if (heartbeatIntervalMs >= o.leaseSeconds * 1000) problems.push('heartbeatIntervalMs must be shorter than leaseSeconds * 1000');
  let pooler: ResolvedOptions['pooler'] = 'none';
  if (o.pooler !== 'auto') pooler = o.pooler;
  else {
    try {
      const { host, port } = hostPort(o.connection);
      pooler = detectPooler(host, port);
    } catch {
      problems.push('connection is not a valid postgres URL');
    }
  }
  // Supavisor/PgBouncer transaction mode hands each transaction to any server connection: a LISTEN
  // would be registered on a connection we do not keep, so notifications never arrive.
  if (o.listen === true && pooler === 'transaction') problems.push('listen: true cannot work through a transaction pooler; use a direct or session connection for LISTEN, or listen: false');
  if (problems.length) throw new WorkerConfigError(`invalid worker options:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  const roleVia: ResolvedOptions['roleVia'] = o.role === null ? 'none'
    : typeof o.connection === 'string' && pooler === 'none' ? 'startup' : 'transaction';
  return {
    ...o,
    batchSize: Math.min(o.batchSize ?? o.concurrency, o.concurrency),
    heartbeatIntervalMs,
    workerId: o.workerId ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    logger: o.logger ?? pino(),
    pooler,
    listen: o.listen === 'auto' ? pooler !== 'transaction' : o.listen,
    roleVia,
  };
}
