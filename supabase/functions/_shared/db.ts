/**
 * Postgres access for the edge functions: porsager's `postgres` over SUPABASE_DB_URL.
 *
 * Every user request runs in ONE transaction as the caller, the way PostgREST runs it: the role
 * switched to `authenticated` and the verified JWT claims in `request.jwt.claims`, both transaction-
 * local. RLS and the engine's functions (auth.uid()) then decide what the user may see and do; the
 * function's own connection role (postgres) is never used for user data. Transaction-local settings
 * are what make this safe behind Supabase's transaction pooler (Supavisor), where consecutive
 * transactions on "our" connection may run on different server connections: nothing leaks from one
 * request to the next, because nothing is set at session level.
 */
import postgres from 'postgres';
import type { Config } from './config.ts';
import type { AuthUser } from './auth.ts';

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;

export interface Db {
  /** The pool itself, as the connection's own role: only for the rate limiter and health checks. */
  sql: Sql;
  /** Runs fn in one transaction as the signed-in user (role authenticated + their claims). */
  asUser<T>(user: AuthUser, fn: (tx: Tx) => Promise<T>): Promise<T>;
  end(): Promise<void>;
}

export function createDb(cfg: Config): Db {
  const sql = postgres(cfg.dbUrl, {
    // The transaction pooler cannot keep named prepared statements across transactions.
    prepare: false,
    // Small: each isolate serves few concurrent requests, and there may be many isolates.
    max: cfg.db.poolMax,
    connect_timeout: cfg.db.connectTimeoutS,
    // Give idle connections back quickly: isolates are frozen between bursts and pooler slots are shared.
    idle_timeout: 20,
    max_lifetime: 30 * 60,
    connection: { application_name: 'supaqueue-edge-api' },
    onnotice: () => {},
  });
  const timeout = `${cfg.db.statementTimeoutMs}ms`;

  return {
    sql,
    asUser<T>(user: AuthUser, fn: (tx: Tx) => Promise<T>): Promise<T> {
      return sql.begin(async (tx) => {
        // One round trip for the whole request context. set_config('role', ..., true) is exactly
        // `set local role authenticated` (PostgREST switches role this way); the statement timeout is
        // local too, so a slow query ends with 57014 (503) instead of pinning a pooler slot.
        await tx`select set_config('role', 'authenticated', true),
                        set_config('request.jwt.claims', ${JSON.stringify(user.claims)}, true),
                        set_config('request.jwt.claim.sub', ${user.id}, true),
                        set_config('request.jwt.claim.role', 'authenticated', true),
                        set_config('statement_timeout', ${timeout}, true)`;
        return fn(tx);
      }) as Promise<T>;
    },
    end: () => sql.end({ timeout: 5 }),
  };
}
