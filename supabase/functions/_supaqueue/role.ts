/**
 * The one way supaqueue runs database work as a role for one transaction: the edge API as the signed-in
 * user (authenticated + JWT claims, as PostgREST does), the scheduler pass, the worker and
 * supaqueue/server as service_role. Everything is set with set_config(name, value, true), i.e.
 * transaction-local (`set local role ...`): nothing leaks to the next user of a pooled connection, which
 * is what makes this safe behind Supavisor/PgBouncer in transaction mode. One round trip for all settings.
 * Type-only imports: Deno (edge) and Node (worker, server) load this file as it is.
 */
import type { Options, Sql, TransactionSql } from 'postgres';

/** Settings for one transaction, e.g. { role: 'service_role', statement_timeout: '15000ms' }. */
export type LocalSettings = Readonly<Record<string, string>>;

/** Applies the settings to the current transaction (set_config(name, value, true) each). */
export async function setLocal(tx: TransactionSql | Sql, settings: LocalSettings): Promise<void> {
  const names = Object.keys(settings);
  await tx`select set_config(s.name, s.value, true)
           from unnest(${names}::text[], ${names.map((n) => settings[n])}::text[]) s(name, value)`;
}

/** fn in a transaction of its own with the settings applied first (the role switch and request context). */
export function inTransactionAs<T>(sql: Sql, settings: LocalSettings, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await setLocal(tx, settings);
    return fn(tx);
  }) as Promise<T>;
}

/**
 * fn as `role` inside a transaction someone else owns (a savepoint of it): the role is switched for fn
 * only, then the caller's own role is restored, so the caller's next statements run exactly as before.
 */
export async function asRoleWithin<T>(tx: TransactionSql, role: string, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  // The caller's role, read before it is switched (the materialized CTE runs first).
  const [{ prev }] = await tx<{ prev: string }[]>`
    with p as materialized (select current_setting('role') as prev)
    select p.prev, set_config('role', ${role}, true) from p`;
  const result = await fn(tx);
  await setLocal(tx, { role: prev });
  return result;
}

/** How a pool assumes its role: startup parameter (our own direct connections), per transaction, or not at all. */
export type RoleVia = 'startup' | 'transaction' | 'none';

/**
 * postgres.js options shared by the worker and supaqueue/server for a pool they open themselves: with
 * roleVia 'startup' every connection is `role` from its first statement (`options=-c role=...`, no extra
 * round trip); prepared statements off behind a transaction pooler.
 */
export function poolOptions(o: {
  max: number; transactionPooler: boolean; applicationName: string; role: string | null; roleVia: RoleVia;
  onnotice?: (notice: { message: string }) => void;
}): Options<{}> {
  return {
    max: o.max,
    // Transaction poolers cannot keep named prepared statements for us across transactions.
    prepare: !o.transactionPooler,
    connect_timeout: 10,
    onnotice: o.onnotice ?? (() => {}),
    connection: {
      application_name: o.applicationName.slice(0, 63),
      ...(o.roleVia === 'startup' && o.role !== null ? { options: `-c role=${o.role}` } : {}),
    },
  } as Options<{}>;
}
