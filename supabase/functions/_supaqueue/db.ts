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
import type { AuthUser } from './http.ts';
import { inTransactionAs } from './role.ts';

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
      // The request context as PostgREST sets it; the statement timeout is transaction-local too, so a
      // slow query ends with 57014 (503) instead of pinning a pooler slot.
      return inTransactionAs(sql, {
        role: 'authenticated',
        'request.jwt.claims': JSON.stringify(user.claims),
        'request.jwt.claim.sub': user.id,
        'request.jwt.claim.role': 'authenticated',
        statement_timeout: timeout,
      }, fn);
    },
    end: () => sql.end({ timeout: 5 }),
  };
}
