// Why an uploaded policy was refused. Thrown inside the upload pipeline and turned into a
// CompileResult value at its boundary (compilePolicy); it never escapes the engine.
import type { CompileErrorKind } from '../api.ts';

export class PolicyRejection extends Error {
  constructor(
    readonly kind: CompileErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'PolicyRejection';
  }
}

export const invalidModule = (message: string): PolicyRejection => new PolicyRejection('invalid-module', message);
export const disallowedImport = (message: string): PolicyRejection => new PolicyRejection('disallowed-import', message);
