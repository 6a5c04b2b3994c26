/**
 * vitest global setup: one Postgres server for the whole run, holding a migrated template database.
 * Each test file clones its own database from the template (tests/helpers/db.ts), so files cannot steal
 * each other's jobs and can run in parallel.
 *
 * Without DATABASE_URL: embedded Postgres 17 on a free port in a temporary folder, with the Supabase
 * platform bootstrap. With DATABASE_URL: that server (e.g. `supabase start` on 54322), which must allow
 * CREATE DATABASE; a non-local URL is refused unless SUPAQUEUE_ALLOW_REMOTE_TESTS=1.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { freePort, startEmbeddedPostgres, type EmbeddedHandle } from '../../scripts/lib/pg.ts';
import { bootstrapSupabasePlatform, isLocalUrl, resetDatabase, withDatabase } from '../../scripts/lib/stack.ts';

export const TEMPLATE_DB = 'supaqueue_template';

declare module 'vitest' {
  export interface ProvidedContext {
    pgServerUrl: string;
    templateDb: string;
    embedded: boolean;
    pgDataDir: string;
  }
}

let embedded: EmbeddedHandle | undefined;
let dataDir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  let serverUrl = process.env.DATABASE_URL;
  if (serverUrl) {
    if (!isLocalUrl(serverUrl) && process.env.SUPAQUEUE_ALLOW_REMOTE_TESTS !== '1') {
      throw new Error('DATABASE_URL is not local; the tests create and drop databases there. Set SUPAQUEUE_ALLOW_REMOTE_TESTS=1 to allow it.');
    }
  } else {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'supaqueue-test-'));
    fs.chmodSync(dataDir, 0o755);
    embedded = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'pg'), port: await freePort(), quiet: true });
    serverUrl = embedded.url;
  }

  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${TEMPLATE_DB} with (force)`);
    await admin.unsafe(`create database ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  const templateUrl = withDatabase(serverUrl, TEMPLATE_DB);
  if (embedded) await bootstrapSupabasePlatform(templateUrl);
  await resetDatabase(templateUrl, { seed: false });

  project.provide('pgServerUrl', serverUrl);
  project.provide('templateDb', TEMPLATE_DB);
  project.provide('embedded', Boolean(embedded));
  project.provide('pgDataDir', embedded ? embedded.dataDir : '');
}

export async function teardown(): Promise<void> {
  if (embedded) await embedded.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}
