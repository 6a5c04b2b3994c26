/**
 * Databases for benchmarks: one server for the whole run (so every variant is measured on the same
 * Postgres), a migrated template, and a fresh clone per variant.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { freePort, startEmbeddedPostgres, type EmbeddedHandle } from '../../scripts/lib/pg.ts';
import { bootstrapSupabasePlatform, resetDatabase, withDatabase } from '../../scripts/lib/stack.ts';

const TEMPLATE = 'supaqueue_bench_template';

export interface BenchServer {
  url: string;
  /** A fresh database: 'migrated' is a clone of the migrated template, 'empty' a plain new database. */
  freshDatabase(kind: 'migrated' | 'empty'): Promise<{ url: string; drop(): Promise<void> }>;
  stop(): Promise<void>;
}

export async function startBenchServer(): Promise<BenchServer> {
  let embedded: EmbeddedHandle | undefined;
  let dir: string | undefined;
  let url = process.env.DATABASE_URL;
  if (!url) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supaqueue-bench-'));
    fs.chmodSync(dir, 0o755);
    embedded = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: await freePort(), quiet: true });
    url = embedded.url;
  }
  const serverUrl = url;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${TEMPLATE} with (force)`);
  await admin.unsafe(`create database ${TEMPLATE}`);
  if (embedded) await bootstrapSupabasePlatform(withDatabase(serverUrl, TEMPLATE));
  // BENCH_WORKDIR: a directory holding another supabase/ (e.g. without an unfinished migration) for
  // developing the benchmark itself; unset, the repository's own migrations are applied.
  await resetDatabase(withDatabase(serverUrl, TEMPLATE), { seed: false, workdir: process.env.BENCH_WORKDIR });
  let n = 0;
  return {
    url: serverUrl,
    async freshDatabase(kind) {
      const name = `bench_${process.pid}_${n++}`;
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.unsafe(kind === 'migrated' ? `create database ${name} template ${TEMPLATE}` : `create database ${name}`);
      return {
        url: withDatabase(serverUrl, name),
        drop: async () => { await admin.unsafe(`drop database if exists ${name} with (force)`); },
      };
    },
    async stop() {
      await admin.end();
      if (embedded) await embedded.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
