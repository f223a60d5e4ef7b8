// Every language `capgate init` scaffolds.
import { assemblyScriptTemplate } from './assemblyscript-template.ts';
import { cTemplate } from './c-template.ts';
import type { InitLanguage, ProjectTemplate } from './project-template.ts';
import { rustTemplate } from './rust-template.ts';

export const TEMPLATES: Record<InitLanguage, ProjectTemplate> = {
  assemblyscript: assemblyScriptTemplate,
  rust: rustTemplate,
  c: cTemplate,
};
