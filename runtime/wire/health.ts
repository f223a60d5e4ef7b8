// Health problems as lines: the top-level `problems` of a health answer (shapes in schemas/health.ts).
import type { HealthProblem } from './schemas/health.ts';

/** One line for a HealthProblem, as the top-level `problems` lists it. */
export function describeHealthProblem(p: HealthProblem): string {
  return p.kind === 'binding-suspended'
    ? `${p.operation} is suspended: ${p.policy} revision ${p.revision} may not run (${p.reason}): ${p.message}`
    : `the policy directory ${p.directory} was refused (since ${p.since}), the last good policies stay in force: ${p.message}`;
}
