/**
 * Migration 20261123000500 (pg_cron + pg_net calling jobs-scheduler). This database, like the embedded
 * Postgres, has neither extension: the migration must skip scheduling with a NOTICE, stay re-runnable,
 * and keep the Vault-reading invoker private to its owner.
 */
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ROOT } from '../scripts/lib/stack.ts';
import { asRole, asService, createTestDatabase, makeUser, sqlState, userClaims, type TestDatabase } from './helpers/db.ts';

const MIGRATION = path.join(ROOT, 'supabase/migrations/20261123000500_supaqueue_cron.sql');

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db?.drop(); });

test('without pg_cron/pg_net, re-running the migration succeeds with a NOTICE and schedules nothing', async () => {
  const notices: string[] = [];
  const owner = postgres(db.url, { max: 1, onnotice: (n) => notices.push(n.severity) });
  try {
    await owner.unsafe(fs.readFileSync(MIGRATION, 'utf8'));
  } finally {
    await owner.end();
  }
  expect(notices).toContain('NOTICE');
  const [{ cron }] = await db.sql`select exists (select 1 from pg_namespace where nspname = 'cron') as cron`;
  expect(cron).toBe(false);
});

test('the service role cannot call the Vault-reading invoker (42501)', async () => {
  expect(await sqlState(asService(db.sql, (tx) => tx`select supaqueue.invoke_scheduler()`))).toBe('42501');
});

test('a signed-in user cannot call the Vault-reading invoker (42501)', async () => {
  const user = await makeUser(db.sql);
  expect(await sqlState(asRole(db.sql, 'authenticated', userClaims(user), (tx) => tx`select supaqueue.invoke_scheduler()`))).toBe('42501');
});
