#!/usr/bin/env node
/**
 * The `supaqueue` command. Exit codes: 0 done (or nothing to do), 1 the install was refused or failed
 * (nothing changed), 2 a wrong command line.
 */
import { CliError, UsageError } from './errors.ts';
import { install } from './install.ts';
import { packageVersion } from './source.ts';

const HELP = `Usage: supaqueue <command> [options]

Commands:
  install      Add supaqueue's migrations and edge functions to the Supabase project in the current
               folder (or --dir). Run it again after upgrading the package: it adds only what is new.
  init         Same as install.

Options:
  --dir <path>   The project folder (the one holding supabase/); default: the current folder
  --dry-run      Print what install would do; write nothing
  -h, --help     Show this help
  -v, --version  Print the package version

Install never overwrites a file of yours: if one is in the way it stops before writing anything.`;

interface ParsedArgs {
  command?: 'install';
  help: boolean;
  version: boolean;
  dir: string;
  dryRun: boolean;
}

function parseArgs(argv: string[]): ParsedArgs {
  const parsed: ParsedArgs = { help: false, version: false, dir: process.cwd(), dryRun: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help' || arg === 'help') parsed.help = true;
    else if (arg === '-v' || arg === '--version') parsed.version = true;
    else if (arg === '--dry-run') parsed.dryRun = true;
    else if (arg === '--dir' || arg.startsWith('--dir=')) {
      const value = arg === '--dir' ? argv[++i] : arg.slice('--dir='.length);
      if (!value) throw new UsageError('--dir needs a path');
      parsed.dir = value;
    } else if ((arg === 'install' || arg === 'init') && parsed.command === undefined) parsed.command = 'install';
    else throw new UsageError(`unknown ${arg.startsWith('-') ? 'option' : 'command'}: ${arg}`);
  }
  return parsed;
}

function main(argv: string[]): number {
  try {
    const args = parseArgs(argv);
    // --help and --version win wherever they appear, as with most CLIs (`supaqueue install --help`).
    if (args.help) {
      process.stdout.write(`${HELP}\n`);
    } else if (args.version) {
      process.stdout.write(`${packageVersion()}\n`);
    } else if (args.command === 'install') {
      install({ dir: args.dir, dryRun: args.dryRun });
    } else {
      throw new UsageError('no command given');
    }
    return 0;
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    process.stderr.write(`supaqueue: ${e.message}\n`);
    if (e instanceof UsageError) process.stderr.write(`\n${HELP}\n`);
    return e.exitCode;
  }
}

// `supaqueue install | head` closes stdout early: not an error (the install itself is synchronous).
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
});
process.exitCode = main(process.argv.slice(2));
