/** Supabase's own linter (`supabase db advisors`) passes with zero findings on the migrated schema. */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { runAdvisors } from '../scripts/lib/stack.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db.drop(); });

test('supabase db advisors --fail-on warn reports no issues', async () => {
  const out = await runAdvisors(db.url);
  expect(out).toContain('No issues found');
});
