/**
 * The partition kit of the worker resilience tests (worker.partition/pause/underload):
 *
 *  - PartitionProxy: a TCP proxy (node:net) between one worker and Postgres that can stop forwarding per
 *    direction without closing anything, as a silent network partition does: no FIN, no RST, sockets stay
 *    open on both sides, bytes are held (delivered at the heal, as TCP retransmission would) or dropped
 *    (the connection is reset at the heal: a TCP stream cannot skip bytes). A close seen on one side
 *    during the cut is held too and passed on at the heal, after the held bytes.
 *  - recording handlers: a handlers module written to a temporary folder (a cut-off worker cannot reach
 *    the database) whose handlers append each run's start / end / abort (wall-clock ms, worker id, lease)
 *    to a JSONL file per worker process, with one O_APPEND write per event (kept across a SIGKILL);
 *    readRuns() merges the files into one record per run.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** up: client -> server (worker -> Postgres); down: server -> client (Postgres -> worker). */
export type Direction = 'up' | 'down';
const DIRECTIONS: Direction[] = ['up', 'down'];

interface Pipe {
  dir: Direction;
  src: net.Socket;
  dst: net.Socket;
  held: Buffer[];
  /** src ended (FIN) or closed while this direction was cut: pass it on at the heal. */
  heldClose: boolean;
  /** Bytes were dropped on this pipe: its connection cannot be consistent any more. */
  corrupt: boolean;
  /** The close was passed on: nothing more to do for this pipe. */
  finished: boolean;
}

export interface ProxyStats {
  connections: number;
  /** Connections the worker opened while some direction was cut. */
  openedDuringCut: number;
  heldBytes: Record<Direction, number>;
  /** Bytes passed on in a direction that was not cut while the other one was. */
  forwardedDuringCut: Record<Direction, number>;
  droppedBytes: Record<Direction, number>;
  /** Closes (FIN or reset) seen on one side during a cut and held back. */
  heldCloses: Record<Direction, number>;
}

export class PartitionProxy {
  private readonly server: net.Server;
  private readonly pipes = new Set<Pipe>();
  private readonly sockets = new Set<net.Socket>();
  private readonly cutDirs = new Set<Direction>();
  private mode: 'hold' | 'drop' = 'hold';
  readonly stats: ProxyStats = {
    connections: 0, openedDuringCut: 0, heldBytes: { up: 0, down: 0 }, forwardedDuringCut: { up: 0, down: 0 }, droppedBytes: { up: 0, down: 0 }, heldCloses: { up: 0, down: 0 },
  };

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => this.accept(client));
  }

  /** Listens on a free loopback port, forwarding to target. */
  static async start(target: { host: string; port: number }): Promise<PartitionProxy> {
    const p = new PartitionProxy(target);
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(0, '127.0.0.1', () => resolve());
    });
    return p;
  }

  /** Starts a proxy in front of the server of a postgres URL; returns it and the URL through it. */
  static async for(url: string): Promise<{ proxy: PartitionProxy; url: string }> {
    const u = new URL(url);
    const proxy = await PartitionProxy.start({ host: u.hostname, port: Number(u.port || 5432) });
    return { proxy, url: proxy.rewrite(url) };
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The postgres URL with its host and port replaced by the proxy's. */
  rewrite(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  /** True while the direction is cut. */
  isCut(dir: Direction): boolean {
    return this.cutDirs.has(dir);
  }

  /** Stops forwarding in the given directions; bytes are held (default) or dropped. Nothing is closed. */
  cut(dirs: Direction[] | 'both', opts: { bytes?: 'hold' | 'drop' } = {}): void {
    for (const d of dirs === 'both' ? DIRECTIONS : dirs) this.cutDirs.add(d);
    this.mode = opts.bytes ?? 'hold';
  }

  /** Forwards again: held bytes first (in order), then held closes; connections that lost bytes are reset. */
  heal(): void {
    const was = new Set(this.cutDirs);
    this.cutDirs.clear();
    for (const pipe of this.pipes) {
      if (!was.has(pipe.dir)) continue;
      if (pipe.corrupt) {
        pipe.finished = true;
        this.pipes.delete(pipe);
        if (!pipe.src.destroyed) pipe.src.resetAndDestroy();
        if (!pipe.dst.destroyed) pipe.dst.resetAndDestroy();
        continue;
      }
      const chunks = pipe.held.splice(0);
      if (!pipe.dst.destroyed) for (const c of chunks) pipe.dst.write(c);
      if (pipe.heldClose) this.passClose(pipe);
    }
  }

  /** Closes the listener and every connection. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    this.stats.connections += 1;
    if (this.cutDirs.size > 0) this.stats.openedDuringCut += 1;
    const upstream = net.connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => {}); // seen as 'close' below
      s.on('close', () => this.sockets.delete(s));
    }
    upstream.once('connect', () => client.resume());
    this.wire({ dir: 'up', src: client, dst: upstream, held: [], heldClose: false, corrupt: false, finished: false });
    this.wire({ dir: 'down', src: upstream, dst: client, held: [], heldClose: false, corrupt: false, finished: false });
  }

  private wire(pipe: Pipe): void {
    this.pipes.add(pipe);
    const { src, dst, dir } = pipe;
    src.on('data', (chunk: Buffer) => {
      if (!this.cutDirs.has(dir)) {
        if (this.cutDirs.size > 0) this.stats.forwardedDuringCut[dir] += chunk.length;
        if (!dst.destroyed && !dst.write(chunk)) {
          src.pause();
          dst.once('drain', () => src.resume());
        }
      } else if (this.mode === 'hold') {
        pipe.held.push(chunk);
        this.stats.heldBytes[dir] += chunk.length;
      } else {
        pipe.corrupt = true;
        this.stats.droppedBytes[dir] += chunk.length;
      }
    });
    // FIN or reset from the source: passed on now, or held while this direction is cut.
    const closed = () => {
      if (pipe.heldClose || pipe.finished) return;
      if (this.cutDirs.has(dir)) {
        pipe.heldClose = true;
        this.stats.heldCloses[dir] += 1;
      } else {
        this.passClose(pipe);
      }
    };
    src.on('end', closed);
    src.on('close', closed);
  }

  /** The source side went away: finish the destination after what was written to it. */
  private passClose(pipe: Pipe): void {
    pipe.heldClose = false;
    pipe.finished = true;
    this.pipes.delete(pipe);
    if (!pipe.dst.destroyed) pipe.dst.end();
  }
}

// ---------------------------------------------------------------------------------------------------
// Recording handlers
// ---------------------------------------------------------------------------------------------------

/** One handler run as the recording handlers saw it (wall-clock ms). */
export interface Run {
  job: string;
  lease: string;
  attempt: number;
  worker: string;
  pid: number;
  start: number;
  /** The handler body finished (its result was handed to the worker). */
  end?: number;
  /** ctx.signal aborted: when, and the JobAbortedError kind (lease-lost, cancelled, timeout, shutdown). */
  abortAt?: number;
  cause?: string;
}

/** When the run stopped running (end or abort); Infinity while it runs. */
export const stoppedAt = (r: Run): number => r.end ?? r.abortAt ?? Infinity;

/**
 * The handlers module source. Types: rec.sleep (payload.ms, or a random minMs..maxMs; honours ctx.signal),
 * rec.after (the same, for jobs only some workers take). Each returns { worker, pid, lease }.
 */
const HANDLERS_SOURCE = `
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const dir = process.env.RECORD_DIR;
if (!dir) throw new Error('RECORD_DIR is required');
const fd = fs.openSync(path.join(dir, process.pid + '.jsonl'), 'a');
const record = (event) => fs.writeSync(fd, JSON.stringify(event) + '\\n');

async function run(job, ctx) {
  const base = { job: job.id, lease: job.lease_id, attempt: ctx.attempt, worker: ctx.workerId, pid: process.pid };
  record({ ev: 'start', at: Date.now(), ...base });
  const p = job.payload ?? {};
  const ms = typeof p.ms === 'number' ? p.ms : (p.minMs ?? 0) + Math.floor(Math.random() * ((p.maxMs ?? p.minMs ?? 0) - (p.minMs ?? 0) + 1));
  if (ms > 0) {
    try {
      await sleep(ms, undefined, { signal: ctx.signal });
    } catch (err) {
      record({ ev: 'abort', at: Date.now(), cause: ctx.signal.reason?.kind ?? String(err), ...base });
      throw err;
    }
  }
  record({ ev: 'end', at: Date.now(), ...base });
  return { worker: ctx.workerId, pid: process.pid, lease: job.lease_id };
}

export const handlers = { 'rec.sleep': run, 'rec.after': run };
`;

/** A fresh folder with the recording handlers module; pass dir as RECORD_DIR and file as --handlers. */
export function recordingHandlers(): { dir: string; file: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supaqueue-runs-'));
  const file = path.join(dir, 'handlers.mjs');
  fs.writeFileSync(file, HANDLERS_SOURCE);
  return { dir, file, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Every run recorded in dir, ordered by start. */
export function readRuns(dir: string): Run[] {
  const runs = new Map<string, Run>();
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.jsonl'))) {
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const e = JSON.parse(line) as { ev: string; at: number; cause?: string } & Omit<Run, 'start'>;
      const key = `${e.job}/${e.lease}/${e.pid}`;
      if (e.ev === 'start') runs.set(key, { job: e.job, lease: e.lease, attempt: e.attempt, worker: e.worker, pid: e.pid, start: e.at });
      const r = runs.get(key);
      if (!r) continue;
      if (e.ev === 'end') r.end = e.at;
      if (e.ev === 'abort') { r.abortAt = e.at; r.cause = e.cause; }
    }
  }
  return [...runs.values()].sort((a, b) => a.start - b.start);
}

/** A worker's log lines that report a deadlock (40P01), shortened to what says where it happened. */
export function deadlockLogs(logs: Array<Record<string, unknown>>): string[] {
  return logs.filter((l) => /40P01|deadlock/i.test(JSON.stringify(l))).map((l) => {
    const err = (l.err ?? {}) as { message?: string; where?: string };
    return [l.msg, l.kind ?? l.call, err.message, err.where].filter(Boolean).join(' | ');
  });
}
