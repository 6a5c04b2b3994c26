/**
 * How supaqueue/server reaches Postgres as service_role: the same rules as the worker (worker/db.ts,
 * worker/README.md "Connecting"), so one URL works for both.
 *
 *  - a URL we open ourselves, direct: startup parameter `options=-c role=<role>`, so every pooled
 *    connection is the role from its first statement, at no extra round trip;
 *  - through Supavisor/PgBouncer (pooler 'session' or 'transaction', detected from the URL as the worker
 *    does), or a postgres.js client passed in: each call is its own transaction that starts with
 *    `set_config('role', <role>, true)` (= SET LOCAL ROLE), so nothing leaks to other pool users; in
 *    transaction mode prepared statements are off;
 *  - inside the caller's own transaction: a savepoint that switches the role, runs the call and switches
 *    back to the caller's role, so the caller's next statements run exactly as before, and an error of
 *    ours rolls back only our savepoint (the caller may catch it and carry on).
 *
 * The role switch itself (pool options, the per-transaction set_config) is the shared one in
 * supabase/functions/_supaqueue/role.ts, which the worker (worker/db.ts) and the edge functions use too.
 */
import postgres, { type Sql, type TransactionSql } from 'postgres';
import { detectPooler } from '../worker/config.ts';
import { asRoleWithin, inTransactionAs, poolOptions, type RoleVia } from '../supabase/functions/_supaqueue/role.ts';

export type Pooler = 'none' | 'session' | 'transaction';

export interface ConnectionSettings {
  connection: string | Sql;
  pooler: 'auto' | Pooler;
  role: string | null;
  maxConnections: number;
  applicationName: string;
}

/** Runs a call as the role, on some client: the pool, a per-call transaction, or the caller's transaction. */
export interface Executor {
  run<T>(fn: (q: Sql) => Promise<T>): Promise<T>;
}

export interface Connection extends Executor {
  readonly sql: Sql;
  readonly pooler: Pooler;
  /** How the role is assumed: startup parameter (direct, own pool), per transaction, or not at all. */
  readonly roleVia: RoleVia;
  /** An executor that runs every call inside tx (a savepoint), as the role, and restores tx's role. */
  inTransaction(tx: TransactionSql): Executor;
  end(): Promise<void>;
}

function hostPort(connection: string | Sql): { host: string; port: number } {
  if (typeof connection === 'string') {
    const u = new URL(connection);
    return { host: u.hostname, port: Number(u.port || 5432) };
  }
  return { host: String(connection.options.host?.[0] ?? ''), port: Number(connection.options.port?.[0] ?? 5432) };
}

export function openConnection(s: ConnectionSettings): Connection {
  const pooler = s.pooler === 'auto' ? detectPooler(hostPort(s.connection).host, hostPort(s.connection).port) : s.pooler;
  const roleVia: Connection['roleVia'] = s.role === null ? 'none'
    : typeof s.connection === 'string' && pooler === 'none' ? 'startup' : 'transaction';
  const owned = typeof s.connection === 'string';
  const sql = typeof s.connection === 'string'
    ? postgres(s.connection, poolOptions({
      max: s.maxConnections, transactionPooler: pooler === 'transaction', applicationName: s.applicationName, role: s.role, roleVia,
    }))
    : s.connection;
  const role = s.role;

  return {
    sql,
    pooler,
    roleVia,
    run<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
      if (roleVia !== 'transaction') return fn(sql);
      return inTransactionAs(sql, { role: role! }, (tx) => fn(tx as unknown as Sql));
    },
    inTransaction(tx: TransactionSql): Executor {
      return {
        run<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
          if (typeof tx?.savepoint !== 'function') {
            throw new TypeError('sql must be a postgres.js transaction (the `tx` of sql.begin(async (tx) => ...))');
          }
          return tx.savepoint(async (sp) => {
            if (role === null) return fn(sp as unknown as Sql);
            return asRoleWithin(sp, role, (q) => fn(q as unknown as Sql));
          }) as Promise<T>;
        },
      };
    },
    async end(): Promise<void> {
      if (owned) await sql.end({ timeout: 5 });
    },
  };
}
