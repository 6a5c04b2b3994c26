/**
 * The local edge functions server: what `supabase functions serve` does, without Docker.
 *
 * Every folder of `functionsDir` with an index.ts (except `_supaqueue` and other `_`/`.` folders) runs in
 * its own real Deno process (node_modules/.bin/deno) on an internal port, with only the given env (plus
 * what Deno itself needs), like an isolate on Supabase. A small Node reverse proxy on `port` serves
 * them as http://127.0.0.1:<port>/functions/v1/<name>/..., stripping /functions/v1 as Supabase's
 * gateway does, so each function sees paths beginning with /<name>. Deno's output is prefixed with the
 * function's name. Resolves once every function answers HTTP; stop() ends them all.
 *
 * Dependencies: `npm install` is the only install step. Deno resolves the functions' `npm:` imports
 * from the project's node_modules (`--node-modules-dir=manual`, overriding the deno.json's "none",
 * which stays for `supabase functions deploy`), and `--cached-only` forbids any download: a function
 * never fetches a package when it starts or serves a request, and a missing one is a clear error.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { freePort } from './pg.ts';
import { ROOT } from './stack.ts';

export interface ServeFunctionsOptions {
  /** Public port of the proxy (54321 for `npm start`). */
  port: number;
  /** The functions' environment (SUPABASE_URL, SUPABASE_DB_URL, ...). */
  env: Record<string, string>;
  /** Folder holding one folder per function; default: this project's supabase/functions. */
  functionsDir?: string;
  /** Serve only these functions (default: every function folder). */
  only?: string[];
  /** Drop Deno's output instead of prefixing it to stderr. */
  quiet?: boolean;
  /** Also receives every line the functions print (tests read the logs this way). */
  onOutput?: (name: string, line: string) => void;
  /** How long to wait for each function to answer (nothing is downloaded; 30 s is generous). */
  readyTimeoutMs?: number;
}

export interface FunctionsServer {
  /** http://127.0.0.1:<port>: the "project URL" to give createClient (it appends /functions/v1). */
  url: string;
  /** http://127.0.0.1:<port>/functions/v1 */
  functionsUrl: string;
  /** The functions served, by name. */
  functions: string[];
  /** Each function's Deno process and internal port (for debugging; callers use the proxy). */
  processes: { name: string; pid: number; port: number }[];
  stop(): Promise<void>;
}

export const DENO = path.join(ROOT, 'node_modules/.bin/deno');
/** Flags every local Deno run and check takes: dependencies from node_modules, never a download. */
export const DENO_DEPENDENCY_FLAGS = ['--node-modules-dir=manual', '--cached-only', '--no-lock'];
const HOST = '127.0.0.1';
// What Deno needs from our environment to find its cache and to trust what this machine trusts (a
// function's own outgoing calls, e.g. the JWKS fetch, may pass a TLS-inspecting proxy); nothing else of
// ours (DATABASE_URL, keys, ...) leaks into the functions.
const PASSTHROUGH_ENV = ['PATH', 'HOME', 'TMPDIR', 'DENO_DIR', 'XDG_CACHE_HOME', 'NPM_CONFIG_REGISTRY',
  'DENO_CERT', 'DENO_TLS_CA_STORE', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR',
  'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];

/** The environment for any Deno process we start: the passthrough, and the system CA store trusted. */
export function denoEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_TLS_CA_STORE: 'system' };
  for (const key of PASSTHROUGH_ENV) if (process.env[key] !== undefined) env[key] = process.env[key]!;
  return Object.assign(env, extra);
}

/** A function that did not come up: which one, its first error line, and what usually fixes it. */
export class FunctionStartError extends Error {
  constructor(readonly functionName: string, readonly firstError: string, readonly hint: string, readonly output: string) {
    super(`edge function '${functionName}' could not start: ${firstError}\n  likely fix: ${hint}`);
    this.name = 'FunctionStartError';
  }
}

const HINTS: [RegExp, string][] = [
  [/Could not find a matching package|Cannot find module|not found in the node_modules/i,
    'run `npm install` (the functions load their packages from node_modules); if you changed an import, keep the deno.json version equal to package.json\'s'],
  [/Specifier not found in cache|--cached-only/i, 'an import is not an npm: package installed by `npm install`; add it to package.json and deno.json'],
  [/invalid peer certificate|UnknownIssuer|certificate/i,
    'Deno does not trust this network\'s TLS proxy: put its CA in the system store or NODE_EXTRA_CA_CERTS (DENO_TLS_CA_STORE=system is set)'],
  [/invalid function configuration/i, 'fix the environment variable it names (see the README\'s table of function variables)'],
  [/AddrInUse|address already in use/i, 'another process holds the port; stop it'],
];

function describeFailure(name: string, output: string, fallback: string): FunctionStartError {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const first = lines.find((l) => /error/i.test(l)) ?? lines[0] ?? fallback;
  const hint = HINTS.find(([re]) => re.test(output))?.[1] ?? 'read the function\'s output above; `npm run typecheck` finds most mistakes';
  return new FunctionStartError(name, first.replace(/^error:\s*/i, ''), hint, output);
}

interface RunningFunction {
  name: string;
  port: number;
  child: ChildProcess;
}

/** Function folders: a name Supabase would accept and an index.ts. */
export function discoverFunctions(functionsDir: string): string[] {
  return fs.readdirSync(functionsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(d.name))
    .filter((d) => fs.existsSync(path.join(functionsDir, d.name, 'index.ts')))
    .map((d) => d.name)
    .sort();
}

/** The function's own deno.json (Supabase's layout), else a shared one or an import map beside it. */
function configArgs(functionsDir: string, name: string): string[] {
  for (const dir of [path.join(functionsDir, name), functionsDir]) {
    for (const file of ['deno.json', 'deno.jsonc']) {
      if (fs.existsSync(path.join(dir, file))) return ['--config', path.join(dir, file)];
    }
    if (fs.existsSync(path.join(dir, 'import_map.json'))) return ['--import-map', path.join(dir, 'import_map.json')];
  }
  return [];
}

function forwardLines(stream: NodeJS.ReadableStream | null, name: string, opts: ServeFunctionsOptions, tail: string[]): void {
  let buffered = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      opts.onOutput?.(name, line);
      if (!opts.quiet) process.stderr.write(`[fn:${name}] ${line}\n`);
    }
  });
}

async function startFunction(functionsDir: string, name: string, opts: ServeFunctionsOptions, spawned: ChildProcess[]): Promise<RunningFunction> {
  const port = await freePort();
  const env = denoEnv({ ...opts.env, PORT: String(port) });
  const dir = path.join(functionsDir, name);
  const args = ['run', '--allow-net', '--allow-env', '--allow-read', '--no-prompt', ...DENO_DEPENDENCY_FLAGS,
    ...configArgs(functionsDir, name), path.join(dir, 'index.ts')];
  const child = spawn(DENO, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.push(child);
  const tail: string[] = [];
  forwardLines(child.stdout, name, opts, tail);
  forwardLines(child.stderr, name, opts, tail);
  try {
    await waitUntilAnswering(child, port, opts.readyTimeoutMs ?? 30_000, () => tail.join('\n'));
  } catch (e) {
    throw describeFailure(name, tail.join('\n'), (e as Error).message);
  }
  return { name, port, child };
}

/** Polls until the function answers any HTTP response; rejects if Deno exits or time runs out. */
async function waitUntilAnswering(child: ChildProcess, port: number, timeoutMs: number, output: () => string): Promise<void> {
  let exited: number | string | null = null;
  child.once('exit', (code, signal) => { exited = code ?? signal ?? 'unknown'; });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`function exited (${exited}) before answering:\n${output()}`);
    try {
      await fetch(`http://${HOST}:${port}/`, { signal: AbortSignal.timeout(1000) }).then((r) => r.arrayBuffer());
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill('SIGKILL');
  throw new Error(`function did not answer within ${timeoutMs} ms:\n${output()}`);
}

function send(res: http.ServerResponse, status: number, body: object, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...extra });
  res.end(JSON.stringify(body));
}

/** The gateway: /functions/v1/<name>/rest -> http://127.0.0.1:<fn port>/<name>/rest. */
function createProxy(byName: Map<string, number>): http.Server {
  return http.createServer((req, res) => {
    const m = /^\/functions\/v1\/([^/?#]+)([/?#].*)?$/.exec(req.url ?? '');
    const port = m ? byName.get(m[1]) : undefined;
    if (!m || port === undefined) {
      send(res, 404, { code: 'NOT_FOUND', message: 'Requested function was not found' });
      return;
    }
    const upstream = http.request({ host: HOST, port, method: req.method, path: `/${m[1]}${m[2] ?? ''}`, headers: req.headers }, (up) => {
      // A function may answer before reading the whole body (413, 401). Then stop forwarding, read
      // and discard the rest of the body, and drop that upstream connection: otherwise the unread
      // bytes make one side reset its connection and the client's *next* request on the reused
      // keep-alive connection dies with ECONNRESET.
      if (!req.complete) {
        req.unpipe(upstream);
        req.resume();
        up.once('end', () => upstream.destroy());
      }
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => {
      req.unpipe(upstream);
      req.resume();
      // The function died or reset the connection: a relay error, as Supabase's gateway reports it;
      // if the answer is already complete (the early-answer case above) there is nothing to undo.
      if (!res.headersSent) send(res, 502, { code: 'BOOT_ERROR', message: 'function is not answering' }, { 'x-relay-error': 'true' });
      else if (!res.writableFinished) res.destroy();
    });
    req.on('error', () => upstream.destroy());
    res.on('close', () => { if (!res.writableFinished) upstream.destroy(); });
    req.pipe(upstream);
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

export async function serveFunctions(opts: ServeFunctionsOptions): Promise<FunctionsServer> {
  const functionsDir = path.resolve(opts.functionsDir ?? path.join(ROOT, 'supabase/functions'));
  const found = discoverFunctions(functionsDir);
  const missing = (opts.only ?? []).filter((n) => !found.includes(n));
  if (missing.length) throw new Error(`no function folder with an index.ts for: ${missing.join(', ')} (in ${functionsDir})`);
  const names = opts.only ? found.filter((n) => opts.only!.includes(n)) : found;
  // Every Deno process from the moment it is spawned: if this Node process exits, or starting fails
  // half-way, none may outlive it holding a port and database connections.
  const spawned: ChildProcess[] = [];
  const killAll = () => { for (const child of spawned) child.kill('SIGKILL'); };
  const stopAll = async () => {
    await Promise.all(spawned.map(stopChild));
    process.off('exit', killAll);
  };
  process.once('exit', killAll);
  let running: RunningFunction[];
  let proxy: http.Server;
  try {
    // allSettled: on a failure, wait for the others to have spawned before stopping them all.
    const results = await Promise.allSettled(names.map((name) => startFunction(functionsDir, name, opts, spawned)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    running = results.map((r) => (r as PromiseFulfilledResult<RunningFunction>).value);
    proxy = createProxy(new Map(running.map((f) => [f.name, f.port])));
    await new Promise<void>((resolve, reject) => {
      proxy.once('error', reject);
      proxy.listen(opts.port, HOST, () => resolve());
    });
  } catch (e) {
    await stopAll();
    throw e;
  }
  return {
    url: `http://${HOST}:${opts.port}`,
    functionsUrl: `http://${HOST}:${opts.port}/functions/v1`,
    functions: names,
    processes: running.map((f) => ({ name: f.name, pid: f.child.pid!, port: f.port })),
    async stop() {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await stopAll();
    },
  };
}
