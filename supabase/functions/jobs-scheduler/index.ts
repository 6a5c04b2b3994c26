/**
 * Edge Function `jobs-scheduler`: one maintenance + recurring-jobs pass per POST, service role only.
 * Deploy with
 *   supabase functions deploy jobs-scheduler --no-verify-jwt
 * (it checks the bearer itself, and an opaque sb_secret_ key would not pass the gateway's JWT check).
 * pg_cron calls it every minute (migration 20261123000500_supaqueue_cron.sql, secrets in Vault).
 *
 * Run it directly with Deno, as scripts/lib/functions.ts does:
 *   PORT=8002 SUPABASE_URL=http://127.0.0.1:54321 \
 *   SUPABASE_DB_URL=postgresql://postgres:postgres@127.0.0.1:54322/postgres \
 *   SUPABASE_JWT_SECRET=super-secret-jwt-token-with-at-least-32-characters-long \
 *   node_modules/.bin/deno run --allow-net --allow-env --allow-read --allow-sys --no-lock \
 *     --config supabase/functions/jobs-scheduler/deno.json supabase/functions/jobs-scheduler/index.ts
 * then: curl -X POST -H "Authorization: Bearer $SERVICE_ROLE_KEY" http://127.0.0.1:8002/jobs-scheduler
 */
import { createVerifier } from '../_supaqueue/auth.ts';
import { createDb } from '../_supaqueue/db.ts';
import { log, describeError } from '../_supaqueue/log.ts';
import { createSchedulerApp } from './app.ts';
import { createServiceAuthorizer } from './auth.ts';
import { loadSchedulerConfig } from './config.ts';

const cfg = loadSchedulerConfig(Deno.env.toObject());
const app = createSchedulerApp({
  sql: createDb(cfg.base).sql,
  authorize: createServiceAuthorizer({
    serviceRoleKey: cfg.serviceRoleKey, jwtSecret: cfg.base.jwt.secret, users: createVerifier(cfg.base.jwt),
  }),
  limits: cfg.limits,
});

const handler = async (req: Request): Promise<Response> => {
  try {
    return await app.fetch(req);
  } catch (e) {
    log('error', 'unhandled error', describeError(e));
    return new Response('{"error":{"code":"INTERNAL","message":"internal error"}}', {
      status: 500, headers: { 'Content-Type': 'application/json' },
    });
  }
};

// PORT is for local runs only; on Supabase the runtime decides where the function listens.
const port = Deno.env.get('PORT');
if (port) {
  Deno.serve({ port: Number(port), hostname: '127.0.0.1', onListen: () => {} }, handler);
} else {
  Deno.serve(handler);
}
