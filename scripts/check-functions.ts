/**
 * `deno check` of every edge function (part of `npm run typecheck`, hence of `npm test`): `deno run`
 * does not type-check, so without this a type error in a function would only show when a request hits it.
 * Same dependency flags as the local server: packages from node_modules, nothing downloaded.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { DENO, DENO_DEPENDENCY_FLAGS, denoEnv, discoverFunctions } from './lib/functions.ts';
import { ROOT } from './lib/stack.ts';

const functionsDir = path.join(ROOT, 'supabase/functions');
let failed = 0;
for (const name of discoverFunctions(functionsDir)) {
  const dir = path.join(functionsDir, name);
  const args = ['check', ...DENO_DEPENDENCY_FLAGS, '--config', path.join(dir, 'deno.json'), path.join(dir, 'index.ts')];
  const run = spawnSync(DENO, args, { cwd: dir, env: denoEnv(), stdio: 'inherit' });
  if (run.status !== 0) {
    failed++;
    process.stderr.write(`deno check failed for function '${name}'\n`);
  }
}
process.exit(failed ? 1 : 0);
