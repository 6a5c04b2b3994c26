/**
 * The dashboard (dashboard/): build with esbuild and serve it.
 *
 *   buildDashboard()          bundles dashboard/src into app.js (+ a lazily loaded chunk for Supabase
 *                             Auth), app.css, index.html and config.json; in memory, or written to a folder
 *   serveDashboard(opts)      serves a build on 127.0.0.1:<port> with a config.json for the given project,
 *                             and relays /functions/v1/* to the project's functions (same origin: no CORS
 *                             setting needed on the project for this server)
 *
 * As a command (package.json scripts):
 *   npm run build:dashboard                         writes dashboard/dist (deploy it to any static host,
 *                                                   then edit its config.json)
 *   npm run dashboard -- --supabase-url https://<ref>.supabase.co --anon-key <anon key> [--port 54323]
 *                                                   serves it against a hosted project (Supabase Auth sign-in)
 */
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './stack.ts';

export const DASHBOARD_PORT = 54323;
const DIR = path.join(ROOT, 'dashboard');
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.json': 'application/json' };

export interface DashboardConfig {
  functionsUrl: string;
  supabaseUrl: string | null;
  anonKey: string | null;
}

/** Built files by URL path ('/app.js' -> bytes). */
export type DashboardFiles = Map<string, Uint8Array>;

export async function buildDashboard(opts: { outdir?: string } = {}): Promise<DashboardFiles> {
  const outdir = opts.outdir ?? path.join(DIR, 'dist');
  const result = await esbuild.build({
    entryPoints: { app: path.join(DIR, 'src/main.ts'), 'app-style': path.join(DIR, 'src/style.css') },
    bundle: true, minify: true, splitting: true, format: 'esm', target: ['es2022'], platform: 'browser',
    outdir, write: false, logLevel: 'silent', legalComments: 'none', sourcemap: false,
    entryNames: '[name]', chunkNames: 'chunk-[hash]',
  });
  const files: DashboardFiles = new Map();
  for (const f of result.outputFiles) {
    const name = path.basename(f.path) === 'app-style.css' ? 'app.css' : path.basename(f.path);
    if (name === 'app-style.js') continue;
    files.set(`/${name}`, f.contents);
  }
  files.set('/index.html', fs.readFileSync(path.join(DIR, 'index.html')));
  files.set('/config.json', fs.readFileSync(path.join(DIR, 'config.json')));
  if (opts.outdir !== undefined || process.env.SUPAQUEUE_WRITE_DASHBOARD === '1') writeFiles(files, outdir);
  return files;
}

function writeFiles(files: DashboardFiles, outdir: string): void {
  fs.rmSync(outdir, { recursive: true, force: true });
  fs.mkdirSync(outdir, { recursive: true });
  for (const [name, bytes] of files) fs.writeFileSync(path.join(outdir, name), bytes);
}

/** Total and gzip-free sizes, for the README (bytes). */
export function sizes(files: DashboardFiles): Record<string, number> {
  return Object.fromEntries([...files].map(([n, b]) => [n, b.byteLength]));
}

export interface ServeDashboardOptions {
  port?: number;
  /** Origin of the project whose functions /functions/v1/* is relayed to (e.g. http://127.0.0.1:54321). */
  projectUrl: string;
  /** Supabase Auth sign-in when both are given (hosted project); else the token sign-in (local stack). */
  supabaseUrl?: string | null;
  anonKey?: string | null;
  files?: DashboardFiles;
}

export interface DashboardServer {
  url: string;
  /** A URL that signs this user in on the local stack (token in the fragment, never sent to a server). */
  signInUrl(accessToken: string): string;
  stop(): Promise<void>;
}

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', 'X-Frame-Options': 'DENY',
};

function csp(supabaseUrl: string | null | undefined): string {
  const connect = ["'self'", supabaseUrl ? new URL(supabaseUrl).origin : ''].filter(Boolean).join(' ');
  return `default-src 'self'; connect-src ${connect}; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'`;
}

/** Relays one request to the project's functions (bodies are small JSON). */
async function relay(req: http.IncomingMessage, res: http.ServerResponse, projectUrl: string): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const headers: Record<string, string> = {};
  for (const h of ['authorization', 'apikey', 'content-type', 'x-trace-id', 'traceparent', 'x-client-info']) {
    const v = req.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  try {
    const up = await fetch(`${projectUrl.replace(/\/$/, '')}${req.url}`, {
      method: req.method, headers, body: chunks.length && req.method !== 'GET' && req.method !== 'HEAD' ? Buffer.concat(chunks) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
    const out: Record<string, string> = {};
    for (const h of ['content-type', 'x-trace-id', 'retry-after', 'allow']) {
      const v = up.headers.get(h);
      if (v) out[h] = v;
    }
    res.writeHead(up.status, out);
    res.end(Buffer.from(await up.arrayBuffer()));
  } catch (e) {
    res.writeHead(502, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'UNAVAILABLE', message: `the project is not reachable: ${(e as Error).message}` } }));
  }
}

export async function serveDashboard(opts: ServeDashboardOptions): Promise<DashboardServer> {
  const files = opts.files ?? await buildDashboard();
  const config: DashboardConfig = { functionsUrl: '/functions/v1', supabaseUrl: opts.supabaseUrl ?? null, anonKey: opts.anonKey ?? null };
  const configBytes = Buffer.from(JSON.stringify(config));
  const policy = csp(opts.supabaseUrl);
  const server = http.createServer((req, res) => {
    const urlPath = (req.url ?? '/').split('?')[0];
    if (urlPath.startsWith('/functions/v1/')) { void relay(req, res, opts.projectUrl); return; }
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405, { Allow: 'GET' }).end(); return; }
    const name = urlPath === '/' ? '/index.html' : urlPath;
    const body = name === '/config.json' ? configBytes : files.get(name);
    if (!body) { res.writeHead(404, { 'content-type': 'text/plain' }).end('not found'); return; }
    res.writeHead(200, {
      'content-type': TYPES[path.extname(name)] ?? 'application/octet-stream',
      'cache-control': name === '/index.html' || name === '/config.json' ? 'no-store' : 'no-cache',
      'content-security-policy': policy, ...SECURITY_HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  const port = opts.port ?? DASHBOARD_PORT;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    signInUrl: (token) => `${url}/#access_token=${encodeURIComponent(token)}`,
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const command = process.argv[2];
  if (command === 'build') {
    const outdir = path.join(DIR, 'dist');
    const files = await buildDashboard({ outdir });
    const total = [...files.values()].reduce((n, b) => n + b.byteLength, 0);
    console.log(`dashboard built into ${path.relative(process.cwd(), outdir)}: ${JSON.stringify(sizes(files))} (${(total / 1024).toFixed(1)} KiB)`);
    return;
  }
  if (command === 'serve') {
    const supabaseUrl = arg('supabase-url') ?? process.env.SUPABASE_URL;
    const anonKey = arg('anon-key') ?? process.env.SUPABASE_ANON_KEY;
    if (!supabaseUrl || !anonKey) throw new Error('give --supabase-url https://<ref>.supabase.co and --anon-key <anon key> (or SUPABASE_URL and SUPABASE_ANON_KEY)');
    const srv = await serveDashboard({ projectUrl: supabaseUrl, supabaseUrl, anonKey, port: Number(arg('port') ?? DASHBOARD_PORT) });
    console.log(`supaqueue dashboard for ${supabaseUrl}: ${srv.url}  (Ctrl-C stops it)`);
    process.on('SIGINT', () => void srv.stop().then(() => process.exit(0)));
    return;
  }
  throw new Error('usage: dashboard.ts build | serve --supabase-url <url> --anon-key <key> [--port 54323]');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => { console.error(`[supaqueue] ${(e as Error).message}`); process.exit(1); });
}
