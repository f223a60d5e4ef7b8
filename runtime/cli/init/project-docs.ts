// The documentation a policy project carries: its SDK's README, the contract, the WIT and the
// scenario format, copied from capgate with every relative link rewritten to point inside the
// project. A link to something the project does not hold becomes plain text: no dead links.
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { PROJECT_SDK_DIR } from '../../packaging/project/layout.ts';
import type { InitLanguage } from './project-template.ts';

/** Single files copied besides the SDK folder: capgate-relative source -> project-relative destination. */
const EXTRA_DOCS: ReadonlyArray<readonly [string, string]> = [
  ['host-api/README.md', `${PROJECT_SDK_DIR}/CONTRACT.md`],
  ['host-api/wit/policy.wit', `${PROJECT_SDK_DIR}/wit/policy.wit`],
  ['runtime/simulator/SCENARIO.md', `${PROJECT_SDK_DIR}/SCENARIO.md`],
];

/** Where a capgate file lives in the project, if it was copied there. */
function placeOf(lang: InitLanguage, source: string): string | undefined {
  const extra = EXTRA_DOCS.find(([from]) => from === source);
  if (extra) return extra[1];
  const sdk = `host-api/${lang}`;
  if (source === sdk) return PROJECT_SDK_DIR;
  if (source.startsWith(`${sdk}/`)) return `${PROJECT_SDK_DIR}/${source.slice(sdk.length + 1)}`;
  return undefined;
}

// [text](target) and ![alt](target); the target has no spaces or parentheses in our docs.
const LINK = /(!?)\[([^\]\n]*)\]\(([^)\s]+)\)/g;

/** Rewrites the relative links of a doc copied from `source` (capgate-relative) to `dest` (project-relative). */
export function rewriteLinks(markdown: string, lang: InitLanguage, source: string, dest: string): string {
  return markdown.replace(LINK, (whole, bang: string, text: string, target: string) => {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) return whole;
    const [path, anchor] = target.split('#', 2) as [string, string | undefined];
    const resolved = posix.normalize(posix.join(posix.dirname(source), path)).replace(/\/$/, '');
    const place = placeOf(lang, resolved);
    if (place === undefined) return bang ? '' : text;
    const relative = posix.relative(posix.dirname(dest), place) || '.';
    return `${bang}[${text}](${relative}${anchor !== undefined ? `#${anchor}` : ''})`;
  });
}

async function markdownFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await markdownFiles(join(dir, entry.name), rel)));
    else if (entry.name.endsWith('.md')) out.push(rel);
  }
  return out;
}

/** Copies the extra docs into `project` and rewrites the links of every doc in its SDK folder. */
export async function writeProjectDocs(capgateRoot: string, project: string, lang: InitLanguage): Promise<string[]> {
  for (const [from, to] of EXTRA_DOCS) {
    const text = await readFile(join(capgateRoot, from), 'utf8');
    await mkdir(join(project, posix.dirname(to)), { recursive: true });
    await writeFile(join(project, to), to.endsWith('.md') ? rewriteLinks(text, lang, from, to) : text);
  }
  for (const rel of await markdownFiles(join(project, PROJECT_SDK_DIR))) {
    const dest = `${PROJECT_SDK_DIR}/${rel}`;
    if (EXTRA_DOCS.some(([, to]) => to === dest)) continue; // rewritten above
    const text = await readFile(join(project, dest), 'utf8');
    await writeFile(join(project, dest), rewriteLinks(text, lang, `host-api/${lang}/${rel}`, dest));
  }
  return EXTRA_DOCS.map(([, to]) => to);
}
