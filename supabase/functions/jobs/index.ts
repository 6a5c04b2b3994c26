/**
 * Edge Function `jobs`: the jobs HTTP API (routes.ts) and, under /jobs/schedules, recurring jobs
 * (schedules-routes.ts). Deployed with
 *   supabase functions deploy jobs --no-verify-jwt
 * (the function verifies tokens itself; the gateway's check would refuse CORS preflights).
 *
 * Run it directly with Deno (what scripts/lib/functions.ts does for `npm start` and the tests):
 *   PORT=8001 SUPABASE_URL=http://127.0.0.1:54321 \
 *   SUPABASE_DB_URL=postgresql://postgres:postgres@127.0.0.1:54322/postgres \
 *   SUPABASE_JWT_SECRET=super-secret-jwt-token-with-at-least-32-characters-long \
 *   node_modules/.bin/deno run --allow-net --allow-env --allow-read --no-lock \
 *     --config supabase/functions/jobs/deno.json supabase/functions/jobs/index.ts
 * then: curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8001/jobs
 */
import { getConfig } from '../_supaqueue/config.ts';
import { createHandler } from './app.ts';
import { createSchedulesRouter } from './schedules-routes.ts';
import { createStatsRouter } from './stats-routes.ts';

// /jobs/schedules and /jobs/stats are mounted before /jobs/:id (see app.ts), which would take them for ids.
const handler = createHandler(getConfig(), (deps) => [
  { path: '/jobs/schedules', router: createSchedulesRouter(deps) },
  { path: '/jobs/stats', router: createStatsRouter(deps) },
]);

// PORT is for local runs only; on Supabase the runtime decides where the function listens.
const port = Deno.env.get('PORT');
if (port) {
  Deno.serve({ port: Number(port), hostname: '127.0.0.1', onListen: () => {} }, handler);
} else {
  Deno.serve(handler);
}
