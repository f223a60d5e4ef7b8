// The one error type commands throw; main.ts prints it (or its JSON form) and exits with its code.
import { EXIT, type ExitCode } from './exit-codes.ts';

export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.failed,
    /** What to do about it. */
    readonly hint?: string,
    /** Extra machine-readable fields for --json. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export const usageError = (message: string, hint?: string): CliError => new CliError(message, EXIT.usage, hint);
