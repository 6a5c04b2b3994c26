/**
 * The worker's options: one zod schema, read once by createWorker, with every default documented here.
 * Cross-field defaults (types, batchSize, heartbeatIntervalMs, call deadlines, pooler 'auto', listen
 * 'auto') are resolved once in resolveOptions, so the rest of the worker reads plain values.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { Sql } from 'postgres';
import { z } from 'zod';
import type { CallKind, DataSource } from './source.ts';
import type { Handler } from './types.ts';
import { HEARTBEAT_INTERVAL_MS, JOB_TYPE_RE, LEASE_SECONDS } from '../supabase/functions/_supaqueue/contract.ts';

const isSql = (v: unknown): v is Sql =>
  typeof v === 'function' && typeof (v as Sql).begin === 'function' && typeof (v as Sql).end === 'function';
const isLogger = (v: unknown): v is Logger =>
  typeof v === 'object' && v !== null && typeof (v as Logger).child === 'function' && typeof (v as Logger).info === 'function';
const isDataSource = (v: unknown): v is DataSource =>
  typeof v === 'object' && v !== null && ['claim', 'heartbeat', 'complete', 'fail', 'release'].every((m) => typeof (v as Record<string, unknown>)[m] === 'function');

/** The SQL's job type format (supaqueue.job_type_pattern()): a handler for any other key could never run. */
const JOB_TYPE = JOB_TYPE_RE;

/** pino's levels; the CLI validates WORKER_LOG_LEVEL with this same schema. */
export const logLevelSchema = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** The lease is fenced this fraction of its length before it ends: the time a handler gets to stop. */
const LEASE_MARGIN_FRACTION = 0.1;
/** Deadlines of the calls that may take longer than the others (the probe includes connecting). */
const PROBE_DEADLINE_MS = 10_000;
const MAINTENANCE_DEADLINE_MS = 60_000;

export const optionsSchema = z.strictObject({
  /**
   * Postgres URL (SUPABASE_DB_URL / DATABASE_URL), or an existing postgres.js client. The worker needs
   * the privileges of `role` (see worker/README.md: direct connection vs Supabase's poolers).
   */
  connection: z.union([z.string().min(1), z.custom<Sql>(isSql, 'expected a URL or a postgres.js client')]).optional(),
  /**
   * Instead of `connection`: where jobs come from (claim/heartbeat/complete/fail/release, see
   * worker/source.ts). For tests and custom transports; worker/db.ts is the Postgres one.
   */
  dataSource: z.custom<DataSource>(isDataSource, 'expected an object with claim, heartbeat, complete, fail and release methods').optional(),
  /** Job type -> async handler. Its return value is stored as the job's result. Keys are job types. */
  handlers: z.record(z.string(), z.custom<Handler>((v) => typeof v === 'function', 'each handler must be a function'))
    .refine((h) => Object.keys(h).length > 0, 'at least one handler is required'),
  /** Handlers running at once. Default 10. */
  concurrency: z.number().int().min(1).max(1000).default(10),
  /** Most jobs taken per claim; a claim only ever asks for free slots. Default: concurrency. */
  batchSize: z.number().int().min(1).max(1000).optional(),
  /**
   * Lease per claim/heartbeat. A SIGKILLed worker's jobs run again about one lease later; a worker that
   * cannot renew a lease (stalled, cut off) aborts the job itself 10% of the lease before it ends.
   * Long enough to ride out ordinary stalls (GC, CPU starvation, a network blip). Default 15
   * (LEASE_SECONDS.default, the engine's supaqueue.default_lease_seconds()).
   */
  leaseSeconds: z.number().min(LEASE_SECONDS.min).max(LEASE_SECONDS.max).default(LEASE_SECONDS.default),
  /**
   * One heartbeat_jobs call per interval, on a connection of its own: it renews the worker's lease (one
   * row per worker, whatever the number of jobs), registers that connection's session so a killed
   * worker's jobs are freed within about a second, and answers per held job. Default 500 ms (at most a
   * third of the lease).
   */
  heartbeatIntervalMs: z.number().int().min(10).optional(),
  /**
   * Deadline of each claim, heartbeat, settle and progress call: one that does not answer in time is
   * abandoned and its connection replaced, so a cut-off worker notices within seconds. Not tied to a
   * short lease: a slow but live database must not be abandoned (each abandon costs a reconnect); jobs
   * stay safe through the lease fence whatever this is. Default 5000.
   */
  callTimeoutMs: z.number().int().min(10).max(600_000).default(5000),
  /** Idle polling: the correctness path (NOTIFY is only a hint). Default 500. */
  pollIntervalMs: z.number().int().min(10).max(3_600_000).default(500),
  /** LISTEN supaqueue_jobs for wake-ups. 'auto' (default): yes unless through a transaction pooler. */
  listen: z.union([z.boolean(), z.literal('auto')]).default('auto'),
  /** On stop(), how long in-flight handlers may finish before they are aborted and released. Default 10000. */
  shutdownGraceMs: z.number().int().min(0).default(10_000),
  /** run_maintenance every this many ms (false: never, e.g. when the scheduler function runs it). Default 60000. */
  maintenanceIntervalMs: z.union([z.number().int().min(100), z.literal(false)]).default(60_000),
  /** Recorded on claimed jobs and in logs. Default hostname-pid-random. */
  workerId: z.string().min(1).max(200).optional(),
  /**
   * Job types to claim, each with a handler. null (default): the handlers' types. A worker never claims
   * a type it cannot run, so several workers with different handlers can share one queue.
   */
  types: z.array(z.string().regex(JOB_TYPE)).min(1).nullable().default(null),
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
  /** Pool size when the worker opens the connection itself (plus one for heartbeats and one for LISTEN). Default 5. */
  maxConnections: z.number().int().min(2).max(100).default(5),
  /** Settles (complete/fail/release) are batched: flushed this long after the first one queues. Default 5. */
  settleIntervalMs: z.number().int().min(0).max(1000).default(5),
  /** ... or as soon as this many are queued. Default 100. */
  settleBatchSize: z.number().int().min(1).max(1000).default(100),
  /** pino logger; the worker logs JSON through it. Default pino() (stdout). */
  logger: z.custom<Logger>(isLogger, 'expected a pino logger').optional(),
  /** Level of the worker's logs (pino levels). Default: the logger's own level ('info' for the default logger). */
  logLevel: logLevelSchema.optional(),
});

/** What createWorker accepts. */
export type WorkerOptions = z.input<typeof optionsSchema>;

type Parsed = z.output<typeof optionsSchema>;

/** Options after defaults and 'auto' values are resolved. */
export interface ResolvedOptions extends Omit<Parsed, 'batchSize' | 'heartbeatIntervalMs' | 'workerId' | 'logger' | 'logLevel' | 'pooler' | 'listen' | 'types' | 'connection'> {
  /** Set unless dataSource is. */
  connection: string | Sql | undefined;
  /** What claim_jobs is asked for: never a type without a handler. */
  types: string[];
  batchSize: number;
  heartbeatIntervalMs: number;
  /** Per call kind: how long the worker waits for an answer before abandoning the call. */
  deadlineMs: Record<CallKind, number>;
  /** A job is aborted (lease-lost) this long before its lease, as last renewed, ends. */
  leaseMarginMs: number;
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

/** Cross-field rules zod cannot see; returns the problems found. */
function crossFieldProblems(o: Parsed, heartbeatIntervalMs: number): string[] {
  const problems: string[] = [];
  const leaseMs = o.leaseSeconds * 1000;
  if ((o.connection === undefined) === (o.dataSource === undefined)) problems.push('set exactly one of connection and dataSource');
  // A heartbeat at or past the lease lets every held job expire between two beats.
  if (heartbeatIntervalMs >= leaseMs) problems.push('heartbeatIntervalMs must be shorter than leaseSeconds * 1000');
  const badKeys = Object.keys(o.handlers).filter((k) => !JOB_TYPE.test(k));
  if (badKeys.length) problems.push(`handler keys must be job types (${JOB_TYPE.source}), not: ${badKeys.join(', ')}`);
  const missing = (o.types ?? []).filter((t) => !Object.hasOwn(o.handlers, t));
  if (missing.length) problems.push(`types without a handler: ${missing.join(', ')} (a worker claims only what it can run)`);
  return problems;
}

/** The logger the worker writes to: logLevel, when set, applies to the worker's logs only. */
function workerLogger(o: Parsed): Logger {
  if (!o.logger) return pino({ level: o.logLevel ?? 'info' });
  return o.logLevel ? o.logger.child({}, { level: o.logLevel }) : o.logger;
}

/** Validates options once and resolves every default; throws WorkerConfigError listing all problems. */
export function resolveOptions(input: WorkerOptions): ResolvedOptions {
  const parsed = optionsSchema.safeParse(input);
  if (!parsed.success) throw new WorkerConfigError(`invalid worker options:\n${z.prettifyError(parsed.error)}`);
  const o = parsed.data;
  const leaseMs = o.leaseSeconds * 1000;
  const heartbeatIntervalMs = o.heartbeatIntervalMs ?? Math.max(10, Math.min(HEARTBEAT_INTERVAL_MS, Math.floor(leaseMs / 3)));
  const call = o.callTimeoutMs;
  const problems = crossFieldProblems(o, heartbeatIntervalMs);
  let pooler: ResolvedOptions['pooler'] = 'none';
  if (o.pooler !== 'auto') pooler = o.pooler;
  else if (o.connection !== undefined) {
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
  const { logLevel: _level, ...rest } = o;
  return {
    ...rest,
    connection: o.connection,
    types: o.types ?? Object.keys(o.handlers),
    batchSize: Math.min(o.batchSize ?? o.concurrency, o.concurrency),
    heartbeatIntervalMs,
    deadlineMs: {
      claim: call, heartbeat: call, complete: call, fail: call, release: call, progress: call,
      probe: Math.max(call, PROBE_DEADLINE_MS), maintenance: Math.max(call, MAINTENANCE_DEADLINE_MS),
    },
    leaseMarginMs: leaseMs * LEASE_MARGIN_FRACTION,
    workerId: o.workerId ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    logger: workerLogger(o),
    pooler,
    listen: o.listen === 'auto' ? pooler !== 'transaction' : o.listen,
    roleVia,
  };
}
