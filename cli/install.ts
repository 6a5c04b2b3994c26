/**
 * `supaqueue install`: puts supaqueue's migrations and edge functions into an existing Supabase project
 * (one made by `supabase init`), like `npx pgflow install`. Safe to run again: what is there already is
 * recognised and left alone, an upgrade adds only what is new, and a user's file is never overwritten.
 */
import path from 'node:path';
import { applyPlan, checkWritable } from './apply.ts';
import { CliError } from './errors.ts';
import { display, planInstall, type Action, type Plan } from './plan.ts';
import { readPackageSource } from './source.ts';

export interface InstallOptions {
  dir: string;
  dryRun: boolean;
  /** Where to print progress (stdout in the CLI). */
  out?: (line: string) => void;
}

export type InstallOutcome = 'installed' | 'already-installed' | 'dry-run';

export function install(opts: InstallOptions): InstallOutcome {
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const source = readPackageSource();
  const plan = planInstall(source, path.resolve(opts.dir));
  if (plan.conflicts.length > 0) {
    throw new CliError(`these paths are in the way of supaqueue's files:\n${plan.conflicts.map((c) => `  ${c}`).join('\n')}\n` +
      'supaqueue never overwrites your files. Move or rename them, then run install again. Nothing was changed.');
  }
  if (plan.actions.length === 0) {
    out(`supaqueue ${plan.version} is already installed in ${plan.projectDir}; nothing to do.`);
    return 'already-installed';
  }
  const from = plan.previousVersion && plan.previousVersion !== plan.version ? ` (upgrading from ${plan.previousVersion})` : '';
  out(`${opts.dryRun ? 'Would install' : 'Installing'} supaqueue ${plan.version} into ${plan.projectDir}${from}:`);
  for (const line of describe(plan)) out(`  ${line}`);
  for (const name of plan.configKept) out(`  keep    supabase/config.toml [functions.${name}] (already there, left as is)`);
  if (opts.dryRun) {
    out('Dry run: nothing was written.');
    return 'dry-run';
  }
  checkWritable(plan);
  applyPlan(plan);
  out(`Done: supaqueue ${plan.version} is installed.`);
  out(nextSteps(source.functions.map((f) => f.name)));
  return 'installed';
}

function describe(plan: Plan): string[] {
  return plan.actions.map((a: Action) => {
    const where = display(plan, path.join(plan.supabaseDir, a.rel));
    if (a.kind === 'append') return `append  ${where}: ${plan.configAdded.map((n) => `[functions.${n}]`).join(', ')}`;
    return `${a.kind.padEnd(6)}  ${where}`;
  });
}

function nextSteps(functions: string[]): string {
  return [
    '',
    'Next steps:',
    '  1. Apply the migrations: supabase db reset (local stack) or supabase db push (hosted, after supabase link)',
    `  2. Deploy the functions: supabase functions deploy ${functions.join(' ')}`,
    '  3. Let pg_cron run jobs-scheduler every minute (hosted; once, in the SQL editor):',
    "       select vault.create_secret('https://<project-ref>.supabase.co', 'supaqueue_project_url');",
    "       select vault.create_secret('<service_role or sb_secret_ key>', 'supaqueue_service_role_key');",
    "  4. Run a worker: import { createWorker } from 'supaqueue/worker' (see the package README)",
  ].join('\n');
}
