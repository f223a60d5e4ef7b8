// Committed, reproducible example components: guest-examples/<lang>/prebuilt/<name>.wasm plus
// BUILD-INFO.json recording the toolchain and hashes they were built with, so `npm test` works
// without Rust or clang and a rebuild with the same toolchain can be checked byte for byte.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../runtime/bootstrap/package-root.ts';

export const SDK_REPO_ROOT = PACKAGE_ROOT;

export type SdkLanguage = 'rust' | 'c';
export const SDK_LANGUAGES: readonly SdkLanguage[] = ['rust', 'c'];
/** The example policies every SDK language implements (guest-examples/README.md). */
export const SDK_EXAMPLES = ['memlock-cap', 'vfio-only'] as const;
export type SdkExample = (typeof SDK_EXAMPLES)[number];

export interface BuildInfo {
  language: SdkLanguage;
  /** The compiler's version line(s) the prebuilt artifacts came from. */
  toolchain: string;
  artifacts: Record<string, { sha256: string; bytes: number }>;
}

export function languageDir(lang: SdkLanguage): string {
  return join(SDK_REPO_ROOT, 'guest-examples', lang);
}

export function prebuiltPath(lang: SdkLanguage, name: string): string {
  return join(languageDir(lang), 'prebuilt', `${name}.wasm`);
}

function buildInfoPath(lang: SdkLanguage): string {
  return join(languageDir(lang), 'prebuilt', 'BUILD-INFO.json');
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The committed component of one example; throws with what to do when it is missing. */
export function readPrebuilt(lang: SdkLanguage, name: string): Uint8Array {
  const path = prebuiltPath(lang, name);
  if (!existsSync(path)) {
    throw new Error(
      `missing committed artifact ${path}: run \`npm run build:prebuilt -- ${lang}\` with the ${lang} toolchain installed`,
    );
  }
  return new Uint8Array(readFileSync(path));
}

export function readBuildInfo(lang: SdkLanguage): BuildInfo | null {
  const path = buildInfoPath(lang);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as BuildInfo) : null;
}

export function writePrebuilt(
  lang: SdkLanguage,
  toolchain: string,
  components: ReadonlyMap<string, Uint8Array>,
): BuildInfo {
  mkdirSync(join(languageDir(lang), 'prebuilt'), { recursive: true });
  const info: BuildInfo = { language: lang, toolchain, artifacts: {} };
  for (const [name, bytes] of [...components].sort(([a], [b]) => a.localeCompare(b))) {
    writeFileSync(prebuiltPath(lang, name), bytes);
    info.artifacts[name] = { sha256: sha256(bytes), bytes: bytes.length };
  }
  writeFileSync(buildInfoPath(lang), `${JSON.stringify(info, null, 2)}\n`);
  return info;
}
