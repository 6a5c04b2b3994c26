/**
 * The worker as a process:  tsx worker/cli.ts --handlers ./path/to/handlers.ts [--types a,b]
 * (`npm run worker -- --handlers ...`). The handlers module exports `handlers` or default-exports the
 * { type: handler } map. Configuration comes from the environment, read and validated once:
 *
 *   SUPABASE_DB_URL or DATABASE_URL  postgres URL (required; see worker/README.md for poolers)
 *   WORKER_CONCURRENCY               handlers at once (10)
 *   WORKER_BATCH_SIZE                max jobs per claim (= concurrency)
 *   WORKER_LEASE_SECONDS             lease length (15)
 *   WORKER_HEARTBEAT_INTERVAL_MS     (lease/3)
 *   WORKER_CALL_TIMEOUT_MS           deadline of each database call (5000)
 *   WORKER_POLL_INTERVAL_MS          idle polling (500)
 *   WORKER_LISTEN                    auto | true | false (auto)
 *   WORKER_SHUTDOWN_GRACE_MS         grace for running jobs on SIGTERM/SIGINT (10000)
 *   WORKER_MAINTENANCE_INTERVAL_MS   run_maintenance period; 0 or false = never (60000)
 *   WORKER_JOB_TIMEOUT_MS            per-attempt limit; 0 or false = none (900000)
 *   WORKER_TYPES                     comma-separated types to claim, each with a handler (the handlers' types); --types overrides
 *   WORKER_ID                        (hostname-pid-random)
 *   WORKER_POOLER                    auto | none | session | transaction (auto)
 *   WORKER_ROLE                      role to act as (service_role)
 *   WORKER_MAX_CONNECTIONS           pool size (5)
 *   WORKER_LOG_LEVEL                 pino level: fatal error warn info debug trace silent (info; LOG_LEVEL is read too)
 *
 * Logs are pino JSON lines on stdout. SIGTERM/SIGINT: stop claiming, let running jobs finish within the
 * grace, release the rest, exit 0; a second signal exits 1 at once. Exit 2: invalid configuration.
 * Exit 1: the worker could not start, an internal loop crashed (the worker stopped itself: see `done`
 * in worker/worker.ts), or an uncaught exception / unhandled rejection (e.g. from a handler's stray
 * callback): a process that is no longer sound exits so its supervisor restarts it; its running jobs
 * were released (loop crash) or run again one lease later.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { z } from 'zod';
import { logLevelSchema } from './config.ts';
import { createWorker, WorkerConfigError, type Handlers, type WorkerOptions } from './index.ts';

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const int = z.preprocess(blankToUndefined, z.coerce.number().int().optional());
const num = z.preprocess(blankToUndefined, z.coerce.number().optional());
const intOrOff = z.preprocess(blankToUndefined, z.union([z.enum(['0', 'false', 'off']).transform(() => false as const), z.coerce.number().int().positive()]).optional());
const text = z.preprocess(blankToUndefined, z.string().optional());

const envSchema = z.object({
  SUPABASE_DB_URL: text,
  DATABASE_URL: text,
  WORKER_CONCURRENCY: int,
  WORKER_BATCH_SIZE: int,
  WORKER_LEASE_SECONDS: num,
  WORKER_HEARTBEAT_INTERVAL_MS: int,
  WORKER_CALL_TIMEOUT_MS: int,
  WORKER_POLL_INTERVAL_MS: int,
  WORKER_LISTEN: z.preprocess(blankToUndefined, z.enum(['auto', 'true', 'false']).optional()),
  WORKER_SHUTDOWN_GRACE_MS: int,
  WORKER_MAINTENANCE_INTERVAL_MS: intOrOff,
  WORKER_JOB_TIMEOUT_MS: intOrOff,
  WORKER_TYPES: text,
  WORKER_ID: text,
  WORKER_POOLER: z.preprocess(blankToUndefined, z.enum(['auto', 'none', 'session', 'transaction']).optional()),
  WORKER_ROLE: text,
  WORKER_MAX_CONNECTIONS: int,
  WORKER_LOG_LEVEL: z.preprocess(blankToUndefined, logLevelSchema.optional()),
  /** The older name, read when WORKER_LOG_LEVEL is unset. */
  LOG_LEVEL: z.preprocess(blankToUndefined, logLevelSchema.optional()),
}).refine((e) => e.SUPABASE_DB_URL || e.DATABASE_URL, { message: 'set SUPABASE_DB_URL or DATABASE_URL', path: ['SUPABASE_DB_URL'] });

/** Option -> the variable that sets it, so option errors point at what the operator can change. */
const ENV_OF: Record<string, string> = {
  concurrency: 'WORKER_CONCURRENCY', batchSize: 'WORKER_BATCH_SIZE', leaseSeconds: 'WORKER_LEASE_SECONDS',
  heartbeatIntervalMs: 'WORKER_HEARTBEAT_INTERVAL_MS', callTimeoutMs: 'WORKER_CALL_TIMEOUT_MS', pollIntervalMs: 'WORKER_POLL_INTERVAL_MS', listen: 'WORKER_LISTEN',
  shutdownGraceMs: 'WORKER_SHUTDOWN_GRACE_MS', maintenanceIntervalMs: 'WORKER_MAINTENANCE_INTERVAL_MS',
  jobTimeoutMs: 'WORKER_JOB_TIMEOUT_MS', types: 'WORKER_TYPES', workerId: 'WORKER_ID',
  pooler: 'WORKER_POOLER', role: 'WORKER_ROLE', maxConnections: 'WORKER_MAX_CONNECTIONS', connection: 'SUPABASE_DB_URL',
};

function fail(message: string, code = 2): never {
  process.stderr.write(`supaqueue worker: ${message}\n`);
  process.exit(code);
}

/** Reads argv and env once; exits 2 with every problem listed when something is invalid. */
function readConfig(): { handlersPath: string; options: Omit<WorkerOptions, 'handlers' | 'logger'>; logLevel: string } {
  let args;
  try {
    args = parseArgs({ options: { handlers: { type: 'string' }, types: { type: 'string' }, help: { type: 'boolean' } } }).values;
  } catch (e) {
    fail(`${(e as Error).message}\nusage: tsx worker/cli.ts --handlers ./handlers.ts [--types a,b]`);
  }
  if (args.help) fail('usage: tsx worker/cli.ts --handlers ./handlers.ts [--types a,b]  (configuration: see the header of worker/cli.ts)', 0);
  if (!args.handlers) fail('--handlers <module> is required (a module exporting `handlers` or a default { type: handler } map)');
  const env = envSchema.safeParse(process.env);
  if (!env.success) fail(`invalid environment:\n${z.prettifyError(env.error)}`);
  const e = env.data;
  const types = (args.types ?? e.WORKER_TYPES)?.split(',').map((t) => t.trim()).filter(Boolean);
  const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  return {
    handlersPath: args.handlers,
    logLevel: e.WORKER_LOG_LEVEL ?? e.LOG_LEVEL ?? 'info',
    options: {
      connection: (e.SUPABASE_DB_URL ?? e.DATABASE_URL)!,
      ...defined({
        concurrency: e.WORKER_CONCURRENCY, batchSize: e.WORKER_BATCH_SIZE, leaseSeconds: e.WORKER_LEASE_SECONDS,
        heartbeatIntervalMs: e.WORKER_HEARTBEAT_INTERVAL_MS, callTimeoutMs: e.WORKER_CALL_TIMEOUT_MS, pollIntervalMs: e.WORKER_POLL_INTERVAL_MS,
        listen: e.WORKER_LISTEN === undefined ? undefined : e.WORKER_LISTEN === 'auto' ? 'auto' as const : e.WORKER_LISTEN === 'true',
        shutdownGraceMs: e.WORKER_SHUTDOWN_GRACE_MS, maintenanceIntervalMs: e.WORKER_MAINTENANCE_INTERVAL_MS,
        jobTimeoutMs: e.WORKER_JOB_TIMEOUT_MS, types: types?.length ? types : undefined,
        workerId: e.WORKER_ID, pooler: e.WORKER_POOLER, role: e.WORKER_ROLE, maxConnections: e.WORKER_MAX_CONNECTIONS,
      }),
    },
  };
}

async function loadHandlers(modulePath: string): Promise<Handlers> {
  const mod = await import(pathToFileURL(path.resolve(process.cwd(), modulePath)).href);
  const handlers = mod.handlers ?? mod.default;
  if (!handlers || typeof handlers !== 'object') fail(`${modulePath} must export \`handlers\` or default-export a { type: handler } map`);
  return handlers as Handlers;
}

async function main(): Promise<void> {
  const config = readConfig();
  const logger = pino({ level: config.logLevel });
  // After an uncaught error nothing in the process can be trusted (Node's own default is to exit): log
  // it and exit 1 for the supervisor to restart us. The leases keep the jobs safe: they run again.
  const die = (what: string) => (err: unknown) => {
    logger.fatal({ err }, `${what}; exiting`);
    process.exit(1);
  };
  process.on('unhandledRejection', die('unhandled rejection'));
  process.on('uncaughtException', die('uncaught exception'));

  const handlers = await loadHandlers(config.handlersPath);
  let worker;
  try {
    worker = createWorker({ ...config.options, handlers, logger });
  } catch (e) {
    if (e instanceof WorkerConfigError) {
      fail(Object.entries(ENV_OF).reduce((m, [opt, env]) => m.replace(new RegExp(`\\b${opt}\\b`, 'g'), `${opt} (${env})`), e.message));
    }
    throw e;
  }
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now (running jobs run again after their lease expires)');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'signal received; shutting down gracefully');
    worker.stop().then(() => process.exit(0), (err) => { logger.error({ err }, 'stop failed'); process.exit(1); });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // A crashed loop stops the worker (its jobs released) and rejects done: exit 1 to be restarted.
  worker.done.catch((err) => {
    logger.fatal({ err }, 'worker stopped after an internal error; exiting');
    process.exit(1);
  });
  try {
    await worker.start();
  } catch (err) {
    logger.fatal({ err }, 'worker could not start');
    process.exit(1);
  }
}

void main();
