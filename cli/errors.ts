/**
 * Errors the CLI reports to the user as a message and an exit code, without a stack trace: anything else
 * reaching main() is a bug and is printed in full.
 */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CliError';
  }
}

/** Wrong command line (unknown option, missing value): exit code 2, like most Unix tools. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/** The Node error code of a failed fs call (ENOENT, EACCES, EPERM, ...), if any. */
export function errnoCode(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}
