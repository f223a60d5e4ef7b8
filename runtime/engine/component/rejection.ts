// Why an uploaded policy was refused. Thrown inside the upload pipeline and turned into a
// CompileResult value at its boundary (compilePolicy); it never escapes the engine.
/** Why a compile failed (CompileResult's kind); defined here, beside the rejection that carries it. */
export type CompileErrorKind = 'invalid-module' | 'disallowed-import' | 'memory-limit';

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
