// What compiling a policy project yields, before componentizing.

export interface CompiledProject {
  /** The core module the compiler wrote. */
  core: Uint8Array;
  /** The compiler's version line, for people and for --json. */
  toolchain: string;
}

export interface BuiltProject extends CompiledProject {
  /** The policy component (core module wrapped against capgate:policy@1.0.0). */
  component: Uint8Array;
}
