// The layout of a policy project made by `capgate init`, which `capgate build --lang` relies on:
// the SDK is copied into the project (no registry, no network), sources sit in src/.

/** The SDK's directory inside a project (host-api/<lang> copied at init). */
export const PROJECT_SDK_DIR = 'capgate-sdk';

/** C projects: every `src/*.c` is compiled together with the SDK's runtime. */
export const C_SOURCE_DIR = 'src';
export const C_RUNTIME_FILE = 'capgate_runtime.c';

/** AssemblyScript projects: the entry file, compiled with the project's own asc. */
export const AS_ENTRY = 'assembly/policy.ts';

/** Languages `capgate build --lang` compiles from source. */
export const SOURCE_LANGUAGES = ['assemblyscript', 'rust', 'c'] as const;
export type SourceLanguage = (typeof SOURCE_LANGUAGES)[number];

/** How to build: release with function names (default), stripped of them, or a debug build. */
export interface BuildOptions {
  /** Drop the name section and every other custom section. */
  strip?: boolean;
  /** No optimizations, assertions and debug checks on, names kept. */
  debug?: boolean;
}
