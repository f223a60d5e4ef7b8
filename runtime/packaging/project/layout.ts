// The layout of a policy project made by `capgate init`, which `capgate build --lang` relies on:
// the SDK is copied into the project (no registry, no network), sources sit in src/.

/** The SDK's directory inside a project (host-api/<lang> copied at init). */
export const PROJECT_SDK_DIR = 'capgate-sdk';

/** C projects: every `src/*.c` is compiled together with the SDK's runtime. */
export const C_SOURCE_DIR = 'src';
export const C_RUNTIME_FILE = 'capgate_runtime.c';

/** Languages `capgate build --lang` compiles from source (AssemblyScript projects call asc themselves). */
export const SOURCE_LANGUAGES = ['rust', 'c'] as const;
export type SourceLanguage = (typeof SOURCE_LANGUAGES)[number];
