// Why a policy project did not build. Crosses into the CLI, which maps `kind` to an exit code.

export type ProjectBuildErrorKind =
  /** No compiler for the language: `hint` says exactly what to install. */
  | 'toolchain-missing'
  /** The directory is not a project of that language (no Cargo.toml, no src/*.c, no SDK). */
  | 'not-a-project'
  /** The compiler ran and refused the sources: `message` carries its diagnostics. */
  | 'compile-failed';

export class ProjectBuildError extends Error {
  override readonly name = 'ProjectBuildError';
  constructor(
    readonly kind: ProjectBuildErrorKind,
    message: string,
    /** What to do about it. */
    readonly hint?: string,
  ) {
    super(message);
  }
}
