// What a language contributes to `capgate init`: the SDK to copy and the files around it.

export const INIT_LANGUAGES = ['assemblyscript', 'rust', 'c'] as const;
export type InitLanguage = (typeof INIT_LANGUAGES)[number];

/** One file of a fresh project: path relative to the project root, and its text. */
export type ProjectFile = readonly [path: string, text: string];

export interface ProjectTemplate {
  readonly lang: InitLanguage;
  /** The SDK folder in capgate's host-api/, copied whole into the project's SDK directory. */
  readonly sdkSource: URL;
  /** Every file besides the SDK; `name` is already a valid package/crate name. */
  files(name: string): Promise<ProjectFile[]>;
  /** Commands to run in the new project, shown after `created ...`. */
  readonly nextSteps: readonly string[];
}
