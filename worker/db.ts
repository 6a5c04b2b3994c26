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
import { Listener } from './listener.ts';
import { inTransactionAs, poolOptions } from '../supabase/functions/_supaqueue/role.ts';
import type { ClaimRequest, CompleteItem, DataSource, FailItem, HeartbeatRow, Lease } from './source.ts';
import type { Job, JobStatus, Progress } from './types.ts';

const MAINTENANCE_BATCH = 1000;

function baseOptions(o: ResolvedOptions, logger: Logger): postgres.Options<{}> {
  return poolOptions({
    max: o.maxConnections, transactionPooler: o.pooler === 'transaction', applicationName: `supaqueue-worker ${o.workerId}`,
    role: o.role, roleVia: o.roleVia, onnotice: (n) => logger.debug({ notice: n.message }, 'postgres notice'),
  });
}

/** The Postgres data source for a worker with a `connection`. */
export function openDb(o: ResolvedOptions, logger: Logger): DataSource {
  return new PostgresSource(o, logger);
}

type ClientOptions = Record<string, unknown>;

/** One connection's client, and the calls in flight on it. */
interface Lane { sql: Sql; inflight: number; owned: boolean }

/**
 * The pool is `maxConnections` one-connection clients (lanes), each call on the least busy one, plus a
 * lane of its own for heartbeats, so a busy pool cannot starve lease renewal. A call abandoned at its
 * deadline replaces its lane's client (its socket may hang for minutes in a network partition): the old
 * one is ended at once, failing only the calls queued on that connection (a transient error: retried);
 * the other lanes carry on. A postgres.js client passed in as `connection` is one lane that is not ours
 * to end: an abandoned call on it is only abandoned; the heartbeat and LISTEN connections are still our
 * own, derived from its options.
 */
class PostgresSource implements DataSource {
  private readonly lanes: Lane[];
  private readonly beat: Lane;
  private ended = false;

  constructor(private readonly o: ResolvedOptions, private readonly logger: Logger) {
    this.lanes = typeof o.connection === 'string'
      ? Array.from({ length: o.maxConnections }, () => ({ sql: this.client({ max: 1 }), inflight: 0, owned: true }))
      : [{ sql: o.connection as Sql, inflight: 0, owned: false }];
    this.beat = { sql: this.client({ max: 1 }), inflight: 0, owned: true };
  }

  /** A one-connection client of our own on the configured connection, with extra options. */
  private client(extra: ClientOptions): Sql {
    const c = this.o.connection!;
    if (typeof c === 'string') return postgres(c, { ...baseOptions(this.o, this.logger), ...extra } as postgres.Options<{}>);
    // Derived from a client passed in: its parsed options, as postgres.js builds its own LISTEN client.
    return postgres({ ...c.options, ...extra, shared: { retries: 0, typeArrayMap: {} } } as unknown as postgres.Options<{}>);
  }

  /** Runs fn on the least busy lane (or the heartbeat lane) as the configured role; replaces that lane's client if the call is abandoned. */
  private async run<T>(on: 'pool' | 'beat', signal: AbortSignal, fn: (q: Sql) => Promise<T>): Promise<T> {
    const lane = on === 'beat' ? this.beat : this.lanes.reduce((a, b) => (b.inflight < a.inflight ? b : a));
    const { sql } = lane;
    signal.addEventListener('abort', () => this.replace(lane, sql), { once: true });
    lane.inflight += 1;
    try {
      if (this.o.roleVia !== 'transaction') return await fn(sql);
      return await inTransactionAs(sql, { role: this.o.role! }, (tx) => fn(tx as unknown as Sql));
    } finally {
      lane.inflight -= 1;
    }
  }

  private replace(lane: Lane, stale: Sql): void {
    if (this.ended || !lane.owned || lane.sql !== stale) return; // not ours, or already replaced
    lane.sql = this.client({ max: 1 });
    void stale.end({ timeout: 0 }).catch(() => {});
  }

  async claim({ workerId, types, count, leaseSeconds }: ClaimRequest, signal: AbortSignal): Promise<Job[]> {
    const rows = await this.run('pool', signal, (q) => q<Job[]>`
      select * from public.claim_jobs(${workerId}, ${types}::text[], ${count}::int, ${leaseSeconds}::float8)`);
    return [...rows];
  }

  async complete(items: CompleteItem[], signal: AbortSignal): Promise<Set<string>> {
    const rows = await this.run('pool', signal, (q) => q<{ id: string }[]>`
      select c.id from public.complete_jobs(
        ${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.lease_id)}::uuid[],
        (select array_agg(nullif(r.v::jsonb, 'null'::jsonb) order by r.n)
           from unnest(${items.map((i) => i.resultJson)}::text[]) with ordinality r(v, n))) c`);
    return new Set(rows.map((r) => r.id));
  }

  async fail(items: FailItem[], signal: AbortSignal): Promise<Map<string, JobStatus>> {
    const rows = await this.run('pool', signal, (q) => q<{ id: string; status: JobStatus }[]>`
      select f.id, f.status from public.fail_jobs(
        ${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.lease_id)}::uuid[],
        ${items.map((i) => i.error)}::text[],
        -- As text: postgres.js 3.4 cannot infer a boolean[] parameter.
        ${items.map((i) => String(i.retryable))}::text[]::boolean[]) f`);
    return new Map(rows.map((r) => [r.id, r.status]));
  }

  async release(items: Lease[], signal: AbortSignal): Promise<Set<string>> {
    const rows = await this.run('pool', signal, (q) => q<{ id: string }[]>`
      select r.id from public.release_jobs(${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.lease_id)}::uuid[]) r`);
    return new Set(rows.map((r) => r.id));
  }

  /**
   * Renews this worker's lease. Its own heartbeat connection is registered as the worker's session
   * (track_session), except through a transaction pooler, where each call may run on another server
   * connection: there the lease's time is the only liveness.
   */
  async heartbeat(items: Lease[], leaseSeconds: number, signal: AbortSignal): Promise<HeartbeatRow[]> {
    const trackSession = this.o.pooler !== 'transaction';
    const rows = await this.run('beat', signal, (q) => q<HeartbeatRow[]>`
      select h.id, h.lease_valid, h.cancel_requested from public.heartbeat_jobs(
        ${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.lease_id)}::uuid[], ${leaseSeconds}::float8,
        ${this.o.workerId}::text, ${trackSession}::text::boolean) h`);
    return [...rows];
  }

  async progress(lease: Lease, progress: Progress, signal: AbortSignal): Promise<boolean> {
    const [row] = await this.run('pool', signal, (q) => q<{ ok: boolean }[]>`
      select public.set_job_progress(${lease.id}::uuid, ${lease.lease_id}::uuid, ${JSON.stringify(progress)}::text::jsonb) as ok`);
    return row.ok;
  }

  async maintenance(signal: AbortSignal): Promise<Record<string, number>> {
    const [row] = await this.run('pool', signal, (q) => q<{ r: Record<string, number> }[]>`
      select public.run_maintenance(max_jobs => ${MAINTENANCE_BATCH}::int) as r`); // retention: the database's supaqueue.retention()
    return row.r;
  }

  /** Checks the connection and the role. */
  async probe(signal: AbortSignal): Promise<{ user: string; canClaim: boolean }> {
    const [row] = await this.run('pool', signal, (q) => q<{ user: string; can_claim: boolean }[]>`
      select current_user as user,
             has_function_privilege('public.claim_jobs(text, text[], integer, double precision)', 'execute') as can_claim`);
    return { user: row.user, canClaim: row.can_claim };
  }

  /** LISTEN supaqueue_jobs on a connection of its own (worker/listener.ts). */
  subscribe(onHint: () => void): { stop(): Promise<void> } {
    const listener = new Listener((handlers) => this.client({
      max: 1, idle_timeout: null, max_lifetime: null, fetch_types: false, onnotify: handlers.onnotify, onclose: handlers.onclose,
    }), this.logger, onHint, this.o.deadlineMs.probe); // a LISTEN is only a hint: it may take as long as connecting
    listener.start();
    return listener;
  }

  async end(): Promise<void> {
    this.ended = true;
    await Promise.all([...this.lanes, this.beat].filter((l) => l.owned).map((l) => l.sql.end({ timeout: 5 })));
  }
}
