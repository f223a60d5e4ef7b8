// Rebuilds the committed example components of the Rust and C SDKs from source:
//   npm run build:prebuilt -- [rust] [c]
// Writes guest-examples/<lang>/prebuilt/<name>.wasm and BUILD-INFO.json (toolchain, sha256).
import { pathToFileURL } from 'node:url';
import { buildCExample, findCToolchain } from './c.ts';
import { SDK_EXAMPLES, SDK_LANGUAGES, type BuildInfo, type SdkLanguage, writePrebuilt } from './prebuilt.ts';
import { buildRustExample, findRustToolchain } from './rust.ts';

export async function updatePrebuilt(lang: SdkLanguage): Promise<BuildInfo> {
  const components = new Map<string, Uint8Array>();
  let version: string;
  if (lang === 'rust') {
    const toolchain = findRustToolchain();
    version = toolchain.version;
    for (const name of SDK_EXAMPLES) components.set(name, (await buildRustExample(name, toolchain)).component);
  } else {
    const toolchain = findCToolchain();
    version = toolchain.version;
    for (const name of SDK_EXAMPLES) components.set(name, (await buildCExample(name, toolchain)).component);
  }
  return writePrebuilt(lang, version, components);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const asked = process.argv.slice(2);
  const unknown = asked.filter((a) => !(SDK_LANGUAGES as readonly string[]).includes(a));
  if (unknown.length > 0) {
    console.error(`unknown language(s) ${unknown.join(', ')}; expected any of: ${SDK_LANGUAGES.join(', ')}`);
    process.exit(2);
  }
  const langs = (asked.length > 0 ? asked : SDK_LANGUAGES) as SdkLanguage[];
  (async () => {
    for (const lang of langs) {
      const info = await updatePrebuilt(lang);
      for (const [name, a] of Object.entries(info.artifacts))
        console.log(`${lang}/${name}: ${a.bytes} B sha256 ${a.sha256} (${info.toolchain})`);
    }
  })().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
