/**
 * Shared by tests/realtime.*.test.ts: Realtime's authorization check as the Realtime server runs it
 * (lib/realtime/tenants/authorization.ex), the broadcasts the database wrote, and an in-process stand-in
 * for the Realtime server (a WebSocket transport for supabase-js) that joins private channels only after
 * that same check and delivers the rows the database inserts into realtime.messages.
 *
 * The stand-in is for the client tests only: it is not Realtime (no replication, no rate limits, no
 * presence), it speaks just enough of the Phoenix protocol for realtime-js to join, receive broadcasts
 * and see errors, timeouts and dropped connections.
 */
import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { Sql } from './helpers/db.ts';

const ROLLBACK = Symbol('rollback');

/** Runs fn in a transaction that is always rolled back; returns fn's result. */
async function rolledBack<T>(sql: Sql, fn: (tx: Sql) => Promise<T>): Promise<T> {
  let out: T | undefined;
  try {
    await sql.begin(async (tx) => {
      out = await fn(tx as unknown as Sql);
      throw ROLLBACK;
    });
  } catch (e) {
    if (e !== ROLLBACK) throw e;
  }
  return out as T;
}

/** The claims Realtime takes from the join's access token; null = the anon key. */
export type RealtimeClaims = Record<string, unknown> | null;

/** set_conn_config: role, topic, claims, as the server sets them (transaction-local). */
async function setConnConfig(tx: Sql, topic: string, claims: RealtimeClaims): Promise<void> {
  const c = claims ?? { role: 'anon', iss: 'supabase' };
  const role = String(c.role ?? 'anon');
  await tx`select set_config('role', ${role}, true), set_config('realtime.topic', ${topic}, true),
                  set_config('request.jwt.claims', ${JSON.stringify(c)}, true),
                  set_config('request.jwt.claim.sub', ${String(c.sub ?? '')}, true),
                  set_config('request.jwt.claim.role', ${role}, true), set_config('request.headers', '{}', true)`;
}

/**
 * Realtime's read check: as the server's own connection, insert one probe message per extension for
 * the topic; then, as the user's role with the user's claims and realtime.topic set, select them back;
 * roll back. Read is allowed for an extension when its probe row is visible.
 */
export function canRead(sql: Sql, topic: string, claims: RealtimeClaims): Promise<{ broadcast: boolean; presence: boolean }> {
  return rolledBack(sql, async (tx) => {
    const ids = { broadcast: randomUUID(), presence: randomUUID() };
    await tx`insert into realtime.messages (id, topic, extension, inserted_at, updated_at)
             values (${ids.broadcast}, ${topic}, 'broadcast', now(), now()), (${ids.presence}, ${topic}, 'presence', now(), now())`;
    await setConnConfig(tx, topic, claims);
    const rows = await tx`select id from realtime.messages where id in (${ids.broadcast}, ${ids.presence})`;
    const seen = new Set(rows.map((r) => r.id as string));
    return { broadcast: seen.has(ids.broadcast), presence: seen.has(ids.presence) };
  });
}

/**
 * Realtime's write check: as the user (role, claims, topic), insert a message for the topic in a
 * savepoint; insufficient_privilege (RLS) means no write. Rolled back.
 */
export function canWrite(sql: Sql, topic: string, claims: RealtimeClaims): Promise<boolean> {
  return rolledBack(sql, async (tx) => {
    await setConnConfig(tx, topic, claims);
    try {
      await (tx as unknown as { savepoint: (fn: (s: Sql) => Promise<unknown>) => Promise<unknown> }).savepoint((s) =>
        s`insert into realtime.messages (topic, extension, inserted_at, updated_at) values (${topic}, 'broadcast', now(), now())`);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === '42501') return false;
      throw e;
    }
  });
}

export interface Broadcast {
  topic: string;
  event: string;
  private: boolean;
  extension: string;
  job: Record<string, any>;
  payload: Record<string, any>;
}

/** The broadcasts the database wrote on the given topics, oldest first. */
export async function broadcasts(sql: Sql, topics: string[]): Promise<Broadcast[]> {
  const rows = await sql`select topic, event, private, extension, payload from realtime.messages
                         where topic = any (${topics}::text[]) order by inserted_at, ctid`;
  return rows.map((r) => ({ topic: r.topic, event: r.event, private: r.private, extension: r.extension,
    job: r.payload?.job, payload: r.payload }));
}

export const jobTopic = (id: string) => `supaqueue:job:${id}`;
export const tenantTopic = (id: string) => `supaqueue:tenant:${id}:jobs`;

// ---------------------------------------------------------------------------------------------------
// A stand-in Realtime server for supabase-js, in process
// ---------------------------------------------------------------------------------------------------

type Frame = [string | null, string | null, string, string, any];

export interface FakeRealtimeOptions {
  /** The test database (as its owner): authorization checks and message reads. */
  sql: Sql;
  /** Never answer joins (the client's join times out). */
  ignoreJoins?: boolean;
  /** Refuse every join (the client reports CHANNEL_ERROR), as Realtime does when it cannot check policies. */
  refuseJoins?: boolean;
  /** How often delivered messages are read from realtime.messages (default 20 ms). */
  pollMs?: number;
}

/** One stand-in server: its transport class goes in createClient's `realtime.transport`. */
export class FakeRealtime {
  readonly sockets = new Set<FakeSocket>();
  joins = 0;

  /** Channels joined now, over every connection. */
  get joined(): number {
    let n = 0;
    for (const s of this.sockets) n += s.joinedCount;
    return n;
  }
  constructor(readonly opts: FakeRealtimeOptions) {}

  get transport(): new (url: string) => FakeSocket {
    const server = this;
    return class extends FakeSocket { constructor(url: string) { super(url, server); } };
  }

  /** Drops every connection as a network failure would (the client reconnects by itself). */
  dropAll(): void {
    for (const s of [...this.sockets]) s.serverClose(1006);
  }

  /** Ends every joined channel with phx_close (the client reports CLOSED). */
  closeChannels(): void {
    for (const s of this.sockets) s.closeChannels();
  }
}

interface Joined { joinRef: string; topic: string; since: string; seen: Set<string> }

export class FakeSocket {
  readonly CONNECTING = 0; readonly OPEN = 1; readonly CLOSING = 2; readonly CLOSED = 3;
  readyState = 0;
  protocol = '';
  binaryType = 'arraybuffer';
  onopen: ((ev: any) => void) | null = null;
  onmessage: ((ev: any) => void) | null = null;
  onclose: ((ev: any) => void) | null = null;
  onerror: ((ev: any) => void) | null = null;
  private joined = new Map<string, Joined>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private reading = false;

  constructor(readonly url: string, private server: FakeRealtime) {
    server.sockets.add(this);
    setTimeout(() => {
      if (this.readyState !== 0) return;
      this.readyState = 1;
      this.onopen?.({});
      this.timer = setInterval(() => void this.deliver(), server.opts.pollMs ?? 20);
    }, 5);
  }

  get joinedCount(): number { return this.joined.size; }

  addEventListener(): void {}
  removeEventListener(): void {}

  send(data: string): void {
    if (typeof data !== 'string') return; // client broadcasts (binary) are not used here
    const [joinRef, ref, topic, event, payload] = JSON.parse(data) as Frame;
    if (topic === 'phoenix' && event === 'heartbeat') return this.push([null, ref, 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
    if (event === 'phx_join') return void this.join(joinRef!, ref!, topic, payload);
    if (event === 'phx_leave') {
      this.joined.delete(topic);
      return this.push([joinRef, ref, topic, 'phx_reply', { status: 'ok', response: {} }]);
    }
  }

  close(): void {
    this.serverClose(1000);
  }

  serverClose(code: number): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    clearInterval(this.timer);
    this.server.sockets.delete(this);
    this.joined.clear();
    setTimeout(() => this.onclose?.({ code, reason: '', wasClean: code === 1000 }), 0);
  }

  closeChannels(): void {
    for (const [wireTopic, j] of this.joined) this.push([j.joinRef, j.joinRef, wireTopic, 'phx_close', {}]);
    this.joined.clear();
  }

  private push(frame: Frame): void {
    if (this.readyState !== 1) return;
    const data = JSON.stringify(frame);
    setTimeout(() => this.onmessage?.({ data }), 0);
  }

  /** A private join is allowed when Realtime's read check allows broadcast for the topic. */
  private async join(joinRef: string, ref: string, wireTopic: string, payload: any): Promise<void> {
    this.server.joins += 1;
    if (this.server.opts.ignoreJoins) return;
    const topic = wireTopic.replace(/^realtime:/, '');
    const token = payload?.access_token as string | undefined;
    const claims = token ? decodeJwt(token) as Record<string, unknown> : null;
    const since = (await this.server.opts.sql`select localtimestamp::text as t`)[0].t as string;
    const allowed = !this.server.opts.refuseJoins && payload?.config?.private === true && (await canRead(this.server.opts.sql, topic, claims)).broadcast;
    if (!allowed) {
      return this.push([joinRef, ref, wireTopic, 'phx_reply', { status: 'error',
        response: { reason: `Unauthorized: You do not have permissions to read from this Channel topic: ${topic}` } }]);
    }
    if (this.readyState !== 1) return;
    this.joined.set(wireTopic, { joinRef, topic, since, seen: new Set() });
    this.push([joinRef, ref, wireTopic, 'phx_reply', { status: 'ok', response: { postgres_changes: [] } }]);
  }

  /** Private broadcasts written since each join, in insertion order, once each. */
  private async deliver(): Promise<void> {
    if (this.reading || this.joined.size === 0) return;
    this.reading = true;
    try {
      for (const [wireTopic, j] of this.joined) {
        const rows = await this.server.opts.sql`
          select id, event, payload from realtime.messages
          where topic = ${j.topic} and private and extension = 'broadcast' and inserted_at >= ${j.since}::timestamp
          order by inserted_at, ctid`;
        for (const r of rows) {
          if (j.seen.has(r.id) || this.joined.get(wireTopic) !== j) continue;
          j.seen.add(r.id);
          this.push([null, null, wireTopic, 'broadcast', { type: 'broadcast', event: r.event, payload: r.payload }]);
        }
      }
    } catch {
      // the database went away at the end of a test
    } finally {
      this.reading = false;
    }
  }
}
