/**
 * supabase/functions/_supaqueue/database.types.ts is what `supabase gen types` makes of the migrated
 * schema: regenerated here from this file's database and compared with the committed file.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { generateTypes, normalizeTypes, TYPES_FILE } from '../scripts/gen-types.ts';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';

let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(async () => { await db?.drop(); });

test('the committed database types match the migrations (else run `npm run gen:types`)', async () => {
  const generated = await generateTypes(db.url);
  const committed = fs.existsSync(TYPES_FILE) ? normalizeTypes(fs.readFileSync(TYPES_FILE, 'utf8')) : '(missing)';
  expect(committed, 'supabase/functions/_supaqueue/database.types.ts is stale: run `npm run gen:types` and commit it').toBe(generated);
});

test('the generated types describe the public API (tables, RPCs and the status enum)', () => {
  const types = fs.readFileSync(TYPES_FILE, 'utf8');
  for (const name of ['job_queue', 'tenants', 'tenant_members', 'enqueue_jobs', 'claim_jobs', 'job_status']) {
    expect(types).toMatch(new RegExp(`"${name}":`));
  }
});
