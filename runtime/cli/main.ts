// Runs one capgate command and turns every way it can end into a documented exit code.
import { CommanderError } from 'commander';
import { CapgateApiError, CapgateConnectionError } from '../client/errors.ts';
import { CliError } from './cli-error.ts';
import { EXIT } from './exit-codes.ts';
import { coloursFor } from './output/colour.ts';
import { toJson } from './output/json.ts';
import { createProgram } from './program.ts';

interface Failure {
  code: number;
  kind: string;
  message: string;
  hint?: string;
  details?: Record<string, unknown>;
}

function classify(e: unknown): Failure {
  if (e instanceof CliError)
    return {
      code: e.exitCode,
      kind: 'error',
      message: e.message,
      ...(e.hint ? { hint: e.hint } : {}),
      ...(e.details ? { details: e.details } : {}),
    };
  if (e instanceof CapgateConnectionError && e.errno === 'ETIMEDOUT') {
    return {
      code: EXIT.failed,
      kind: 'daemon-timeout',
      message: `the daemon at ${e.socketPath} did not answer in time: ${e.message}`,
      hint: 'it may be overloaded; retry, or check its logs',
    };
  }
  if (e instanceof CapgateConnectionError) {
    return {
      code: EXIT.unreachable,
      kind: 'daemon-unreachable',
      message: `no daemon at ${e.socketPath}: ${e.message}`,
      hint: e.hint,
    };
  }
  if (e instanceof CapgateApiError) {
    // A 503 or 429 with Retry-After (overloaded, not-ready, compiler-unavailable, vm-rate-limited):
    // nothing was done, and the same command may succeed later; say so, and when, and exit with
    // a code of its own (EX_TEMPFAIL), not a refusal's.
    const retryAfterS = e.status === 503 || e.status === 429 ? e.retryAfterS : undefined;
    const code =
      retryAfterS !== undefined
        ? EXIT.tempfail
        : e.code === 'bad-request' || e.code === 'not-found'
          ? EXIT.usage
          : EXIT.failed;
    const details = {
      ...(e.kind ? { kind: e.kind } : {}),
      ...(retryAfterS !== undefined ? { retryable: true, retryAfterS } : {}),
    };
    return {
      code,
      kind: e.code,
      message:
        retryAfterS !== undefined
          ? `the daemon cannot do it now (retryable, after ${retryAfterS} s): ${e.message}`
          : `the daemon refused: ${e.message}`,
      ...(e.hint ? { hint: e.hint } : {}),
      ...(Object.keys(details).length > 0 ? { details } : {}),
    };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return {
    code: EXIT.failed,
    kind: 'internal',
    message: `internal error: ${err.message}`,
    hint: process.env.CAPGATE_DEBUG ? err.stack : 'set CAPGATE_DEBUG=1 for a stack trace',
  };
}

export async function main(argv: string[]): Promise<number> {
  const program = createProgram();
  process.exitCode = undefined;
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed help, the version, or the usage error itself. Help printed
      // because a command is missing (`capgate`, `capgate policy`) is a usage error.
      const asked =
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.version' ||
        (e.code === 'commander.help' && e.exitCode === 0);
      return asked ? EXIT.ok : EXIT.usage;
    }
    const f = classify(e);
    if (argv.includes('--json')) {
      process.stdout.write(
        `${toJson({ error: { kind: f.kind, message: f.message, ...(f.hint ? { hint: f.hint } : {}), ...(f.details ?? {}) }, exitCode: f.code })}\n`,
      );
    } else {
      const c = coloursFor(process.stderr);
      process.stderr.write(`${c.fail('error:')} ${f.message}\n${f.hint ? `${c.dim('hint:')} ${f.hint}\n` : ''}`);
    }
    return f.code;
  }
}
