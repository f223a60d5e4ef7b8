// What a language contributes to `capgate init`: the SDK to copy and the files around it.

export const INIT_LANGUAGES = ['assemblyscript', 'rust', 'c'] as const;
export type InitLanguage = (typeof INIT_LANGUAGES)[number];

/** One file of a fresh project: path relative to the project root, and its text. */
export type ProjectFile = readonly [path: string, text: string];

export interface ProjectContext {
  /** A valid package/crate name. */
  name: string;
  /** How package.json depends on capgate (an npm spec: `file:/path/to/capgate` by default). */
  capgate: string;
}

export interface ProjectTemplate {
  readonly lang: InitLanguage;
  /** The SDK folder in capgate's host-api/, copied whole into the project's SDK directory. */
  readonly sdkSource: URL;
  /** Every file besides the SDK and its docs. */
  files(project: ProjectContext): Promise<ProjectFile[]>;
}

/** Commands to run in a new project, shown after `created ...`: the same for every language. */
export const NEXT_STEPS = ['npm install', 'npm test'] as const;
