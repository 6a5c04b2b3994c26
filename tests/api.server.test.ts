/**
 * scripts/lib/functions.ts, the local stand-in for Supabase's functions gateway, against a throwaway
 * `supabase/functions` folder of another project: every function folder is served by its own Deno
 * process under /functions/v1/<name> (prefix stripped), `_supaqueue` and folders without index.ts are
 * not, each function gets only the env it is given, import maps are the function's own deno.json or
 * the shared one, and stop() ends it all.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { serveFunctions, type FunctionsServer } from '../scripts/lib/functions.ts';
import { freePort } from '../scripts/lib/pg.ts';

let dir: string;
let server: FunctionsServer;

/** A function answering with what it saw: path, method, one env variable and an import-mapped value. */
const echo = (greetingImport: string) => `
import { greeting } from '${greetingImport}';
Deno.serve({ port: Number(Deno.env.get('PORT')), hostname: '127.0.0.1', onListen: () => {} }, (req) => {
  const url = new URL(req.url);
  return Response.json({
    path: url.pathname + url.search, method: req.method, greeting,
    given: Deno.env.get('GIVEN') ?? null, leaked: Deno.env.get('SUPAQUEUE_PARENT_ONLY') ?? null,
  });
});`;

function write(rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), text);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supaqueue-fns-'));
  write('_supaqueue/greeting.ts', `export const greeting = 'shared';`);
  write('deno.json', JSON.stringify({ imports: { greeting: './_supaqueue/greeting.ts' } }));
  // Own deno.json wins over the shared one.
  write('own-map/index.ts', echo('greeting'));
  write('own-map/greeting.ts', `export const greeting = 'own';`);
  write('own-map/deno.json', JSON.stringify({ imports: { greeting: './greeting.ts' } }));
  // No deno.json of its own: the shared one applies.
  write('shared-map/index.ts', echo('greeting'));
  write('no-entry/README.md', 'not a function');
  write('_supaqueue/index.ts', 'throw new Error("_supaqueue must never be served")');
  process.env.SUPAQUEUE_PARENT_ONLY = 'secret-of-the-parent';
  server = await serveFunctions({ port: await freePort(), functionsDir: dir, env: { GIVEN: 'yes' } });
});
afterAll(async () => {
  await server?.stop();
  delete process.env.SUPAQUEUE_PARENT_ONLY;
  fs.rmSync(dir, { recursive: true, force: true });
});

test('serves each function folder with an index.ts, and nothing else', () => {
  expect(server.functions).toEqual(['own-map', 'shared-map']);
});

test('strips /functions/v1, keeping the function name, the rest of the path and the query', async () => {
  const r = await fetch(`${server.functionsUrl}/own-map/a/b?x=1`, { method: 'PATCH' });
  expect(await r.json()).toMatchObject({ path: '/own-map/a/b?x=1', method: 'PATCH' });
});

test('a function\'s own deno.json is its import map', async () => {
  const r = await fetch(`${server.functionsUrl}/own-map`);
  expect((await r.json()).greeting).toBe('own');
});

test('without one, the shared deno.json of the functions folder applies', async () => {
  const r = await fetch(`${server.functionsUrl}/shared-map`);
  expect((await r.json()).greeting).toBe('shared');
});

test('functions get the given env and none of the parent\'s', async () => {
  const r = await fetch(`${server.functionsUrl}/shared-map`);
  expect(await r.json()).toMatchObject({ given: 'yes', leaked: null });
});

test('_supaqueue, folders without index.ts and unknown names are 404', async () => {
  const statuses = await Promise.all(['_supaqueue', 'no-entry', 'nope'].map(async (n) => (await fetch(`${server.functionsUrl}/${n}`)).status));
  expect(statuses).toEqual([404, 404, 404]);
});

test('stop() ends the Deno processes and the proxy', async () => {
  const other = await serveFunctions({ port: await freePort(), functionsDir: dir, env: {}, only: ['own-map'] });
  const [{ pid }] = other.processes;
  await other.stop();
  expect(() => process.kill(pid, 0)).toThrow();
  await expect(fetch(`${other.functionsUrl}/own-map`)).rejects.toThrow();
});
