/**
 * The worker's only door to Postgres: the connection (and how it becomes service_role) and one method per
 * worker RPC of the SQL engine. No queue rule lives here; each method is one call to a SQL function.
 *
 * Assuming the role (see worker/README.md):
 *  - direct connection we open ourselves: startup parameter `options=-c role=<role>`, so every pooled
 *    connection is service_role from its first statement, at no extra round trip;
 *  - through a pooler (Supavisor/PgBouncer), or with a postgres.js client passed in: startup parameters
 *    are dropped or refused by poolers (and a passed-in client's are not ours), and a session-level
 *    `set role` would leak to other clients in transaction mode, so each call runs in its own
 *    transaction that starts with `set_config('role', <role>, true)` (= SET LOCAL ROLE).
 */
import postgres, { type Sql } from 'postgres';
import type { Logger } from 'pino';
import type { ResolvedOptions } from './config.ts';
import type { Job, JobStatus, Progress } from './types.ts';

export interface Lease { id: string; lease_id: string }
export interface CompleteItem extends Lease { /** JSON text of the result ('null' = no result). */ resultJson: string }
export interface FailItem extends Lease { error: string; retryable: boolean }
export interface HeartbeatRow { id: string; lease_valid: boolean; cancel_requested: boolean }

export interface Db {
  /** claim_jobs for up to `count` jobs. */
  claim(count: number): Promise<Job[]>;
  /** complete_jobs; the ids the server completed (absent = the lease was stale). */
  complete(items: CompleteItem[]): Promise<Set<string>>;
  /** fail_jobs; id -> new status for the jobs the server settled. */
  fail(items: FailItem[]): Promise<Map<string, JobStatus>>;
  /** release_jobs; the ids given back. */
  release(items: Lease[]): Promise<Set<string>>;
  heartbeat(items: Lease[]): Promise<HeartbeatRow[]>;
  progress(lease: Lease, progress: Progress): Promise<boolean>;
  maintenance(): Promise<Record<string, number>>;
  /** Checks the connection, the role and the retention interval; returns current_user. */
  probe(): Promise<{ user: string; canClaim: boolean }>;
  /** A separate single-connection client for LISTEN, reporting notifications and connection loss. */
  listenerClient(handlers: { onnotify: () => void; onclose: () => void }): Sql;
  end(): Promise<void>;
}

const MAINTENANCE_BATCH = 1000;

function baseOptions(o: ResolvedOptions, logger: Logger): postgres.Options<{}> {
  return {
    max: o.maxConnections,
    // Transaction poolers cannot keep named prepared statements for us across transactions.
    prepare: o.pooler !== 'transaction',
    connect_timeout: 10,
    onnotice: (n) => logger.debug({ notice: n.message }, 'postgres notice'),
    connection: {
      application_name: `supaqueue-worker ${o.workerId}`.slice(0, 63),
      ...(o.roleVia === 'startup' ? { options: `-c role=${o.role}` } : {}),
    },
  };
}

export function openDb(o: ResolvedOptions, logger: Logger): Db {
  return new PostgresDb(o, logger);
}

class PostgresDb implements Db {
  private readonly sql: Sql;
  private readonly owned: boolean;

  constructor(private readonly o: ResolvedOptions, private readonly logger: Logger) {
    this.owned = typeof o.connection === 'string';
    this.sql = typeof o.connection === 'string' ? postgres(o.connection, baseOptions(o, logger)) : o.connection;
  }

  /** Runs fn as the configured role: directly, or in a transaction that sets it locally. */
  private run<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
    if (this.o.roleVia !== 'transaction') return fn(this.sql);
    return this.sql.begin(async (tx) => {
      await tx`select set_config('role', ${this.o.role}, true)`;
      return fn(tx as unknown as Sql);
    }) as Promise<T>;
  }

  async claim(count: number): Promise<Job[]> {
    const { workerId, types, leaseSeconds } = this.o;
    const rows = await this.run((q) => q<Job[]>`
      select * from public.claim_jobs(${workerId}, ${types}::text[], ${count}::int, ${leaseSeconds}::float8)`);
    return [...rows];
  }

  async complete(items: CompleteItem[]): Promise<Set<string>> {
    const rows = await this.run((q) => q<{ id: string }[]>`
      select c.id from public.complete_jobs(
        ${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.lease_id)}::uuid[],
        (select array_agg(nullif(r.v::jsonb, 'null'::jsonb) order by r.n)
           from unnest(${items.map((i) => i.resultJson)}::text[]) with ordinality r(v, n))) c`);
    return new Set(rows.map((r) => r.id));
  }

  async fail(items: FailItem[]): Promise<Map<string, JobStatus>> {
    const rows = await this.run((q) => q<{ id: string; status: JobStatus }[]>`
      select f.id, f.status from public.fail_jobs(
        ${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.lease_id)}::uuid[],
        ${items.map((i) => i.error)}::text[],
        -- As text: postgres.js 3.4 cannot infer a boolean[] parameter.
        ${items.map((i) => String(i.retryable))}::text[]::boolean[]) f`);
    return new Map(rows.map((r) => [r.id, r.status]));
  }

  async release(items: Lease[]): Promise<Set<string>> {
    const rows = await this.run((q) => q<{ id: string }[]>`
      select r.id from public.release_jobs(${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.lease_id)}::uuid[]) r`);
    return new Set(rows.map((r) => r.id));
  }

  async heartbeat(items: Lease[]): Promise<HeartbeatRow[]> {
    const rows = await this.run((q) => q<HeartbeatRow[]>`
      select h.id, h.lease_valid, h.cancel_requested from public.heartbeat_jobs(
        ${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.lease_id)}::uuid[], ${this.o.leaseSeconds}::float8) h`);
    return [...rows];
  }

  async progress(lease: Lease, progress: Progress): Promise<boolean> {
    const [row] = await this.run((q) => q<{ ok: boolean }[]>`
      select public.set_job_progress(${lease.id}::uuid, ${lease.lease_id}::uuid, ${JSON.stringify(progress)}::text::jsonb) as ok`);
    return row.ok;
  }

  async maintenance(): Promise<Record<string, number>> {
    const [row] = await this.run((q) => q<{ r: Record<string, number> }[]>`
      select public.run_maintenance(${this.o.retention}::interval, ${MAINTENANCE_BATCH}::int) as r`);
    return row.r;
  }

  async probe(): Promise<{ user: string; canClaim: boolean }> {
    const [row] = await this.run((q) => q<{ user: string; can_claim: boolean }[]>`
      select current_user as user, ${this.o.retention}::interval is not null as retention_ok,
             has_function_privilege('public.claim_jobs(text, text[], integer, double precision)', 'execute') as can_claim`);
    return { user: row.user, canClaim: row.can_claim };
  }

  listenerClient({ onnotify, onclose }: { onnotify: () => void; onclose: () => void }): Sql {
    const extra = { max: 1, idle_timeout: null, max_lifetime: null, fetch_types: false, onnotify: () => onnotify(), onclose: () => onclose() };
    if (typeof this.o.connection === 'string') {
      return postgres(this.o.connection, { ...baseOptions(this.o, this.logger), ...extra } as unknown as postgres.Options<{}>);
    }
    // A client passed in: derive a one-connection client from its parsed options, exactly as
    // postgres.js itself builds its internal LISTEN client (sql.listen), with our own callbacks.
    return postgres({ ...this.o.connection.options, ...extra, shared: { retries: 0, typeArrayMap: {} } } as unknown as postgres.Options<{}>);
  }

  async end(): Promise<void> {
    if (this.owned) await this.sql.end({ timeout: 5 });
  }
}
