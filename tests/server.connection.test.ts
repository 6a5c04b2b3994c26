/**
 * How supaqueue/server becomes service_role, as the worker does (tests/worker.lib.test.ts): from a login
 * role that is only a member of service_role (like `postgres` on Supabase), directly (startup parameter)
 * and through a pooler (pooler 'transaction' / 'session' on a direct URL simulates Supavisor: the role is
 * set per transaction and nothing is left on the session).
 */
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createQueue, QueueConfigError, type Queue } from '../server/index.ts';
import { makeTenant, sqlState, useTestDatabase } from './helpers/db.ts';
import { useLoginRoles } from './helpers/roles.ts';

const db = useTestDatabase();
/** A login role with no privileges of its own: it can work only by switching to service_role. */
const loginRole = useLoginRoles(db, 'srv_login');
let tenant: string;
const queues: Queue[] = [];

beforeAll(async () => {
  tenant = await makeTenant(db.sql);
});
afterAll(async () => {
  await Promise.all(queues.map((q) => q.end()));
});

function track(q: Queue): Queue {
  queues.push(q);
  return q;
}

it.each(['none', 'session', 'transaction'] as const)('works as service_role from a login role that is only its member (pooler: %s)', async (pooler) => {
  const queue = track(createQueue({ connection: await loginRole(true), pooler }));
  const { id } = await queue.enqueue({ tenant_id: tenant, type: `srv.${pooler}` });
  expect(await queue.getJob(id)).toMatchObject({ id, type: `srv.${pooler}` });
  expect((await queue.createTenant({ name: `via ${pooler}` })).name).toBe(`via ${pooler}`);
});

it('a client passed in gets the role per transaction only: its session is left as it was', async () => {
  const url = await loginRole(true);
  const client = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const queue = createQueue({ connection: client });
    await queue.enqueue({ tenant_id: tenant, type: 'srv.client' });
    const [{ user, role }] = await client`select current_user as user, current_setting('role') as role`;
    expect({ user, role }).toEqual({ user: new URL(url).username, role: 'none' });
    await queue.end(); // not ours: the client stays usable
    expect(await client`select 1 as one`).toEqual([{ one: 1 }]);
  } finally {
    await client.end();
  }
});

it('rejects calls when the login role may not become service_role (42501)', async () => {
  const queue = track(createQueue({ connection: await loginRole(false) }));
  expect(await sqlState(queue.enqueue({ tenant_id: tenant, type: 'srv.denied' }))).toBe('42501');
});

it('rejects invalid options, listing every problem', () => {
  let error: unknown;
  try {
    createQueue({ connection: '', pooler: 'sometimes' as never, maxConnections: 0 });
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(QueueConfigError);
  expect((error as Error).message).toMatch(/connection/);
  expect((error as Error).message).toMatch(/pooler/);
  expect((error as Error).message).toMatch(/maxConnections/);
});
